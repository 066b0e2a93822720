"""Ask before spending: a load run that would send many billed LLM calls needs an opt-in.

Against the stand-ins a load run costs nothing, so the notebooks send thousands of calls.
Pointed at a real provider, the same run is billed per token. :func:`estimate_paid_calls`
counts the calls a run would send to *live* providers (paired runs send two per item: the
direct call and the governed one) and prices them with the split pricing table, counting
each prompt at about four characters a token and each answer at its ``max_tokens`` cap, so
the figure is an upper bound. :func:`check_paid_calls` lets up to :data:`FREE_CALLS` through;
past that it raises :class:`~helpers.errors.PaidCallsNotAllowed` unless ``ALLOW_PAID_RUNS``
is true. :func:`helpers.lab.loadgen.run_load` calls it before it sends anything.
Introduced in ``04_measurement_method.ipynb``.

>>> estimate = estimate_paid_calls(stack, items, config)             # doctest: +SKIP
>>> print(estimate)                                                  # doctest: +SKIP
210 billed LLM calls (openai 210), up to about $0.0310 at list prices
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from helpers.errors import PaidCallsNotAllowed
from helpers.gateway.pricing import PricingTable

from .load_results import LoadConfig
from .workload import WorkItem

__all__ = ["FREE_CALLS", "PaidCallEstimate", "check_paid_calls", "estimate_paid_calls"]

#: "A handful": runs up to this many billed calls need no opt-in.
FREE_CALLS = 10
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class PaidCallEstimate:
    """Billed LLM calls a run would send, per live provider, and their cost at list prices."""

    calls: dict[str, int]
    cost_usd: float

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __str__(self) -> str:
        if not self.total:
            return "no billed LLM calls (every provider is the offline stand-in)"
        per = ", ".join(f"{p} {n}" for p, n in sorted(self.calls.items()))
        return (
            f"{self.total} billed LLM calls ({per}), "
            f"up to about ${self.cost_usd:.4f} at list prices"
        )

    def __repr__(self) -> str:
        return f"<PaidCallEstimate {self}>"


def estimate_paid_calls(
    stack: Any, items: Sequence[WorkItem], config: LoadConfig, pricing: PricingTable | None = None
) -> PaidCallEstimate:
    """What ``items`` run under ``config`` would cost on ``stack``'s live providers."""
    live = {p for p in ("openai", "anthropic") if getattr(getattr(stack, p, None), "live", False)}
    per_item = 2 if config.mode == "paired" else 1
    calls: Counter[str] = Counter()
    cost = 0.0
    table = pricing if pricing is not None or not live else PricingTable.load()
    for item in items:
        if item.provider not in live:
            continue
        calls[item.provider] += per_item
        prompt_tokens = max(1, len(item.prompt) // _CHARS_PER_TOKEN)
        assert table is not None
        cost += per_item * table.cost(item.provider, item.model, prompt_tokens, config.max_tokens)
    return PaidCallEstimate(dict(calls), cost)


def check_paid_calls(
    stack: Any, items: Sequence[WorkItem], config: LoadConfig, *, allowed: bool | None = None
) -> PaidCallEstimate:
    """Raise unless the run is free, small, or opted in (``ALLOW_PAID_RUNS`` / ``allowed``)."""
    estimate = estimate_paid_calls(stack, items, config)
    if allowed is None:
        settings = getattr(stack, "settings", None)
        allowed = bool(getattr(settings, "allow_paid_runs", False))
    if estimate.total > FREE_CALLS and not allowed:
        raise PaidCallsNotAllowed(
            f"this run would send {estimate}. Nothing was sent. To go ahead, set "
            "ALLOW_PAID_RUNS=1 in the environment or .env and start again, or use a smaller n."
        )
    return estimate
