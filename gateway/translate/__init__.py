"""Translation between API dialects, one module per pair: requests, JSON answers and
streams (event by event, never buffered whole). What has a meaning on both sides is
mapped; what has none is refused with a clear `InvalidRequest` (400).
"""
