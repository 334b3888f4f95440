"""Spend control: virtual keys, the spend ledger, budgets that cannot be overspent
under concurrency, threshold notifications and the runaway guard.

Kept import-light on purpose: `gateway.config` imports `gateway.spend.config`,
so this package's `__init__` must not pull in the app or aiohttp.
"""
