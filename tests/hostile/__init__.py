"""The gateway's threat model, as tests: each module states one threat (a hostile client,
a hostile upstream, an operator's or a new user's mistake) in its docstring, reproduces
it on the wire or with real processes, and proves what it can and cannot do
(docs/security.md)."""
