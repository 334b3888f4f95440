"""The `llm-gateway` command line: parse arguments, call the library."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from gateway import __version__, lograte, pricetable, workers
from gateway.config import GatewayConfig, ProviderConfig, load_from, schema_text
from gateway.confread import ConfigError
from gateway.fastpaths import select
from gateway.pricing import ModelPricing
from gateway.providers.clients import route
from gateway.reconcile import cli as reconcile_cli
from gateway.resilience.summary import summary_lines as resilience_summary
from gateway.spend import cli as spend_cli
from gateway.spend import ledger_lock
from gateway.telemetry.logs import FORMATS, configure_stderr, log_format_from
from gateway.telemetry.setup import describe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway",
                                     description="OpenTelemetry-native LLM gateway")
    parser.add_argument("--version", action="version", version=f"llm-gateway {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the gateway (the default command)")
    _serve_args(serve)
    check = sub.add_parser("check-config", help="validate the config and print a summary")
    check.add_argument("--config", help="config file (default: $GATEWAY_CONFIG, else built in)")
    sub.add_parser("config-schema", help="print the config file's JSON Schema (for editors)")
    prices = sub.add_parser("prices", help="print every model's effective prices and their sources")
    prices.add_argument("--config", help="config file (default: $GATEWAY_CONFIG, else built in)")
    spend_cli.add_parsers(sub)
    reconcile_cli.add_parser(sub)
    return parser


def _serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG, else built in)")
    parser.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default: server.port, 8080)")
    parser.add_argument("--log-level", type=_log_level,
                        default=os.environ.get("GATEWAY_LOG_LEVEL", "INFO"),
                        help=f"one of {', '.join(LOG_LEVELS)} (default INFO, or $GATEWAY_LOG_LEVEL)")
    parser.add_argument("--log-format", choices=FORMATS, default=log_format_from(os.environ),
                        help="stderr log lines as text or JSON, each with trace_id/span_id "
                        "where a span is current (default: $GATEWAY_LOG_FORMAT, else text)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GATEWAY_WORKERS", "1")),
                        help="worker processes sharing the port via SO_REUSEPORT (default 1)")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a log level (choose from {', '.join(LOG_LEVELS)})")
    return level


def _load(path: str | None) -> GatewayConfig | None:
    try:
        return load_from(path)
    except ConfigError as exc:
        print("configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.edge.listener import ListenError
    from gateway.server import install_fast_loop, serve

    configure_stderr(args.log_level, args.log_format)
    lograte.install()  # a client must not be able to fill the log
    config = _load(args.config)
    if config is None:
        return 2
    problems = _network_problems(config, os.environ)
    if problems:
        print("configuration error:\n" + "\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 2
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    worker = workers.worker_index(os.environ)
    if worker is None and args.workers > 1:
        if port == 0:
            print("--workers needs a fixed --port (each worker binds it)", file=sys.stderr)
            return 2
        worker_args = ["--host", host, "--port", str(port), "--log-level", args.log_level,
                       "--log-format", args.log_format]
        if args.config:
            worker_args += ["--config", args.config]
        try:
            shared = ledger_lock.hold_for_workers(config.storage)
        except ledger_lock.LedgerInUse as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return workers.run_workers(args.workers, worker_args, shared_fds=shared)
    if worker is not None:
        workers.watch_parent(os.environ)
    install_fast_loop()
    try:
        asyncio.run(serve(config, host, port, reuse_port=worker is not None))
    except ledger_lock.LedgerInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 1
    return 0


def _network_problems(config: GatewayConfig, environ: Mapping[str, str]) -> list[str]:
    """Upstream settings that would stop the gateway at start (a CA bundle that cannot load)."""
    problems: list[str] = []
    for provider in config.providers.values():
        if provider.kind != "mock":
            try:
                route(provider, environ, own_client=True)
            except ConfigError as error:
                problems += error.problems
    return problems


def _client_route(provider: ProviderConfig, environ: Mapping[str, str]) -> str:
    """Which client and proxy the provider's calls would use (never a proxy's password)."""
    try:
        return route(provider, environ, own_client=select(environ).http_client).describe()
    except ConfigError as error:
        return f"(cannot start: {error})"


def _size(count: int) -> str:
    """Bytes as the operator would write them (8 MiB, 64 KiB, 1500 B)."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} B"


