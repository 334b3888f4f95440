"""The gateway's threat model, as tests: each module states one threat (a hostile client,
a hostile upstream, an operator's mistake) and proves what it can and cannot do."""
