"""Markdown tables for benchmark results: pure formatting, ratios against the bare proxy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.load import TtfcResult, WrkResult

BARE = "bare"
DIRECT = "direct"
GATEWAY = "gateway"
LITELLM = "litellm"
PORTKEY = "portkey"
PEERS = {LITELLM: "LiteLLM", PORTKEY: "Portkey"}
LITELLM_FACTOR = 20.0  # performance target: the gateway serves >= 20x LiteLLM's non-streamed req/s
DIALECT_FLOOR = 0.65  # a dialect row below this share of the bare proxy's req/s is a bug


@dataclass(frozen=True)
class Cell:
    target: str
    mode: str
    connections: int
    result: WrkResult
    cpu_us_per_request: float
    dialect: str = "chat"

    @property
    def cpu_percent(self) -> float:
        """Share of one core the target used during the cell (100 = one core busy)."""
        r = self.result
        return self.cpu_us_per_request * r.requests / (r.duration_s * 1e4) if r.duration_s else 0.0


@dataclass
class TargetRun:
    """Everything measured for one target."""

    name: str
    description: str
    cells: list[Cell] = field(default_factory=list)
    ttfc: TtfcResult | None = None
    requests_sent: int = 0
    spans: int | None = None
    metric_exports: int | None = None
    peak_rss_mb: float | None = None
    failure: str | None = None
    skipped: str | None = None  # why the target was not run (not a failure)
    notes: list[str] = field(default_factory=list)  # what of it was not measured, and why


def _find(runs: Sequence[TargetRun], target: str, mode: str, conns: int,
          dialect: str = "chat") -> Cell | None:
    for run in runs:
        if run.name != target:
            continue
        for cell in run.cells:
            if cell.mode == mode and cell.connections == conns and cell.dialect == dialect:
                return cell
    return None


def throughput_table(runs: Sequence[TargetRun]) -> str:
    lines = [
        "| target | mode | conns | req/s | p50 ms | p99 ms | req/s vs bare "
        "| p50 added vs bare, ms | CPU µs/req | CPU % | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cells = [c for run in runs for c in run.cells if c.dialect == "chat"]
    order = sorted({(c.mode, c.connections) for c in cells}, key=lambda k: (k[0] != "json", k[1]))
    for mode, conns in order:
        bare = _find(runs, BARE, mode, conns)
        for run in runs:
            cell = _find(runs, run.name, mode, conns)
            if cell is None:
                continue
            r = cell.result
            if not r.requests:  # nothing completed within the cell: no latency to show
                lines.append(f"| {run.name} | {mode} | {conns} | 0 (none completed in "
                             f"{r.duration_s:.0f} s) | - | - | 0.00 | - | - "
                             f"| {cell.cpu_percent:.0f} | {r.errors} |")
                continue
            ratio = f"{r.rps / bare.result.rps:.2f}" if bare and bare.result.rps else "-"
            added = f"{r.p50_ms - bare.result.p50_ms:+.2f}" if bare else "-"
            lines.append(
                f"| {run.name} | {mode} | {conns} | {r.rps:,.0f} | {r.p50_ms:.2f} "
                f"| {r.p99_ms:.2f} | {ratio} | {added} | {cell.cpu_us_per_request:,.0f} "
                f"| {cell.cpu_percent:.0f} | {r.errors} |"
            )
    return "\n".join(lines)


def peer_table(runs: Sequence[TargetRun], peer: str, gateway: str = GATEWAY) -> str:
    """The gateway's throughput and p50 against a peer's, cell by cell; empty without both."""
    label = PEERS.get(peer, peer)
    lines = [
        f"| mode | conns | gateway req/s | {label} req/s | gateway / {label} | {label} req/s vs bare "
        f"| gateway p50 ms | {label} p50 ms | gateway CPU µs/req | {label} CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = {(c.mode, c.connections) for run in runs if run.name == peer for c in run.cells}
    for mode, conns in sorted(keys, key=lambda k: (k[0] != "json", k[1])):
        gw, lt = _find(runs, gateway, mode, conns), _find(runs, peer, mode, conns)
        if gw is None or lt is None:
            continue
        bare = _find(runs, BARE, mode, conns)
        ratio = f"{gw.result.rps / lt.result.rps:.1f}x" if lt.result.rps else f"{label} completed none"
        vs_bare = f"{lt.result.rps / bare.result.rps:.3f}" if bare and bare.result.rps else "-"
        lines.append(
            f"| {mode} | {conns} | {gw.result.rps:,.0f} | {lt.result.rps:,.0f} | {ratio} | {vs_bare} "
            f"| {gw.result.p50_ms:.2f} | {lt.result.p50_ms:.2f} | {gw.cpu_us_per_request:,.0f} "
            f"| {lt.cpu_us_per_request:,.0f} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def litellm_table(runs: Sequence[TargetRun], gateway: str = GATEWAY) -> str:
    return peer_table(runs, LITELLM, gateway)


def dialect_table(runs: Sequence[TargetRun], names: Sequence[str], gateway: str = GATEWAY) -> str:
    """Per dialect, mode and connection count: the bare proxy against the gateway (each
    dialect against its own bare pass-through), flagged below DIALECT_FLOOR."""
    lines = [
        "| dialect | mode | conns | bare req/s | gateway req/s | gateway vs bare | p50 added, ms "
        "| bare CPU µs/req | gateway CPU µs/req | gateway CPU % | errors | >= 0.65 of bare |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    keys = {(c.dialect, c.mode, c.connections) for run in runs if run.name == gateway
            for c in run.cells if c.dialect in names}
    order = {name: i for i, name in enumerate(names)}
    for dialect, mode, conns in sorted(keys, key=lambda k: (order[k[0]], k[1] != "json", k[2])):
        gw = _find(runs, gateway, mode, conns, dialect)
        bare = _find(runs, BARE, mode, conns, dialect)
        if gw is None or bare is None or not bare.result.rps:
            continue
        ratio = gw.result.rps / bare.result.rps
        lines.append(
            f"| {dialect} | {mode} | {conns} | {bare.result.rps:,.0f} | {gw.result.rps:,.0f} "
            f"| {ratio:.2f} | {gw.result.p50_ms - bare.result.p50_ms:+.2f} "
            f"| {bare.cpu_us_per_request:,.0f} | {gw.cpu_us_per_request:,.0f} | {gw.cpu_percent:.0f} "
            f"| {gw.result.errors + bare.result.errors} | {'yes' if ratio >= DIALECT_FLOOR else '**NO**'} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def dialect_sections(runs: Sequence[TargetRun], notes: dict[str, str],
                     dialect_targets: Sequence[str]) -> list[tuple[str, str]]:
    """The dialects table (chat rows from the main table at the same connection counts) and
    the dialects skipped or failed, with the reason."""
    names = ["chat", *dict.fromkeys(c.dialect for run in runs for c in run.cells if c.dialect != "chat")]
    conns = {c.connections for run in runs for c in run.cells if c.dialect != "chat"}
    chat_only = [TargetRun(run.name, run.description,
                           [c for c in run.cells if c.dialect != "chat" or c.connections in conns])
                 for run in runs if run.name in dialect_targets]
    sections: list[tuple[str, str]] = []
    for gateway in (t for t in dialect_targets if t.startswith(GATEWAY)):
        table = dialect_table(chat_only, names, gateway) if len(names) > 1 else ""
        if table:
            title = "" if gateway == GATEWAY else f", `{gateway}`"
            sections.append((f"Dialects (gateway vs the bare pass-through of the same calls{title})",
                             table))
    if notes:
        sections.append(("Dialects not measured", "\n".join(
            f"- {name}: {'' if note.startswith('FAILED') else 'skipped: '}{note}"
            for name, note in notes.items())))
    return sections


def ttfc_table(runs: Sequence[TargetRun]) -> str:
    by_name = {run.name: run.ttfc for run in runs if run.ttfc is not None}
    if not by_name:
        return ""
    bare, direct = by_name.get(BARE), by_name.get(DIRECT)
    lines = [
        "| target | TTFC p50 ms | TTFC p99 ms | added vs bare p50, ms "
        "| added vs direct p50, ms | last chunk p50 ms | events |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in by_name.items():
        vs_bare = f"{t.ttfc_p50_ms - bare.ttfc_p50_ms:+.3f}" if bare else "-"
        vs_direct = f"{t.ttfc_p50_ms - direct.ttfc_p50_ms:+.3f}" if direct else "-"
        lines.append(
            f"| {name} | {t.ttfc_p50_ms:.3f} | {t.ttfc_p99_ms:.3f} | {vs_bare} | {vs_direct} "
            f"| {t.last_p50_ms:.2f} | {t.events_p50:.0f} |"
        )
    return "\n".join(lines)


def process_table(runs: Sequence[TargetRun]) -> str:
    lines = [
        "| target | what | requests sent | spans received | spans/request | metric exports | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        if run.skipped is not None:
            lines.append(f"| {run.name} | {run.description} (skipped) | - | - | - | - | - |")
            continue
        spans = "-" if run.spans is None else f"{run.spans:,}"
        per_req = (
            f"{run.spans / run.requests_sent:.2f}" if run.spans is not None and run.requests_sent else "-"
        )
        exports = "-" if run.metric_exports is None else str(run.metric_exports)
        rss = "-" if run.peak_rss_mb is None else f"{run.peak_rss_mb:.0f}"
        lines.append(
            f"| {run.name} | {run.description} | {run.requests_sent:,} | {spans} | {per_req} "
            f"| {exports} | {rss} |"
        )
    return "\n".join(lines)


def target_checks(runs: Sequence[TargetRun], gateway: str = GATEWAY) -> list[str]:
    """The issue targets for the fully-instrumented gateway, each marked met or not."""
    checks: list[str] = []
    ratio_cell, bare32 = _find(runs, gateway, "json", 32), _find(runs, BARE, "json", 32)
    if ratio_cell and bare32 and bare32.result.rps:
        ratio = ratio_cell.result.rps / bare32.result.rps
        checks.append(_check("json req/s at 32 conns >= 0.50 of bare (baseline target)", ratio >= 0.5))
        checks.append(_check("json req/s at 32 conns >= 0.65 of bare (performance target)", ratio >= 0.65))
    one, bare1 = _find(runs, gateway, "json", 1), _find(runs, BARE, "json", 1)
    if one and bare1:
        added = one.result.p50_ms - bare1.result.p50_ms
        checks.append(_check("added p50 at 1 conn <= 1 ms (baseline target)", added <= 1.0))
        checks.append(_check("added p50 at 1 conn <= 0.5 ms (performance target)", added <= 0.5))
    ttfcs = {run.name: run.ttfc for run in runs if run.ttfc is not None}
    if gateway in ttfcs and BARE in ttfcs:
        gw, bare = ttfcs[gateway], ttfcs[BARE]
        assert gw is not None and bare is not None
        added = gw.ttfc_p50_ms - bare.ttfc_p50_ms
        checks.append(_check("added TTFC p50 <= 1 ms (performance target)", added <= 1.0))
    for run in runs:
        for cell in run.cells:
            if run.name == gateway and cell.dialect != "chat":
                floor = _find(runs, BARE, cell.mode, cell.connections, cell.dialect)
                if floor and floor.result.rps:
                    share = cell.result.rps / floor.result.rps
                    checks.append(_check(f"{cell.dialect} {cell.mode} at {cell.connections} conns >= "
                                         f"{DIALECT_FLOOR} of bare ({share:.2f})", share >= DIALECT_FLOOR))
    json_conns = sorted({c.connections for run in runs if run.name == LITELLM for c in run.cells})
    for conns in json_conns:
        ours, theirs = _find(runs, gateway, "json", conns), _find(runs, LITELLM, "json", conns)
        if ours and theirs and theirs.result.rps:
            factor = ours.result.rps / theirs.result.rps
            label = (f"json req/s at {conns} conns >= {LITELLM_FACTOR:g}x LiteLLM "
                     f"(performance target; {factor:.1f}x)")
            checks.append(_check(label, factor >= LITELLM_FACTOR))
    return checks


def _check(label: str, ok: bool) -> str:
    return f"- [{'x' if ok else ' '}] {label}: {'met' if ok else 'NOT met'}"


def render(runs: Sequence[TargetRun], header: Sequence[str],
           sections: Sequence[tuple[str, str]] = ()) -> str:
    parts = ["# Benchmark results", "", *header, "", "## Throughput and latency", ""]
    parts.append(throughput_table(runs))
    ttfc = ttfc_table(runs)
    if ttfc:
        parts += ["", "## Streaming: time to first chunk (one connection, sequential)", "", ttfc]
    for peer, label in PEERS.items():
        versus = peer_table(runs, peer)
        if versus:
            parts += ["", f"## Gateway vs {label}", "", versus]
    for title, text in sections:
        parts += ["", f"## {title}", "", text]
    parts += ["", "## Processes", "", process_table(runs)]
    checks = target_checks(runs)
    if checks:
        parts += ["", "## Targets (gateway, 100% sampling)", "", *checks]
    skipped = [f"- {run.name}: {run.skipped}" for run in runs if run.skipped]
    skipped += [f"- {run.name}: {note}" for run in runs for note in run.notes]
    if skipped:
        parts += ["", "## Skipped (not failures)", "", *skipped]
    failures = [f"- {run.name}: {run.failure}" for run in runs if run.failure]
    if failures:
        parts += ["", "## Failures", "", *failures]
    return "\n".join(parts) + "\n"
