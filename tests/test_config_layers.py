"""The core config knows no feature: features register their own sections."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway

PACKAGE = Path(gateway.__file__).parent
CORE = ["coreconfig.py", "confread.py", "envsubst.py"]
FEATURE_CONFIGS = ["resilience/config.py", "spend/config.py"]


def _imports(relative: str) -> set[str]:
    tree = ast.parse((PACKAGE / relative).read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_config_imports_no_feature() -> None:
    """The core sections and the config vocabulary import nothing from spend or resilience."""
    for module in CORE:
        gateway_imports = {name for name in _imports(module) if name.startswith("gateway")}
        # limits, attribution: core sections; redact: which provider header values are
        # credentials; pricing, catalog: a model's effective prices, resolved at load (core,
        # not a feature)
        allowed = {"gateway.confread", "gateway.envsubst", "gateway.limits",
                   "gateway.attribution_config", "gateway.redact", "gateway.pricing", "gateway.catalog"}
        assert gateway_imports <= allowed, (module, gateway_imports)


def test_feature_configs_build_on_the_core_only() -> None:
    """A feature's config imports the core and the vocabulary, never the assembled gateway.config."""
    for module in FEATURE_CONFIGS:
        config_imports = {name for name in _imports(module) if "config" in name or "confread" in name}
        assert "gateway.config" not in config_imports, module
        assert config_imports <= {"gateway.confread", "gateway.coreconfig"}, (module, config_imports)

