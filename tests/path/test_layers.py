"""The request path's layering, checked on the source: imports only run downward,
only the edge and the HTTP client side import aiohttp, and no two packages depend on
each other."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"

# Rank of each layer, top first; a module imports only lower ranks or its own layer.
# Everything not listed (dialects, call, providers, telemetry, resilience, spend, ...) is
# the foundation, rank 0, which imports none of the layers above it. The entry points
# (command line) sit above the edge.
LAYERS: dict[str, tuple[int, str]] = {
    "gateway.__main__": (5, "entry"),
    "gateway.cli": (5, "entry"),
    "gateway.app": (4, "edge"),
    "gateway.state": (4, "edge"),
    "gateway.server": (4, "edge"),
    "gateway.edge": (4, "edge"),
    "gateway.path.lifecycle": (3, "lifecycle"),
    "gateway.path.relay": (3, "relay"),
    "gateway.path.chain": (2, "chain"),
    "gateway.path.attempt": (1, "attempt"),
    "gateway.path.answer": (1, "attempt"),
}
# Who may import aiohttp: the edge (the app, its state, the server process), the HTTP
# client side (the pooled client, the OpenAI adapter's aiohttp fallback endpoint and the
# registry that hands either transport to it) and the spend webhooks' HTTP client.
# Command-line modules sit above everything, as `gateway.cli` does: they may import any
# package, and are left out of the packages' dependencies.
ENTRY_POINTS = ("cli", "__main__")
AIOHTTP_ALLOWED = ("gateway.app", "gateway.state", "gateway.server", "gateway.edge",
                   "gateway.fastpaths.httpclient",
                   "gateway.providers.openai", "gateway.providers.registry",
                   "gateway.spend.notify", "gateway.reconcile.admin_http")


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(GATEWAY.rglob("*.py")):
        parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def _imports(tree: ast.Module, module: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _layer(name: str) -> tuple[int, str]:
    for prefix, layer in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            return layer
    return (0, "foundation")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _package_imports() -> dict[str, dict[str, str]]:
    """For each package of `gateway/`, the other packages its modules import, each with
    one module's import that shows it (command-line modules aside)."""
    packages = {p.name for p in GATEWAY.iterdir() if (p / "__init__.py").is_file()}
    graph: dict[str, dict[str, str]] = {package: {} for package in packages}
    for module, tree in _modules().items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in packages or parts[-1] in ENTRY_POINTS:
            continue
        for imported in sorted(_imports(tree, module)):
            other = imported.split(".")
            if other[0] == "gateway" and len(other) > 1 and other[1] in packages \
                    and other[1] != parts[1]:
                graph[parts[1]].setdefault(other[1], f"{module} imports {imported}")
    return graph


def _cycle(graph: dict[str, dict[str, str]]) -> list[str]:
    """One cycle of the graph as its packages in order (the first repeated at the end),
    or [] when it has none."""
    done: set[str] = set()

    def visit(package: str, path: list[str]) -> list[str]:
        if package in path:
            return [*path[path.index(package):], package]
        if package in done:
            return []
        for other in sorted(graph[package]):
            found = visit(other, [*path, package])
            if found:
                return found
        done.add(package)
        return []

    for package in sorted(graph):
        found = visit(package, [])
        if found:
            return found
    return []


def test_imports_only_run_downward() -> None:
    """No module imports a layer above its own or a sibling layer (the chain never
    imports the edge, the attempt never imports the chain, the relay never the chain)."""
    upward = []
    for module, tree in _modules().items():
        rank, layer = _layer(module)
        for imported in _imports(tree, module):
            if not imported.startswith("gateway."):
                continue
            other_rank, other_layer = _layer(imported)
            if other_layer != layer and other_rank >= rank and other_rank > 0:
                upward.append(f"{module} ({layer}) imports {imported} ({other_layer})")
    assert not upward, "\n".join(sorted(upward))


def test_only_the_edge_and_the_http_client_import_aiohttp() -> None:
    """Below the edge, the request path (lifecycle, chain, attempt, relay, dialects,
    providers' interface, hooks, telemetry, resilience, spend) never imports aiohttp."""
    offenders = sorted(
        module for module, tree in _modules().items()
        if not _under(module, AIOHTTP_ALLOWED)
        and any(_under(name, ("aiohttp",)) for name in _imports(tree, module)))
    assert not offenders, offenders


def test_no_packages_depend_on_each_other() -> None:
    """The packages' imports have no cycle, through two packages or more (the spend
    ledger's writer carries the stored-response owners, so `spend` may import `stored`,
    and `stored` then imports nothing of `spend`; both open their SQLite files with the
    foundation's `sqlitefile`)."""
    graph = _package_imports()
    cycle = _cycle(graph)
    shown = [graph[a][b] for a, b in itertools.pairwise(cycle)]
    assert not cycle, " -> ".join(cycle) + ":\n" + "\n".join(shown)


def test_the_checks_see_the_layers() -> None:
    """The walk finds every layer's module, so a rename cannot make the checks vacuous."""
    modules = _modules()
    for name in ("gateway.edge.proxy", "gateway.path.lifecycle", "gateway.path.relay",
                 "gateway.path.chain", "gateway.path.attempt", "gateway.path.answer",
                 "gateway.dialects.base"):
        assert name in modules
    assert "gateway.path.chain" in _imports(modules["gateway.edge.proxy"], "gateway.edge.proxy")
    assert _layer("gateway.edge.proxy") > _layer("gateway.path.chain") > _layer(
        "gateway.path.attempt") > _layer("gateway.dialects.base")
    graph = _package_imports()
    assert "telemetry" in graph["path"] and "stored" in graph["spend"]
    assert _cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == ["a", "b", "c", "a"]
