"""The floor: a bare aiohttp pass-through proxy with no telemetry, parsing nothing.

The gateway's overhead is measured against this, so it does only what any
proxy must: read the body, swap in the upstream key (where the client's dialect
puts it: `Authorization`, `x-api-key` or `x-goog-api-key`), forward the path and
query over one shared ClientSession, and relay the answer (SSE chunk by chunk as
it arrives). It serves every dialect the same way.

    python -m bench.bare_proxy --port 8090 --upstream http://127.0.0.1:8091
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bench.serving import serve_until_signal

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)
API_KEY = web.AppKey("api_key", str)


# Where each dialect's client puts its key; the proxy puts the upstream key in the same place.
_KEY_HEADERS = ("x-api-key", "x-goog-api-key")
_FORWARDED = ("anthropic-version", "anthropic-beta")


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    url = request.app[UPSTREAM] + request.path_qs
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    for name in _KEY_HEADERS:
        if name in request.headers:
            headers[name] = request.app[API_KEY]
            break
    else:
        headers["Authorization"] = "Bearer " + request.app[API_KEY]
    for name in _FORWARDED:
        value = request.headers.get(name)
        if value is not None:
            headers[name] = value
    async with request.app[SESSION].request(request.method, url, data=body, headers=headers) as upstream:
        content_type = upstream.headers.get("Content-Type", "application/json")
        if not content_type.startswith("text/event-stream"):
            payload = await upstream.read()
            return web.Response(body=payload, status=upstream.status, headers={"Content-Type": content_type})
        response = web.StreamResponse(status=upstream.status, headers={"Content-Type": content_type})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def health(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(upstream: str, api_key: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app[API_KEY] = api_key

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/health", health)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


async def serve(host: str, port: int, upstream: str, api_key: str) -> None:
    await serve_until_signal(create_app(upstream, api_key), host, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True,
                        help="the upstream's root URL (paths are forwarded as the client sent them)")
    parser.add_argument("--api-key", default="sk-bench")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    coro = serve(args.host, args.port, args.upstream, args.api_key)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
