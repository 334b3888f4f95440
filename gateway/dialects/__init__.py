"""API dialects: one module per client API the gateway speaks (see base.py for the seam)."""
