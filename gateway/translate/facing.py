"""What every translation does alike: towards the client it is the client's own dialect
(its parse, prompt estimate, request attributes and error shapes); only what faces the
upstream differs (`translate.dialects`, `translate.embeddings`)."""

from __future__ import annotations

from typing import Any

from gateway.dialects.base import ClientRequest, Dialect
from gateway.errors import GatewayError


class ClientFacing:
    """The client's dialect towards the client, named `client>upstream`."""

    forward_headers: tuple[str, ...] = ()  # the client's headers mean nothing upstream
    routes: tuple[str, ...] = ()

    def __init__(self, client: Dialect, upstream_name: str) -> None:
        self.client = client
        self.name = f"{client.name}>{upstream_name}"
        self.operation = client.operation
        self.pass_headers = client.pass_headers

    def parse(self, raw: bytes) -> ClientRequest:
        return self.client.parse(raw)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return self.client.estimate_prompt(body)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        return self.client.request_attributes(request, capture)

    def error_body(self, error: GatewayError) -> bytes:
        return self.client.error_body(error)

    def stream_error(self, message: str, code: str) -> bytes:
        return self.client.stream_error(message, code)
