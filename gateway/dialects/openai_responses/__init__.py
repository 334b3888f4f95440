"""OpenAI's Responses API (`POST /v1/responses`) as a dialect of the request path."""
