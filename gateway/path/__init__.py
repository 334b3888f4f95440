"""The request path below the edge, one module per layer, each calling only downward:

- lifecycle.py: a call's life around the chain (SERVER span, key, parse, model lookup;
  status, per-request metrics and `on_finish` at the end);
- chain.py: the order of attempts (fallbacks, retries, breakers, hooks, one deadline);
- attempt.py: one upstream attempt, returning an answer of answer.py (a JSON body, or
  an event stream read through its dialect's watcher);
- relay.py: writes an event stream to the client (called by the edge).

None of them imports aiohttp; docs/architecture.md draws the path.
"""
