"""Error responses: a GatewayError as an HTTP response, in OpenAI's shape unless the
route's dialect gives its own body."""

from __future__ import annotations

from aiohttp import web

from gateway import errors


def error_response(error: errors.GatewayError, extra: dict[str, str],
                   body: bytes | None = None) -> web.Response:
    """`error` with its status and own headers (e.g. retry-after) plus `extra`."""
    headers = {**error.headers, **extra}
    return web.Response(body=error.body_bytes() if body is None else body, status=error.status,
                        headers=headers, content_type="application/json")
