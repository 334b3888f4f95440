"""The resilience part of `llm-gateway check-config`: chains, timeouts, breakers, limits."""

from __future__ import annotations

from gateway.resilience.config import ModelPolicy, RateLimit, ResilienceConfig


def _seconds(value: float | None) -> str:
    return "off" if value is None else f"{value:g} s"


def _policy(policy: ModelPolicy) -> str:
    retry, breaker = policy.retry, policy.breaker
    breaker_text = (f"opens after {breaker.failure_threshold} failures in a row or "
                    f"{breaker.error_ratio:.0%} of >= {breaker.min_requests} in {breaker.window_s:g} s, "
                    f"cooldown {breaker.cooldown_s:g} s") if breaker.enabled else "off"
    return (f"request {_seconds(policy.request_timeout_s)}, attempt "
            f"{_seconds(policy.attempt_timeout_s)}, first token "
            f"{_seconds(policy.first_token_timeout_s)}; {retry.max_attempts} attempt(s) per model "
            f"on {', '.join(sorted(retry.on)) or 'nothing'}; breaker {breaker_text}")


def _limit(limit: RateLimit) -> str:
    rpm = limit.requests_per_minute
    tpm = limit.tokens_per_minute
    return (f"{rpm if rpm is not None else 'unlimited'} requests/min, "
            f"{tpm if tpm is not None else 'unlimited'} tokens/min")


def summary_lines(res: ResilienceConfig, storage_backend: str) -> list[str]:
    """Indented lines for the check-config report."""
    lines = ["", "resilience:", f"  defaults: {_policy(res.defaults)}"]
    for name, chain in res.chains.items():
        policy = res.policy(name)
        rule = f", first token {_seconds(policy.first_token_timeout_s)}"
        budget = ", degrades when over budget" if policy.on_budget_exceeded == "fallback" else ""
        lines.append(f"  {name}: {' -> '.join(chain)}{rule}{budget}")
    for name, policy in res.models.items():
        if name not in res.chains and policy != res.defaults:
            lines.append(f"  {name}: {_policy(policy)}")
    limits = res.rate_limits
    if not limits.enabled:
        lines.append("  rate limits: none")
        return lines
    where = "shared in Redis" if storage_backend == "redis" else "in memory (this replica)"
    lines.append(f"  rate limits, {where}: default {_limit(limits.default)}")
    for alias, limit in limits.keys.items():
        lines.append(f"    key {alias}: {_limit(limit)}")
    return lines
