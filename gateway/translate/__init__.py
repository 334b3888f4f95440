"""Translation between API dialects: one module of pure mappings per pair with chat
completions (requests, JSON answers, and streams event by event, never buffered whole),
`sides` saying how each dialect meets chat, `dialects` joining two sides into the dialect
an attempt runs with, and `embeddings` between OpenAI's and Gemini's. What has a meaning
on both sides is mapped; what has none is refused with a clear `InvalidRequest` (400).
"""
