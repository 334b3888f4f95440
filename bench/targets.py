"""What the benchmark measures and how each piece is started: one process per target.

The upstream and the OTLP sink serve every target; each gateway variant tags
its telemetry with the resource attribute `bench.target` so the shared sink
can count spans per variant.

Each target is sent the key it needs: `direct` the fake upstream's own key,
the bare proxy anything (it swaps in the upstream key), the gateways the
virtual key of `bench/spend.yaml`, LiteLLM its master key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import gateway_config, procs

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-4.1"
TRICKLE_MODEL = "bench-trickle"
TRICKLE = {"completion_tokens": 10, "chunk_delay_s": 0.002}
UPSTREAM_KEY = "sk-bench"  # the fake upstream accepts only this key
CLIENT_KEY = "sk-bench-client"  # the virtual key in bench/spend.yaml; also LiteLLM's master key
SPEND_CONFIG = ROOT / "bench" / "spend.yaml"
ALL = ("direct", "bare", "gateway", "gateway-10pct", "gateway-py", "gateway-nospend", "gateway-extra",
       "gateway-base", "litellm", "portkey")
DEFAULT = ("direct", "bare", "gateway", "gateway-10pct", "gateway-py", "litellm", "portkey")
PEERS = ("litellm", "portkey")  # other gateways, measured on chat completions only


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str  # direct | bare | gateway | litellm | portkey
    description: str
    client_key: str  # what the load generator sends as `Authorization: Bearer ...`
    env: dict[str, str] = field(default_factory=dict)
    extra_configs: tuple[Path, ...] = ()  # merged into the gateway config, in order
    source: bool = False  # a gateway that runs the source tree even when the run uses the compiled build
    code: Path | None = None  # a gateway that runs this directory's code instead (`--baseline`)

    def headers(self, upstream_url: str) -> dict[str, str]:
        """What the load generator sends besides the body: JSON, the key, and for Portkey
        the headers that route the call to the upstream."""
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.client_key}"}
        if self.kind == "portkey":
            headers.update(portkey_headers(upstream_url))
        return headers


def specs(
    names: tuple[str, ...],
    loop: str,
    extra_env: Mapping[str, str],
    extra_config: Path | None,
    client_key: str = CLIENT_KEY,
    baseline: Path | None = None,
) -> list[TargetSpec]:
    """The targets to run; `client_key` is what `gateway-extra` is sent (its extra config may define keys)."""
    full = {"OTEL_TRACES_SAMPLER": "always_on"}
    spend = (SPEND_CONFIG,)
    known = {
        "direct": TargetSpec("direct", "direct", "fake upstream called directly", UPSTREAM_KEY),
        "bare": TargetSpec("bare", "bare", f"bare aiohttp pass-through ({loop})", CLIENT_KEY),
        "gateway": TargetSpec(
            "gateway", "gateway", "gateway, key + budgets, OTLP export, 100% sampled", CLIENT_KEY, full, spend
        ),
        "gateway-10pct": TargetSpec(
            "gateway-10pct",
            "gateway",
            "gateway, key + budgets, OTLP export, 10% sampled",
            CLIENT_KEY,
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            spend,
        ),
        "gateway-py": TargetSpec(
            "gateway-py",
            "gateway",
            "gateway as `gateway`, pure-Python source (not compiled)",
            CLIENT_KEY,
            full,
            spend,
            source=True,
        ),
        "gateway-nospend": TargetSpec(
            "gateway-nospend",
            "gateway",
            "gateway, no keys or budgets (open mode, ledger on), 100% sampled",
            CLIENT_KEY,
            full,
        ),
        "gateway-extra": TargetSpec(
            "gateway-extra",
            "gateway",
            "gateway, key + budgets, 100% sampled, extra config/env",
            client_key,
            {**full, **extra_env},
            spend if extra_config is None else (*spend, extra_config),
        ),
        "gateway-base": TargetSpec(
            "gateway-base",
            "gateway",
            f"gateway as `gateway`, the code in {baseline} (`--baseline`: another commit, same run)",
            CLIENT_KEY,
            full,
            spend,
            code=baseline,
        ),
        "litellm": TargetSpec("litellm", "litellm", "LiteLLM proxy, 1 worker, defaults", CLIENT_KEY),
        "portkey": TargetSpec("portkey", "portkey", "Portkey gateway (Node.js), headless, defaults",
                              UPSTREAM_KEY),
    }
    return [known[name] for name in names]


def python_env(code: Path = ROOT) -> dict[str, str]:
    """The parent's environment without OTEL_ or gateway settings that would skew a target,
    importing from `code` (this tree, or the compiled copy of bench/build.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "GATEWAY_CONFIG"}
    env["PYTHONPATH"] = str(code)
    return env


