"""Every message `check-config` prints for a mistake, pinned line by line (order aside)."""
# ruff: noqa: E501  (the messages are pinned verbatim, one per line)

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load, load_from

BASE = """
providers:
  sim: {kind: mock}
  up: {kind: openai, base_url: "http://127.0.0.1:1/v1", provider_name: openai}
models:
  m1: {provider: sim, price_per_mtok: {input: 1, output: 2}}
"""

CASES: list[tuple[str, str, list[str]]] = [
    ('root_list', "- 1\n- 2\n",
     [
         '<root>: must be a mapping',
         'models: at least one model is required',
     ]),
    ('section_not_mapping', BASE + "server: 3\n",
     [
         'server: must be a mapping',
     ]),
    ('root_unknown', BASE + "colour: red\n",
     [
         'colour: unknown key (expected one of: attribution, budgets, keys, limits, models, providers, rate_limits, resilience, server, spend, storage, telemetry)',
     ]),
    ('model_unknown', BASE.replace("output: 2}}", "output: 2}, colour: red}"),
     [
         'models.m1.colour: unknown key (expected one of: aliases, attempt_timeout_s, circuit_breaker, fallbacks, first_token_timeout_s, offline_provider, on_budget_exceeded, operations, price_per_mtok, provider, request_timeout_s, retry, upstream_model)',
     ]),
    ('provider_unknown', BASE.replace("{kind: mock}", "{kind: mock, colour: red}"),
     [
         'providers.sim.colour: unknown key (expected one of: api_key, base_url, ca_file, connect_timeout_s, headers, kind, max_event_bytes, max_response_bytes, mock, provider_name, proxy, '
         'responses_api, timeout_s)',
     ]),
    ('proxy_scheme', BASE.replace("provider_name: openai", 'provider_name: openai, proxy: "socks5://p:1"'),
     [
         'providers.up.proxy: must start with http:// or https://',
     ]),
    ('mock_unknown', BASE.replace("{kind: mock}", "{kind: mock, mock: {colour: red}}"),
     [
         'providers.sim.mock.colour: unknown key (expected one of: completion_tokens, jitter, latency_ms, ms_per_chunk, seed)',
     ]),
    ('mock_tokens', BASE.replace("{kind: mock}", "{kind: mock, mock: {completion_tokens: 0}}"),
     [
         'providers.sim.mock.completion_tokens: must be an integer >= 1',
     ]),
    ('base_url_missing', BASE.replace('base_url: "http://127.0.0.1:1/v1", ', ""),
     [
         'providers.up.base_url: is required',
     ]),
    ('base_url_scheme', BASE.replace('"http://127.0.0.1:1/v1"', '"ftp://x"'),
     [
         'providers.up.base_url: must start with http:// or https://',
     ]),
    ('timeout', BASE.replace('provider_name: openai', 'provider_name: openai, timeout_s: 0'),
     [
         'providers.up.timeout_s: must be a number > 0',
     ]),
    ('model_provider_missing', BASE.replace("provider: sim, ", ""),
     [
         'models.m1.provider: is required',
     ]),
    ('offline_unknown', BASE.replace("provider: sim, ", "provider: sim, offline_provider: nope, "),
     [
         'models.m1.offline_provider: names no provider',
     ]),
    ('price_unknown', BASE.replace("output: 2}", "output: 2, colour: 1}"),
     [
         'models.m1.price_per_mtok.colour: unknown key (expected one of: cache_write, cache_write_1h, cached_input, catalog, input, input_audio, input_image, output, output_audio, output_image, reasoning)',
     ]),
    ('server_values', BASE + "server: {port: 70000, metrics_path: metrics, max_body_bytes: 0,"
                             " shutdown_timeout_s: -1, host: [1]}\n",
     [
         'server.host: must be a string',
         'server.port: must be an integer from 0 to 65535',
         'server.max_body_bytes: must be an integer >= 1',
         'server.metrics_path: must start with / (or be empty to turn /metrics off)',
         'server.shutdown_timeout_s: must be a number >= 0',
     ]),
    ('server_limits', BASE + "server: {max_inflated_body_bytes: 0, header_timeout_s: 0,"
                             " body_timeout_s: -1, keepalive_timeout_s: soon, metrics_port: 70000,"
                             " metrics_host: [1]}\n",
     [
         'server.max_inflated_body_bytes: must be an integer >= 1',
         'server.header_timeout_s: must be a number > 0',
         'server.body_timeout_s: must be a number > 0',
         'server.keepalive_timeout_s: must be a number > 0',
         'server.metrics_port: must be an integer from 0 to 65535',
         'server.metrics_host: must be a string',
     ]),
    ('server_metrics_port_text', BASE + "server: {metrics_port: nine}\n",
     [
         'server.metrics_port: must be an integer >= 0',
     ]),
    ('server_metrics_token_literal', BASE + "server: {metrics_token: hunter2}\n",
     [
         'server.metrics_token: must come from the environment, e.g. "${GATEWAY_METRICS_TOKEN}", never a literal secret in the file',
     ]),
    ('model_operations', BASE.replace("output: 2}}", "output: 2}, operations: []}") + "  m2: {provider: sim, price_per_mtok: {input: 1, output: 2}, operations: 3}\n",
     [
         'models.m1.operations: must list at least one operation, e.g. [chat] or [embeddings]',
         'models.m2.operations: must be a list of strings',
     ]),
    ('server_port_text', BASE + "server: {port: eighty}\n",
     [
         'server.port: must be an integer >= 0',
     ]),
    ('storage_values', BASE + "storage: {backend: mongo}\n",
     [
         'storage.backend: must be one of: sqlite, redis',
     ]),
    ('storage_redis', BASE + "storage: {backend: redis}\n",
     [
         'storage.redis_url: is required when backend is redis (e.g. "${REDIS_URL}")',
     ]),
    ('storage_redis_url', BASE + "storage: {redis_url: 'http://x'}\n",
     [
         'storage.redis_url: must start with redis://, rediss:// or unix://',
     ]),
    ('storage_unknown', BASE + "storage: {colour: 1}\n",
     [
         'storage.colour: unknown key (expected one of: backend, redis_prefix, redis_url, sqlite_path)',
     ]),
    ('no_models', "providers: {sim: {kind: mock}}\n",
     [
         'models: at least one model is required',
     ]),
    ('resilience_unknown', BASE + "resilience: {fallbacks: [m1]}\n",
     [
         'resilience.fallbacks: unknown key (expected one of: attempt_timeout_s, circuit_breaker, first_token_timeout_s, on_budget_exceeded, request_timeout_s, retry)',
     ]),
    ('retry_values', BASE + "resilience: {retry: {initial_backoff_s: 2, max_backoff_s: 1, jitter: 2,"
                            " multiplier: 0.5, colour: 1}}\n",
     [
         'resilience.retry.max_backoff_s: must be >= initial_backoff_s',
         'resilience.retry.multiplier: must be a number >= 1',
         'resilience.retry.jitter: must be a number from 0 to 1',
         'resilience.retry.colour: unknown key (expected one of: initial_backoff_s, jitter, max_attempts, max_backoff_s, max_retry_after_s, multiplier, on)',
     ]),
    ('breaker_values', BASE + "resilience: {circuit_breaker: {enabled: maybe, failure_threshold: 0,"
                              " window_s: 0, colour: 1}}\n",
     [
         'resilience.circuit_breaker.enabled: must be true or false',
         'resilience.circuit_breaker.failure_threshold: must be an integer >= 1',
         'resilience.circuit_breaker.window_s: must be a number > 0',
         'resilience.circuit_breaker.colour: unknown key (expected one of: cooldown_s, enabled, error_ratio, failure_threshold, min_requests, window_s)',
     ]),
    ('budget_action', BASE + "resilience: {on_budget_exceeded: panic}\n",
     [
         'resilience.on_budget_exceeded: must be one of: fail, fallback',
     ]),
    ('fallbacks_not_list', BASE.replace("output: 2}}", "output: 2}, fallbacks: 3}"),
     [
         'models.m1.fallbacks: must be a list of strings',
     ]),
    ('rate_limits_unknown', BASE + "rate_limits: {colour: 1, default: {rpm: 1}}\n",
     [
         'rate_limits.default.rpm: unknown key (expected one of: requests_per_minute, tokens_per_minute)',
         'rate_limits.colour: unknown key (expected one of: default, keys)',
     ]),
    ('keys_not_list', BASE + "keys: 3\n",
     [
         'keys: must be a list',
     ]),
    ('key_fields', BASE + "keys:\n  - {team: t, key_env: 'not a name', allowed_models: 3, colour: 1}\n",
     [
         'keys[0].alias: is required',
         'keys[0].key_env: must be an environment variable name, e.g. WEB_APP_KEY',
         'keys[0].allowed_models: must be a list of strings',
         'keys[0].colour: unknown key (expected one of: alias, allowed_models, budget_usd_per_day, budget_usd_per_month, key_env, key_sha256, team)',
     ]),
    ('budget_fields', BASE + "budgets:\n  - {name: 'a b', limit_usd: 1, thresholds: [0], colour: 1}\n"
                             "  - {scope: model, model: m1, limit_usd: 1, thresholds: x}\n"
                             "  - {scope: key, limit_usd: 1}\n  - {scope: global}\n",
     [
         "budgets[0].name: 'a b' is not a valid budget name",
         'budgets[0].thresholds: each percentage must be above 0 and at most 1000',
         'budgets[0].colour: unknown key (expected one of: action, key, limit_usd, model, name, provider, scope, tag, team, thresholds, timezone, user, window)',
         'budgets[1].thresholds: must be a list of percentages, e.g. [50, 80, 100]',
         'budgets[2].key: is required for a key budget (the key alias it limits)',
         'budgets[3].limit_usd: is required',
     ]),
    ('spend_fields', BASE + "spend: {colour: 1, key_refresh_s: 0, reservation_ttl_s: 0,"
                            " notify: {max_attempts: 0, backoff_s: -1, colour: 1},"
                            " webhooks: [{format: json}, {url: 'https://x', colour: 1}],"
                            " runaway: {loop_threshold: 1, enabled: maybe, colour: 1}}\n",
     [
         'spend.key_refresh_s: must be a number > 0',
         'spend.reservation_ttl_s: must be a number > 0',
         'spend.webhooks[0].url: is required',
         'spend.webhooks[1].colour: unknown key (expected one of: format, secret, timeout_s, url)',
         'spend.notify.max_attempts: must be an integer >= 1',
         'spend.notify.backoff_s: must be a number >= 0',
         'spend.notify.colour: unknown key (expected one of: backoff_s, max_attempts)',
         'spend.runaway.enabled: must be true or false',
         'spend.runaway.loop_threshold: must be an integer >= 2',
         'spend.runaway.colour: unknown key (expected one of: action, baseline_minutes, block_s, enabled, loop_threshold, loop_window_s, min_requests_per_minute, notify_cooldown_s, spike_factor, warmup_minutes)',
         'spend.colour: unknown key (expected one of: default_max_tokens, key_refresh_s, notify, reservation_ttl_s, runaway, timezone, unpriced, unpriced_price_per_mtok, webhooks)',
     ]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES],
                         ids=[name for name, _, _ in CASES])
