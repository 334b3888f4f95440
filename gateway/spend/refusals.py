"""The spend guard's refusals, as client-facing errors.

Kept out of hook.py: that module is compiled with mypyc in the optimised build,
and a compiled subclass of an interpreted class loses its class-level
attribute overrides (the `code` below).
"""

from __future__ import annotations

from gateway import errors


class RunawayRefused(errors.RateLimited):
    """The runaway guard throttles or blocks this key (429, OpenAI's rate-limit shape)."""

    code = "runaway_detected"
    error_type = "runaway"


class SpendUnavailable(errors.ServiceUnavailable):
    """The spend store cannot record: refuse rather than spend money nobody accounts for."""

    code = "spend_store_unavailable"


class UnpricedRefused(errors.PermissionDenied):
    """`spend.unpriced: refuse` and the model has no price: no call whose cost is unknown."""

    code = "model_unpriced"
    error_type = "model_unpriced"
