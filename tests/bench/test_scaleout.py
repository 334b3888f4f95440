"""The scale-out check reads /metrics as Prometheus writes it and judges counts and caps right."""

from __future__ import annotations

import yaml

from bench import scaleout
from gateway.config import load as load_gateway_config

PAGE = "\n".join([
    "# HELP gateway_requests_total Requests",
    "# TYPE gateway_requests_total counter",
    'gateway_requests_total{gen_ai_request_model="gpt-4.1",gateway_team="load",'
    'http_response_status_code="200",worker="0"} 1200.0',
    'gateway_requests_total{gen_ai_request_model="gpt-4.1",gateway_team="capped",'
    'http_response_status_code="429",worker="1"} 30.0 # {trace_id="ab"} 1.0',
    'gateway_cost_usd_total{gen_ai_request_model="gpt-4.1",gateway_team="capped",worker="0"} 0.04',
    'gateway_cost_usd_total{gen_ai_request_model="gpt-4.1",gateway_team="load",worker="0"} 9.5',
    'gateway_requests_created{gateway_team="load"} 17.0',
])


def test_tally_sums_requests_by_status_and_the_capped_teams_cost() -> None:
    """Every gateway_requests_total series counts (exemplars and all), by status; only team
    capped's cost is the cap's."""
    counted = scaleout.tally([PAGE, PAGE])
    assert counted.requests == 2460
    assert counted.by_status == {"200": 2400, "429": 60}
    assert abs(counted.capped_cost - 0.08) < 1e-12


def _result(counted: float, cost: float) -> scaleout.Result:
    tally = scaleout.Tally(counted, {"200": counted}, cost)
    return scaleout.Result("2 workers", 1000.0, 1.0, 1.5, 1000, tally, 0.1, 500, 500, cut_off=64)


def test_metrics_must_account_for_every_request_and_spend_stay_within_the_cap() -> None:
    """Counted requests must lie between what wrk completed and that plus what it cut off;
    the capped team's spend must not pass the cap."""
    assert _result(1000, 0.1).metrics_match and _result(1064, 0.0999).within_cap
    assert not _result(999, 0.05).metrics_match
    assert not _result(1065, 0.05).metrics_match
    assert not _result(1000, 0.1001).within_cap
    assert "**NO**" in scaleout.table([_result(999, 0.2)])


def test_config_is_a_valid_gateway_config_with_two_teams_and_a_cap() -> None:
    """The generated config loads: two keys in two teams, the capped team's budget, the
    metrics token from the environment."""
    text = scaleout.config({"backend": "redis", "redis_url": "redis://127.0.0.1:1/0"}, 0.1)
    config = load_gateway_config(text, {"BENCH_METRICS_TOKEN": scaleout.METRICS_TOKEN})
    teams = {(k.alias, k.team) for k in config.spend.keys}
    assert teams == {("bench-load", "load"), ("bench-cap", "capped")}
    budgets = [(b.scope, b.target, float(b.limit_usd)) for b in config.spend.budgets]
    assert budgets == [("team", "capped", 0.1)]
    assert yaml.safe_load(text)["server"]["metrics_token"] == "${BENCH_METRICS_TOKEN}"