def start_upstream(completion_tokens: int, loop: str, log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.upstream",
        "--port",
        str(port),
        "--api-key",
        UPSTREAM_KEY,
        "--completion-tokens",
        str(completion_tokens),
        "--model-behaviour",
        f"{TRICKLE_MODEL}={json.dumps(TRICKLE)}",
    ]
    if loop != "uvloop":
        argv.append("--no-uvloop")
    url = f"http://127.0.0.1:{port}"
    return procs.start("upstream", argv, url=url, log_dir=log_dir, cwd=ROOT, env=python_env())


def start_sink(log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    return procs.start("otlp-sink", argv, url=url, log_dir=log_dir, cwd=ROOT, env=python_env())


def start_bare(spec: TargetSpec, upstream: procs.Child, loop: str, log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.bare_proxy",
        "--port",
        str(port),
        "--upstream",
        upstream.url,
        "--api-key",
        UPSTREAM_KEY,
        "--loop",
        loop,
    ]
    url = f"http://127.0.0.1:{port}"
    return procs.start(spec.name, argv, url=url, log_dir=log_dir, cwd=ROOT, env=python_env())


def gateway_config_text(spec: TargetSpec, upstream_url: str, work: Path) -> str:
    """The variant's config: every model on the upstream, its own ledger in `work`, then its extras."""
    ledger = work / f"{spec.name}.sqlite3"
    models = [MODEL, TRICKLE_MODEL]
    kinds = None if spec.code is None else _kinds_in(spec.code)
    return gateway_config.render(upstream_url, models, *spec.extra_configs, ledger=ledger,
                                 kinds=kinds)


def _kinds_in(tree: Path) -> tuple[str, ...]:
    """The provider kinds another tree's gateway accepts (`--baseline`: an older commit may
    not know the newer kinds, and must not be given a config that names them)."""
    providers = tree / "gateway" / "providers"
    return ("openai", "mock", *(kind for kind in ("anthropic", "gemini")
                                if any(providers.glob(f"{kind}.*"))))


def start_gateway(
    spec: TargetSpec,
    upstream: procs.Child,
    sink: procs.Child,
    command: tuple[str, ...],
    work: Path,
    log_dir: Path,
    code: Path = ROOT,
) -> procs.Child:
    """A gateway target, importing from `code` (from this tree if the spec says `source`)."""
    port = procs.free_port()
    config = work / f"{spec.name}.yaml"
    config.write_text(gateway_config_text(spec, upstream.url, work))
    code = spec.code or (ROOT if spec.source else code)
    env = python_env(code)
    env.update(
        {
            "BENCH_UPSTREAM_KEY": UPSTREAM_KEY,
            "OTEL_SERVICE_NAME": "llm-gateway-bench",
            "OTEL_RESOURCE_ATTRIBUTES": f"bench.target={spec.name}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        }
    )
    env.update(spec.env)
    argv = [*command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    # Started from `code`: `python -m` puts the working directory first on sys.path.
    return procs.start(spec.name, argv, url=url, log_dir=log_dir, cwd=code, env=env)


# --- LiteLLM ------------------------------------------------------------------

# LiteLLM fetches its model cost map and a few other JSON files from GitHub at
# start-up unless told to use its bundled copies, and has opt-in usage telemetry.
LITELLM_OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_TELEMETRY_DISABLED": "true",
}
_PROBE = (
    "import importlib.metadata as m, importlib.util as u\n"
    "if u.find_spec('litellm') is None: raise SystemExit(3)\n"
    "print(m.version('litellm'))\n"
)


@dataclass(frozen=True)
class LitellmProbe:
    """Whether `python` can run LiteLLM's proxy: its version, or why not."""

    python: str
    version: str | None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.version is not None


def probe_litellm(python: str, timeout_s: float = 30.0) -> LitellmProbe:
    """Ask `python` (without importing LiteLLM, which takes seconds) whether LiteLLM is installed."""
    hint = "install it with `pip install 'litellm[proxy]'` or pass --litellm-python"
    try:
        done = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return LitellmProbe(python, None, f"cannot run {python}: {exc}")
    if done.returncode == 3:
        return LitellmProbe(python, None, f"litellm is not importable by {python}; {hint}")
    if done.returncode != 0 or not done.stdout.strip():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return LitellmProbe(python, None, f"{python} could not check for litellm: {tail}")
    return LitellmProbe(python, done.stdout.strip().splitlines()[-1])


def litellm_config(upstream_url: str) -> dict[str, object]:
    """Every benchmark model as an OpenAI-compatible deployment on the fake upstream."""
    return {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {
                    "model": f"openai/{name}",
                    "api_base": upstream_url + "/v1",
                    "api_key": UPSTREAM_KEY,
                },
            }
            for name in (MODEL, TRICKLE_MODEL)
        ]
    }


