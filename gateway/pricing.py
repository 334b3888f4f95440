"""Cost of a call from its model's resolved prices: pure, and cheap per call.

A model's prices are resolved once (at start and on reload, `gateway.catalog`) into
`ModelPricing`: integer pico-dollars per token (US dollars per million tokens times
10^6) for each token type, per price tier. A call's cost is then a tier pick and a
few integer multiplications; Decimal only for the one conversion at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.usage import Usage

PICO_PER_USD = 10**12
_USD_PER_PICO = Decimal("1e-12")
# Prices are US dollars per million tokens; one pico-dollar per token is 10^-6 of that.
PICO_PER_MTOK_UNIT = 10**6


@dataclass(frozen=True)
class Rates:
    """One tier's prices, pico-dollars per token. Every type is set (resolution fills in
    a type the model has no own price for from the one it is billed as)."""

    input: int
    cached_input: int
    cache_write: int  # a five-minute cache entry (the default lifetime)
    cache_write_1h: int
    output: int
    reasoning: int
    input_audio: int
    output_audio: int
    input_image: int
    output_image: int

    @property
    def input_ceiling(self) -> int:
        """The most one input token can cost."""
        return max(self.input, self.cache_write, self.cache_write_1h, self.input_audio,
                   self.input_image)

    @property
    def output_ceiling(self) -> int:
        """The most one output token can cost."""
        return max(self.output, self.reasoning, self.output_audio, self.output_image)


FREE = Rates(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class ModelPricing:
    """A model's effective prices: `base`, and `tiers` that replace it for every token of a
    call whose prompt (all input tokens, cached or not) is above their threshold (ascending).
    `priced` is False for a model with no price anywhere (its rates are then all zero)."""

    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()
    priced: bool = True

    def rates(self, input_tokens: int) -> Rates:
        """The rates a call with `input_tokens` of prompt pays."""
        chosen = self.base
        for above, rates in self.tiers:
            if input_tokens > above:
                chosen = rates
        return chosen


UNPRICED = ModelPricing(FREE, (), False)


def cost_pico(usage: Usage, pricing: ModelPricing) -> int:
    """The call's cost in pico-dollars. Input: cache reads at the cached price, cache writes
    at their lifetime's write price, audio and image tokens at theirs, the rest at the input
    price. Output: reasoning, audio and image tokens at theirs, the rest at the output price.
    A part larger than what is left of its total is capped (a confused upstream's counts
    never bill more tokens than the call had). Conditionals, not min(): a builtin call costs
    more than the arithmetic here."""
    r = pricing.rates(usage.input) if pricing.tiers else pricing.base
    rest = usage.input
    cached = usage.cache_read if usage.cache_read < rest else rest
    rest -= cached
    pico = cached * r.cached_input
    if usage.cache_creation:
        written = usage.cache_creation if usage.cache_creation < rest else rest
        written_1h = usage.cache_creation_1h if usage.cache_creation_1h < written else written
        rest -= written
        pico += (written - written_1h) * r.cache_write + written_1h * r.cache_write_1h
    if usage.input_audio or usage.input_image:
        audio = usage.input_audio if usage.input_audio < rest else rest
        rest -= audio
        image = usage.input_image if usage.input_image < rest else rest
        rest -= image
        pico += audio * r.input_audio + image * r.input_image
    out = usage.output
    if usage.reasoning or usage.output_audio or usage.output_image:
        reasoning = usage.reasoning if usage.reasoning < out else out
        out -= reasoning
        audio = usage.output_audio if usage.output_audio < out else out
        out -= audio
        image = usage.output_image if usage.output_image < out else out
        out -= image
        pico += reasoning * r.reasoning + audio * r.output_audio + image * r.output_image
    return pico + rest * r.input + out * r.output


def cost_usd(usage: Usage, pricing: ModelPricing) -> Decimal:
    """`cost_pico` in US dollars (exact: a product of exact decimals)."""
    return Decimal(cost_pico(usage, pricing)) * _USD_PER_PICO


def cache_savings_usd(usage: Usage, pricing: ModelPricing) -> float:
    """What the call's cache reads saved against paying full input price for them."""
    if not usage.cache_read:
        return 0.0
    r = pricing.rates(usage.input)
    return min(usage.cache_read, usage.input) * (r.input - r.cached_input) / PICO_PER_USD


def worst_case_pico(prompt_tokens: int, max_output_tokens: int, pricing: ModelPricing) -> int:
    """Upper bound of a call's cost before it is made (at the tier of its prompt): no cache
    discount, every input token at the dearest input price and every output token at the
    dearest output price."""
    r = pricing.rates(prompt_tokens)
    return prompt_tokens * r.input_ceiling + max_output_tokens * r.output_ceiling


def worst_case_cost_usd(prompt_tokens: int, max_output_tokens: int,
                        pricing: ModelPricing) -> Decimal:
    return Decimal(worst_case_pico(prompt_tokens, max_output_tokens, pricing)) * _USD_PER_PICO
