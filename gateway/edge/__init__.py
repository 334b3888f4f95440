"""The edge: the aiohttp handlers and the route table, the only part of the request
path that knows the HTTP server's types, status codes and response headers."""
