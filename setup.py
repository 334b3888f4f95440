"""Optional compiled build of the request path.

`LLM_GATEWAY_COMPILE=1 pip install .` compiles the modules below to C
extensions with mypyc (mypy's compiler, used to build mypy and black): the same
type-checked source, run without the interpreter's per-bytecode dispatch, frame
objects and attribute dictionaries. About 45-50 µs less CPU per proxied
request under load (docs/performance.md). Everything else in pyproject.toml; without the variable
this file adds nothing and the package is pure Python.

Compiling needs a C compiler, the Python headers and mypy in the build
environment (the build backend in build_support/ asks for mypy when the
variable is set).
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILE_ENV = "LLM_GATEWAY_COMPILE"

# The request path, where compiling was measured to pay (docs/performance.md, "Which
# modules are compiled"). Left out: modules run only at start-up, reload or by the CLI,
# which cannot gain under load (telemetry/setup, telemetry/names, telemetry/instruments,
# providers/registry, dialects/registry, resilience/summary, spend/metrics; measured: no
# difference at 32 connections); the CLI, config loading (pydantic dataclasses, which mypyc
# cannot compile; the request path reads them as plain instance attributes), modules run
# only at start (fastpaths' switches and self-checks), modules run as scripts
# (spend/ledger_writer), modules mypyc cannot compile (async generators: spend/control,
# spend/redis_store, spend/notify), and hooks.py, whose BaseHook extensions
# subclass (an interpreted class cannot subclass a compiled one). The Messages dialect and the
# translations (gateway/translate/) are not compiled yet: the Messages watcher builds on the
# interpreted dialects/streamstate, which the translations' watchers share.
COMPILED = [
    "gateway/attribution.py",
    "gateway/attribution_hook.py",
    "gateway/call.py",
    "gateway/pricing.py",
    "gateway/redact.py",
    "gateway/router.py",
    "gateway/sse.py",
    "gateway/usage.py",
    "gateway/dialects/base.py",
    "gateway/dialects/bodies.py",
    "gateway/dialects/openai_chat.py",
    "gateway/dialects/openai_embeddings.py",
    "gateway/dialects/openai_wire.py",
    "gateway/dialects/gemini/answer.py",
    "gateway/dialects/gemini/errors.py",
    "gateway/dialects/gemini/generate.py",
    "gateway/dialects/gemini/request.py",
    "gateway/dialects/gemini/stream.py",
    "gateway/dialects/openai_responses/responses.py",
    "gateway/dialects/openai_responses/wire.py",
    "gateway/edge/body.py",
    "gateway/edge/handlers.py",
    "gateway/edge/proxy.py",
    "gateway/edge/responses.py",
    "gateway/path/answer.py",
    "gateway/path/attempt.py",
    "gateway/path/chain.py",
    "gateway/path/lifecycle.py",
    "gateway/path/relay.py",
    "gateway/fastpaths/fastexport.py",
    "gateway/fastpaths/hotmetrics.py",
    "gateway/fastpaths/litespan.py",
    "gateway/fastpaths/spanids.py",
    "gateway/fastpaths/timers.py",
    "gateway/fastpaths/httpclient/client.py",
    "gateway/fastpaths/httpclient/connection.py",
    "gateway/fastpaths/httpclient/pool.py",
    "gateway/fastpaths/httpclient/response.py",
    "gateway/providers/anthropic.py",
    "gateway/providers/base.py",
    "gateway/providers/gemini.py",
    "gateway/providers/openai.py",
    "gateway/resilience/breaker.py",
    "gateway/resilience/deadline.py",
    "gateway/resilience/drain.py",
    "gateway/resilience/limiter.py",
    "gateway/resilience/ratelimit.py",
    "gateway/spend/accounting.py",
    "gateway/spend/backend.py",
    "gateway/spend/budgets.py",
    "gateway/spend/hook.py",
    "gateway/spend/keys.py",
    "gateway/spend/ledger.py",
    "gateway/spend/ledger_sql.py",
    "gateway/spend/runaway.py",
    "gateway/spend/sqlite_store.py",
    "gateway/spend/windows.py",
    "gateway/telemetry/content.py",
    "gateway/telemetry/recorder.py",
    "gateway/telemetry/tallies.py",
    "gateway/telemetry/tracecontext.py",
    "gateway/telemetry/vocabulary.py",
]


def module_names() -> list[str]:
    return [path.removesuffix(".py").replace("/", ".") for path in COMPILED]


def _extensions() -> list[object]:
    if os.environ.get(COMPILE_ENV, "").strip() != "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3"))


if __name__ == "__main__":  # as pip and `python setup.py` run it; tests import COMPILED
    setup(ext_modules=_extensions())
