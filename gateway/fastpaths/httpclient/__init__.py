"""A lean HTTP/1.1 client for upstream calls (see client.py for why)."""

from gateway.fastpaths.httpclient.client import Endpoint, HttpClient
from gateway.fastpaths.httpclient.errors import BodyTooLarge, UpstreamProtocolError
from gateway.fastpaths.httpclient.response import HttpResponse

__all__ = ["BodyTooLarge", "Endpoint", "HttpClient", "HttpResponse", "UpstreamProtocolError"]
