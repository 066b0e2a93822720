"""Fault injection for the provider stand-ins, to demonstrate retries and timeouts.

Two independent ways to make a request fail:

* **Configured rates** (``create_standin_app(faults={"429": 0.1, "500": 0.05, "slow": 0.01})``,
  CLI ``--fault 429=0.1``): each request draws one number from its seeded RNG and fails
  with that probability. ``slow`` does not fail; it makes the first token come
  :data:`SLOW_FACTOR` times later (still multiplied by the time scale).
* **A per-request header** ``x-standin-fail: 429x2``: answer 429 while the SDK's
  ``x-stainless-retry-count`` header is below 2. The OpenAI and Anthropic Python SDKs send
  that header on every attempt (0 on the first), so with ``max_retries=2`` the third
  attempt succeeds and with ``max_retries=1`` the call raises. Without a count
  (``x-standin-fail: 500``) every attempt fails.

Kinds: ``429`` (rate limited), ``500`` (server error), ``529`` (Anthropic "overloaded";
the OpenAI route answers it as 503), ``slow``. Introduced in ``01_gateway_mode_openai.ipynb``.

>>> parse_fail_header("429x2")
FailRule(kind='429', attempts=2)
>>> FaultRates.parse(["429=0.1", "slow=0.01"])
FaultRates(429=0.1, slow=0.01)
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "FAULT_KINDS",
    "RETRY_AFTER_S",
    "SLOW_FACTOR",
    "FailRule",
    "FaultRates",
    "parse_fail_header",
    "retry_after_headers",
]

FAULT_KINDS = ("429", "500", "529", "slow")
#: How much later the first token comes under the "slow" fault.
SLOW_FACTOR = 10.0
#: Simulated wait a rate-limited or overloaded response asks for (before the time scale).
RETRY_AFTER_S = 1.0

_HEADER = re.compile(r"^\s*(429|500|529|slow)\s*(?:x\s*(\d{1,4}))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FailRule:
    """Parsed ``x-standin-fail`` header: fail with ``kind`` on the first ``attempts`` tries."""

    kind: str
    attempts: int | None = None  # None: every attempt

    def applies(self, retry_count: int) -> bool:
        return self.attempts is None or retry_count < self.attempts


def parse_fail_header(value: str) -> FailRule:
    """``"429x2"`` -> ``FailRule("429", 2)``; raises ``ValueError`` with the accepted forms."""
    match = _HEADER.match(value)
    if not match:
        raise ValueError(
            f"x-standin-fail: {value!r} is not understood; use KIND or KINDxN with KIND one "
            f"of {', '.join(FAULT_KINDS)} (for example '429x2')"
        )
    count = match.group(2)
    return FailRule(match.group(1).lower(), int(count) if count is not None else None)


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault kind per request; they must sum to at most 1."""

    rates: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, rate in self.rates.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
            if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
                raise ValueError(f"fault rate for {kind!r} must be between 0 and 1, got {rate!r}")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to more than 1: {dict(self.rates)}")
        # A fixed order keeps the outcome of a draw independent of dict insertion order.
        object.__setattr__(
            self, "rates", {k: float(self.rates[k]) for k in FAULT_KINDS if k in self.rates}
        )

    @classmethod
    def parse(cls, items: Iterable[str]) -> FaultRates:
        """From CLI items like ``"429=0.1"``; raises ``ValueError`` naming the bad item."""
        rates: dict[str, float] = {}
        for item in items:
            kind, _, raw = item.partition("=")  # no "=": raw is "", which float() refuses
            try:
                rates[kind.strip().lower()] = float(raw)
            except ValueError:
                raise ValueError(f"--fault {item!r}: expected KIND=RATE, e.g. 429=0.1") from None
        return cls(rates)

    @classmethod
    def coerce(cls, value: FaultRates | Mapping[str, float] | None) -> FaultRates:
        if isinstance(value, FaultRates):
            return value
        return cls({str(k): v for k, v in (value or {}).items()})

    def draw(self, rng: random.Random) -> str | None:
        """Always consumes exactly one number, so later draws do not depend on the rates."""
        u = rng.random()
        for kind, rate in self.rates.items():
            if u < rate:
                return kind
            u -= rate
        return None

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:g}" for k, v in self.rates.items())
        return f"FaultRates({inner})"


def retry_after_headers(time_scale: float) -> dict[str, str]:
    """``retry-after`` (whole seconds, as the real APIs send) and ``retry-after-ms``.

    Both SDKs prefer ``retry-after-ms``. It is never 0: a zero makes them fall back to
    their own exponential backoff (0.5 s, 1 s, ...), which would slow fast CI runs down.
    """
    wait_ms = max(1, round(RETRY_AFTER_S * time_scale * 1000))
    return {"retry-after": str(math.ceil(wait_ms / 1000)), "retry-after-ms": str(wait_ms)}
