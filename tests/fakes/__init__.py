"""Hand-written fakes that speak real wire formats, shared by tests and the benchmark."""
