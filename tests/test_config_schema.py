"""The config file's JSON Schema: committed, printed by `llm-gateway config-schema`, and true
to the example configs in the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.cli import main
from gateway.config import YamlLoader, default_text, schema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "config.schema.json"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _validator() -> jsonschema.Draft202012Validator:
    document = json.loads(SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def _errors(document: Any, *, excerpt: bool = False) -> list[str]:
    """Schema violations as `path: message`; an excerpt may leave out required keys."""
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator().iter_errors(document)
            if not (excerpt and e.validator == "required")]


def _doc_examples() -> list[tuple[str, Any]]:
    """Every YAML block in the docs whose top-level keys are all config keys."""
    keys = set(schema()["properties"])
    found: list[tuple[str, Any]] = []
    for path in DOCS:
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text("utf-8"), re.S)):
            document = yaml.load(block, Loader=YamlLoader)
            if isinstance(document, dict) and set(document) <= keys:
                found.append((f"{path.name}#{index}", document))
    return found


def test_committed_schema_is_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """`llm-gateway config-schema` prints exactly the committed config.schema.json."""
    assert main(["config-schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text("utf-8")


def test_embedded_default_config_validates() -> None:
    """The built-in default config, as written (with its ${VAR}s), satisfies the schema."""
    assert _errors(yaml.load(default_text(), Loader=YamlLoader)) == []


def test_bench_spend_config_validates() -> None:
    """The benchmark's spend config satisfies the schema."""
    text = (ROOT / "bench" / "spend.yaml").read_text("utf-8")
    assert _errors(yaml.load(text, Loader=YamlLoader)) == []


@pytest.mark.parametrize(("name", "document"), _doc_examples(), ids=[n for n, _ in _doc_examples()])
def test_documented_examples_validate(name: str, document: Any) -> None:
    """Each config example in README.md and docs/ satisfies the schema (excerpts may omit
    required keys)."""
    assert _errors(document, excerpt=True) == []


def test_schema_refuses_what_the_loader_refuses() -> None:
    """An unknown key, a negative price or a bad choice is a schema error, as in check-config."""
    document = yaml.load(default_text(), Loader=YamlLoader)
    document["colour"] = "red"
    document["models"]["gpt-4.1"]["price_per_mtok"] = {"output": -1}
    document["providers"]["sim"]["kind"] = "bogus"
    found = _errors(document)
    assert any(e.startswith(": Additional properties") for e in found)
    assert any(e.startswith("models.gpt-4.1.price_per_mtok.output:") for e in found)
    assert any(e.startswith("providers.sim.kind:") for e in found)
