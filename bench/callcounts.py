"""Per-request call counts from a cProfile dump of the gateway (bench/profile.py makes them).

Each profiled function becomes a `Row`: where it lives (`gateway/edge/proxy.py`,
`aiohttp/web_request.py`, `asyncio/events.py`, or `built-in` for a C function called from
Python code), its name and its calls per request. Functions are matched by file and name,
not line, so two builds of different commits line up side by side (two functions of one
name in one file are summed). In the compiled build only what still runs as Python shows
up: interpreted functions and the built-ins they call; those of the gateway's own files
are what a change to the gateway can take off.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILTIN = "built-in"
_SHOWN = 0.005  # calls a request below this show as 0.00: left out of the tables
GATEWAY = "gateway"
_LIB_MARKERS = ("/site-packages/", "/dist-packages/")

# pstats' function key: (filename, first line, name); "~" and 0 for a built-in.
FuncKey = tuple[str, int, str]


@dataclass(frozen=True)
class Row:
    where: str  # the file, from its package down, or BUILTIN
    name: str
    per_request: float

    @property
    def label(self) -> str:
        return self.name if self.where == BUILTIN else f"{self.where}:{self.name}"

    @property
    def package(self) -> str:
        """`gateway`, `aiohttp`, `asyncio`, ... or BUILTIN."""
        return self.where.split("/", 1)[0].removesuffix(".py")

    @property
    def gateway_own(self) -> bool:
        return self.package == GATEWAY


@dataclass(frozen=True)
class Profile:
    """One gateway's profiled window: its rows and the requests it served meanwhile, and who
    called each function (by label: the callers' labels and calls a request)."""

    name: str
    requests: int
    rows: tuple[Row, ...]
    callers: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def total(self, *, python: bool | None = None, gateway: bool = False) -> float:
        """Calls a request: all of them, only Python functions (`python=True`), only built-ins
        (`python=False`), or only the gateway's own interpreted functions (`gateway=True`)."""
        return sum(r.per_request for r in self.rows
                   if (python is None or (r.where != BUILTIN) == python)
                   and (not gateway or r.gateway_own))

    def by_package(self) -> dict[str, float]:
        packages: dict[str, float] = {}
        for row in self.rows:
            packages[row.package] = packages.get(row.package, 0.0) + row.per_request
        return packages


def read_stats(path: Path) -> dict[FuncKey, tuple[Any, ...]]:
    """The stats a cProfile dump holds (pstats' marshalled dict), without printing them."""
    stats: dict[FuncKey, tuple[Any, ...]] = marshal.loads(path.read_bytes())
    return stats


def where(filename: str, code_roots: Sequence[Path] = ()) -> str:
    """A function's file, short: from the package down for an installed or standard-library
    module or one under a code root (the gateway's tree or its compiled copy)."""
    if filename == "~":
        return BUILTIN
    for marker in _LIB_MARKERS:
        if marker in filename:
            return filename.rsplit(marker, 1)[1]
    for root in code_roots:
        prefix = str(root).rstrip("/") + "/"
        if filename.startswith(prefix):
            return filename[len(prefix):]
    _, sep, tail = filename.rpartition("/lib/python")
    if sep and "/" in tail:  # <prefix>/lib/python3.11/asyncio/events.py
        return tail.split("/", 1)[1]
    return filename


def profile(name: str, stats: Mapping[FuncKey, tuple[Any, ...]], requests: int,
            code_roots: Sequence[Path] = ()) -> Profile:
    """Rows by (file, name), calls (primitive and recursive) over `requests`, most first."""
    if requests <= 0:
        raise ValueError(f"{name}: no requests completed while profiled")
    calls: dict[tuple[str, str], int] = {}
    callers: dict[str, dict[str, float]] = {}
    for (filename, _line, func), entry in stats.items():
        key = (where(filename, code_roots), func)
        calls[key] = calls.get(key, 0) + int(entry[1])  # (primitive, all calls, tt, ct, callers)
        into = callers.setdefault(_label(*key), {})
        for (c_file, _c_line, c_func), c_entry in entry[4].items():
            # A caller's entry has the other order: (all calls, primitive, tt, ct).
            c_label = _label(where(c_file, code_roots), c_func)
            into[c_label] = into.get(c_label, 0.0) + int(c_entry[0]) / requests
    rows = (Row(file, func, count / requests) for (file, func), count in calls.items())
    return Profile(name, requests, tuple(sorted(rows, key=lambda r: (-r.per_request, r.label))),
                   callers)


def _label(file: str, func: str) -> str:
    return Row(file, func, 0.0).label


def callers_report(prof: Profile, match: str) -> str:
    """Who calls each function whose label contains `match`, calls a request. The caller is
    the nearest Python frame: in the compiled build, the interpreted function (or the event
    loop's callback) that entered the compiled code making the call."""
    lines: list[str] = []
    for row in prof.rows:
        if match not in row.label or row.per_request < _SHOWN:
            continue
        lines += ["", f"`{row.label}`, {row.per_request:.2f} a request, called by:"]
        by = sorted(prof.callers.get(row.label, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        lines += [f"- {count:.2f} `{label}`" for label, count in by if count >= _SHOWN] or [
            "- (no Python caller: the event loop, or compiled code called first)"]
    return "\n".join(lines or [f"No function matching {match!r} was called."]) + "\n"


def report(profiles: Sequence[Profile], top: int) -> str:
    """Markdown: totals a request, by package, the top `top` functions, and every function of
    the gateway's own files, one column per profile (the first orders the rows)."""
    names = [p.name for p in profiles]
    lines = ["| requests profiled | " + " | ".join(f"{p.requests:,}" for p in profiles) + " |", ""]
    lines += _table("calls a request", names, [
        ("all", [p.total() for p in profiles]),
        ("Python functions", [p.total(python=True) for p in profiles]),
        ("of them, the gateway's own (interpreted)", [p.total(gateway=True) for p in profiles]),
        ("built-ins called from Python", [p.total(python=False) for p in profiles]),
    ])
    packages = [p.by_package() for p in profiles]
    order = sorted({k for pk in packages for k in pk}, key=lambda k: (-packages[0].get(k, 0.0), k))
    lines += ["", *_table("package", names, [(k, [pk.get(k, 0.0) for pk in packages]) for k in order],
                          trim=True)]
    lines += ["", *_table(f"top {top} functions, calls a request", names,
                          _function_rows(profiles, lambda r: True)[:top], code=True, trim=True)]
    own = _function_rows(profiles, lambda r: r.gateway_own)
    lines += ["", *(_table("the gateway's interpreted functions", names, own, code=True, trim=True)
                    if own
                    else ["No function of the gateway's own files ran as Python."])]
    return "\n".join(lines) + "\n"


def _function_rows(profiles: Sequence[Profile], keep: Callable[[Row], bool]
                   ) -> list[tuple[str, list[float]]]:
    counts = [{r.label: r.per_request for r in p.rows if keep(r)} for p in profiles]
    labels = sorted({label for c in counts for label in c},
                    key=lambda label: (-max(c.get(label, 0.0) for c in counts), label))
    return [(label, [c.get(label, 0.0) for c in counts]) for label in labels]


def _table(head: str, names: Sequence[str], rows: Sequence[tuple[str, Sequence[float]]],
           code: bool = False, trim: bool = False) -> list[str]:
    """One row per label (as code when `code`: function names), a column per profile;
    `trim` leaves out the rows under _SHOWN in every column."""
    delta = len(names) == 2
    header = [head, *names, *(["difference"] if delta else [])]
    out = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    hidden = 0
    for label, values in rows:
        if trim and max(values, default=0.0) < _SHOWN:
            hidden += 1
            continue
        cells = [f"{v:.2f}" for v in values]
        if delta:
            cells.append(f"{values[0] - values[1]:+.2f}")
        shown = f"`{label}`" if code else label
        out.append(f"| {shown} | " + " | ".join(cells) + " |")
    if hidden:
        out.append(f"| ({hidden} more under {_SHOWN} a request) |" + " |" * (len(header) - 1))
    return out
