"""The upstream client's own exception (its own module: mypyc cannot compile a
subclass of a built-in exception other than Exception itself)."""


class UpstreamProtocolError(ConnectionError):
    """The upstream broke HTTP/1.1 (unparseable bytes, an encoding we cannot decode)."""
