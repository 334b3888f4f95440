"""The fast paths' boundary: the rest of the gateway reaches them through `gateway.fastpaths`
only, and nothing outside that folder touches the OpenTelemetry SDK's private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gateway.fastpaths

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"
FASTPATHS = PACKAGE / "fastpaths"


def _outside_modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if FASTPATHS not in path.parents:
            yield path, ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) for every import statement."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def test_the_rest_of_the_gateway_imports_only_the_fastpaths_package() -> None:
    """No module outside gateway/fastpaths imports one of its modules or a private name."""
    offenders = []
    for path, tree in _outside_modules():
        for module, names in _imports(tree):
            if module.startswith("gateway.fastpaths."):
                offenders.append(f"{path.name}: {module}")
            if module == "gateway.fastpaths":
                offenders += [f"{path.name}: {name}" for name in names
                              if name.startswith("_") or name not in gateway.fastpaths.__all__]
            if module == "gateway" and "fastpaths" in names:
                offenders.append(f"{path.name}: gateway.fastpaths as a module")
    assert offenders == []


# The logs API's and SDK's public classes, which still live under an underscore while the
# logs signal is experimental in Python (their only home; telemetry/logs.py and
# telemetry/events.py use them).
LOGS_SDK = {"opentelemetry._logs", "opentelemetry.sdk._logs", "opentelemetry.sdk._logs.export"}


def test_only_the_fastpaths_touch_opentelemetrys_private_names() -> None:
    """Outside gateway/fastpaths no import names a private OpenTelemetry module or name
    (but the logs SDK's public classes), and no attribute read starts with an underscore on
    anything but our own objects."""
    offenders = []
    for path, tree in _outside_modules():
        for module, names in _imports(tree):
            if module in LOGS_SDK and not any(name.startswith("_") for name in names):
                continue
            if module.startswith("opentelemetry") and (
                    any(part.startswith("_") for part in module.split("."))
                    or any(name.startswith("_") for name in names)):
                offenders.append(f"{path.name}: {module} {names}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                offenders.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert offenders == []
