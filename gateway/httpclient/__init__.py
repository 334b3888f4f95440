"""A lean HTTP/1.1 client for upstream calls (see client.py for why)."""

from gateway.httpclient.client import Endpoint, HttpClient
from gateway.httpclient.errors import UpstreamProtocolError
from gateway.httpclient.response import HttpResponse

__all__ = ["Endpoint", "HttpClient", "HttpResponse", "UpstreamProtocolError"]
