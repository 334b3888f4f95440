"""Message content to files through opentelemetry-util-genai's `upload` completion hook
(OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK), instead of onto spans and events."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from gateway.telemetry.content import ContentMode
from gateway.telemetry.upload import ContentUpload, content_upload
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import running_gateway, upstream_config
from tests.support.telemetry import attrs, make_test_telemetry

HOOK = "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK"
BASE = "OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH"


class RecordingHook:
    """A completion hook that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def on_completion(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_off_unless_named(caplog: pytest.LogCaptureFixture) -> None:
    """No hook by default; `upload` without a base path is refused with a clear log line."""
    assert content_upload({}) is None
    assert content_upload({HOOK: "upload"}) is None
    assert f"needs {BASE}" in caplog.text
    assert content_upload({HOOK: "no-such-hook"}) is None
    assert "no such completion hook" in caplog.text


async def _chat(base_url: str, key: str = "x") -> None:
    async with AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4.1", messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])


@pytest.mark.integration
async def test_upload_hook_writes_content_to_a_directory(
        upstream: RunningUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the `upload` hook and capture on, the messages land in files under the base path
    and the CLIENT span carries only references to them: no content attribute, no event."""
    monkeypatch.setenv(BASE, str(tmp_path))  # util-genai reads its own variables from os.environ
    upload = content_upload({HOOK: "upload", BASE: str(tmp_path)})
    assert upload is not None
    upstream.state.behaviour = Behaviour(content="Hi back")
    tt = make_test_telemetry(ContentMode.SPAN_AND_EVENT)
    tt.telemetry.upload = upload
    async with running_gateway(upstream_config(upstream.base_url),
                               environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
        await _chat(gw.base_url)
    upload.shutdown(5.0)
    (span,) = tt.spans_named("chat")
    a = attrs(span)
    assert not {"gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.system_instructions"} & set(a)
    assert span.events == ()

    def stored(name: str) -> Any:
        ref = str(a[f"{name}_ref"])
        assert ref.startswith(f"file://{tmp_path}/")  # fsspec's URL of the local file
        path = Path(ref.removeprefix("file://"))
        return json.loads(path.read_text())

    assert stored("gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello"}]}]
    assert stored("gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    (output,) = stored("gen_ai.output.messages")
    assert output["parts"] == [{"type": "text", "content": "Hi back"}]
    assert output["finish_reason"] == "stop"


@pytest.mark.integration
async def test_narrowed_callers_content_never_reaches_the_hook(
        upstream: RunningUpstream, caplog: pytest.LogCaptureFixture) -> None:
    """The hook gets only what capture lets through: a key narrowed by the config sends it
    nothing, another key's call arrives."""
    caplog.set_level(logging.INFO)
    hook = RecordingHook()
    tt = make_test_telemetry(ContentMode.SPAN_ONLY)
    tt.telemetry.upload = ContentUpload(hook)
    extra = """
keys:
  - {alias: quiet, team: t, key_env: QUIET_KEY}
  - {alias: loud, team: t, key_env: LOUD_KEY}
telemetry:
  capture_content: {keys: {quiet: false}}
"""
    environ = {"UPSTREAM_KEY": UPSTREAM_KEY, "QUIET_KEY": "sk-quiet-1", "LOUD_KEY": "sk-loud-2"}
    async with running_gateway(upstream_config(upstream.base_url, extra=extra),
                               environ=environ, telemetry=tt) as gw:
        await _chat(gw.base_url, "sk-quiet-1")
        assert hook.calls == []
        await _chat(gw.base_url, "sk-loud-2")
    (call,) = hook.calls
    assert call["inputs"][0].parts[0].content == "Hello"
