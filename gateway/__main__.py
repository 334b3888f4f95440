"""`python -m gateway` runs the same command line as `llm-gateway`."""

from gateway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
