"""OpenTelemetry-native LLM gateway: an OpenAI-compatible proxy that measures every call."""

__version__ = "0.1.0"
