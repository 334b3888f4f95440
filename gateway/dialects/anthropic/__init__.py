"""Anthropic's Messages API as the gateway reads and writes it: request validation,
usage and response attributes, the named-event stream and the error shape. Pure
functions over plain JSON values; no I/O.
"""