def test_each_mistake_prints_its_message(text: str, expected: list[str]) -> None:
    """Each mistake is reported as `key.path: message`, exactly as check-config always printed it."""
    with pytest.raises(ConfigError) as info:
        load(text, {})
    assert sorted(info.value.problems) == sorted(expected)


def test_unreadable_file_names_the_file() -> None:
    """A config file that cannot be read is one problem naming the file and the reason."""
    with pytest.raises(ConfigError) as info:
        load_from("/nonexistent/x.yaml", {})
    assert info.value.problems == ['/nonexistent/x.yaml: cannot read config file: No such file or directory']


def test_unknown_keys_come_first_in_their_section() -> None:
    """Within a section, unknown keys are listed before its other mistakes, as they always were."""
    text = BASE + "resilience: {retry: {jitter: 2, colour: 1}}\nrate_limits: {default: {rpm: 1}, colour: 1}\n"
    with pytest.raises(ConfigError) as info:
        load(text, {})
    assert info.value.problems == [
        "resilience.retry.colour: unknown key (expected one of: initial_backoff_s, jitter, max_attempts, max_backoff_s, max_retry_after_s, multiplier, on)",
        "resilience.retry.jitter: must be a number from 0 to 1",
        "rate_limits.colour: unknown key (expected one of: default, keys)",
        "rate_limits.default.rpm: unknown key (expected one of: requests_per_minute, tokens_per_minute)",
    ]


def test_limit_and_price_ceilings_keep_their_messages() -> None:
    """A price above $1 a token and a reservation above `limits.max_tokens` name their keys."""
    with pytest.raises(ConfigError) as info:
        load(BASE.replace("output: 2}", "output: 1e999999}") + "limits: {max_tokens: 1000}\n", {})
    assert sorted(info.value.problems) == [
        "models.m1.price_per_mtok.output: must be at most 1000000 (US dollars per million tokens)",
        "spend.default_max_tokens: must be at most limits.max_tokens (1000)",
    ]
