"""`llm-gateway reconcile`: the ledger's cost and tokens beside the provider's own reports."""