def litellm_env() -> dict[str, str]:
    """The parent's environment without OTEL_ settings, offline, with the master key clients send."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LITELLM_"))}
    env.pop("PYTHONPATH", None)
    env.update(LITELLM_OFFLINE_ENV)
    env["LITELLM_MASTER_KEY"] = CLIENT_KEY
    return env


def start_litellm(
    spec: TargetSpec, upstream: procs.Child, python: str, work: Path, log_dir: Path
) -> procs.Child:
    """LiteLLM's proxy as its CLI starts it (`litellm --config ...`), one uvicorn worker, in `work`."""
    port = procs.free_port()
    config = work / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(upstream.url), sort_keys=False))
    argv = [
        python,
        "-c",
        "import sys; from litellm import run_server; sys.exit(run_server())",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    # cwd is the run's temp dir: LiteLLM reads a `.env` from its working directory.
    return procs.start(spec.name, argv, url=url, log_dir=log_dir, cwd=work, env=litellm_env())


# --- Portkey ------------------------------------------------------------------

PORTKEY_VERSION = "1.15.2"
PORTKEY_SERVER = Path("node_modules/@portkey-ai/gateway/build/start-server.js")


def portkey_headers(upstream_url: str) -> dict[str, str]:
    """Portkey routes by header: an OpenAI-compatible provider at the upstream's /v1."""
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream_url + "/v1"}


@dataclass(frozen=True)
class PortkeyProbe:
    """Whether Portkey's gateway is installed in `directory` and node can run it, or why not."""

    directory: Path
    version: str | None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.version is not None

    @property
    def server(self) -> Path:
        return self.directory / PORTKEY_SERVER


def probe_portkey(directory: Path) -> PortkeyProbe:
    hint = (f"install it with `npm install @portkey-ai/gateway@{PORTKEY_VERSION}` in a directory "
            "and pass it as --portkey-dir (or BENCH_PORTKEY_DIR)")
    if shutil.which("node") is None:
        return PortkeyProbe(directory, None, f"node is not on the PATH; {hint}")
    package = directory / "node_modules/@portkey-ai/gateway/package.json"
    try:
        version = str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return PortkeyProbe(directory, None, f"no @portkey-ai/gateway in {directory}; {hint}")
    if not (directory / PORTKEY_SERVER).exists():
        return PortkeyProbe(directory, None, f"{directory / PORTKEY_SERVER} is missing; {hint}")
    return PortkeyProbe(directory, version)


def start_portkey(spec: TargetSpec, probe: PortkeyProbe, work: Path, log_dir: Path) -> procs.Child:
    """`node start-server.js --port=N --headless` (no UI, no log store), NODE_ENV=production;
    listens on every interface, the port chosen free on 127.0.0.1."""
    port = procs.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["NODE_ENV"] = "production"
    argv = ["node", str(probe.server), f"--port={port}", "--headless"]
    return procs.start(spec.name, argv, url=f"http://127.0.0.1:{port}", log_dir=log_dir, cwd=work,
                       env=env)
