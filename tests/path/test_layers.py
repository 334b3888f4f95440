"""The request path's layering, checked on the source: imports only run downward,
and only the edge and the HTTP client side import aiohttp."""

from __future__ import annotations

import ast
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
