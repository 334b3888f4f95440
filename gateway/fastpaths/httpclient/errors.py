"""The upstream client's own exception (its own module: mypyc cannot compile a
subclass of a built-in exception other than Exception itself)."""


class UpstreamProtocolError(ConnectionError):
    """The upstream broke HTTP/1.1 (unparseable bytes, an encoding we cannot decode)."""


class BodyTooLarge(UpstreamProtocolError):
    """The body (after decompression) went past the response's size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upstream body was larger than {limit} bytes")
        self.limit = limit