def summary(config: GatewayConfig, environ: Mapping[str, str]) -> list[str]:
    """The one-screen `check-config` report (never prints a secret)."""
    lines = [f"config: {config.source}", "", "providers:"]
    for provider in config.providers.values():
        if provider.kind == "mock":
            key = "not needed (simulated)"
        elif provider.api_key_missing:
            key = f"MISSING (${provider.api_key_missing} is not set)"
        elif provider.api_key is not None:
            key = f"set (${provider.api_key.variable})"
        else:
            key = "none configured"
        where = provider.base_url or "in-process"
        lines.append(f"  {provider.name:<12} {provider.kind:<7} {provider.provider_name:<12} "
                     f"{where}  key: {key}")
        if provider.kind != "mock":
            lines.append(f"  {'':<12} via {_client_route(provider, environ)}")
            lines.append(f"  {'':<12} upstream limits: event {_size(provider.max_event_bytes)}, "
                         f"answer {_size(provider.max_response_bytes)}; "
                         f"{len(provider.secrets)} secret(s) scrubbed")
    lines += ["", "models:"]
    for model in config.models.values():
        serving = config.provider_for(model)
        route = serving.name
        if serving.name != model.provider:
            route = f"{serving.name} (stand-in: {model.provider} has no key)"
        lines.append(f"  {model.name:<22} -> {route:<12} upstream={model.upstream_model}  "
                     f"{_price_summary(model.pricing)}  "
                     f"serves {'/'.join(model.operations) or 'all but embeddings'}")
    lines += server_lines(config)
    lines += spend_cli.summary_lines(config)
    lines += resilience_summary(config.resilience, config.storage.backend)
    lines += ["", "telemetry:"]
    lines += [f"  {line}" for line in describe(environ)]
    return lines


def _price_summary(pricing: ModelPricing) -> str:
    """A model's base input, output and cached-input prices (`prices` has them all)."""
    if not pricing.priced:
        return "UNPRICED"
    rates = pricing.base
    tiers = f" (+{len(pricing.tiers)} tier)" if pricing.tiers else ""
    return (f"$/Mtok in {rates.input / 1e6:g} out {rates.output / 1e6:g} "
            f"cached {rates.cached_input / 1e6:g}{tiers}")


def server_lines(config: GatewayConfig) -> list[str]:
    """The listener's limits, and who may read /metrics."""
    server = config.server
    metrics = "off"
    if server.metrics_path:
        where = (f"port {server.metrics_port} ({server.metrics_host or server.host})"
                 if server.metrics_port is not None else "the API port")
        if server.metrics_token is not None:
            guard = f"token ${server.metrics_token.variable or '?'}"
        elif server.metrics_port is not None:
            guard = "no token: keep the port on the monitoring network"
        else:
            guard = "no token: open while no virtual key exists, then 403"
        metrics = f"{server.metrics_path} on {where}, {guard}"
    return ["", "server:",
            f"  listen {server.host}:{server.port}  metrics: {metrics}",
            f"  body: {server.max_body_bytes:,} bytes as sent, "
            f"{server.max_inflated_body_bytes:,} inflated (gzip/deflate)",
            f"  timeouts: request head {server.header_timeout_s:g} s, body pause "
            f"{server.body_timeout_s:g} s, idle keep-alive {server.keepalive_timeout_s:g} s, "
            f"shutdown drain {server.shutdown_timeout_s:g} s"]


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    print("\n".join(summary(config, os.environ)))
    problems, warnings = spend_cli.check(config, os.environ)
    warnings += pricetable.warnings(config)
    problems += _network_problems(config, os.environ)
    for warning in warnings:
        print(f"\n{warning}")
    if problems:
        print("configuration error:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print("\nconfig OK")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    commands = {"serve", "check-config", "config-schema", "prices", reconcile_cli.COMMAND,
                *spend_cli.COMMANDS}
    if not args_list or (args_list[0] not in commands and args_list[0].startswith("-")
                         and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "serve")
    args = _parser().parse_args(args_list)
    if args.command == "check-config":
        return cmd_check_config(args)
    if args.command == "config-schema":
        print(schema_text(), end="")
        return 0
    if args.command == reconcile_cli.COMMAND:
        config = _load(args.config)
        return 2 if config is None else reconcile_cli.run(args, config, os.environ)
    if args.command == "prices":
        config = _load(args.config)
        if config is None:
            return 2
        print(pricetable.render(config))
        return 0
    if args.command in spend_cli.COMMANDS:
        config = _load(args.config)
        return 2 if config is None else spend_cli.run(args, config)
    return cmd_serve(args)
