"""Where a paired overhead goes, and what it says about a published claim.

A paired overhead (governed minus direct, per pair) is more than the gateway's work. Its
median splits into four parts, each a difference of two measured medians, so the parts add
up to the total exactly:

* **floor**: two round trips to an empty ``GET /health`` with the same client library,
  back to back (the transport: any request costs this much before the gateway does anything);
* **gateway's own work**: the pre-check and the audit, back to back, above that floor;
* **idle wake-up penalty**: the same two calls timed inside the pairs, above the same two
  calls back to back: in a pair each call follows a wait (the LLM call, the other arm),
  and a machine that has idled runs the next request from cold caches and halted CPUs;
* **the rest**: what the governed arm spends outside the two calls (building the requests
  and the usage record, the LLM call's own variation against the direct one).

The back-to-back numbers come from :func:`helpers.lab.latency_floor.measure_floor`; the pairs
from :func:`helpers.lab.pipeline_stats.paired_overhead`. Introduced in
``03_latency_analysis.ipynb``.

>>> parts = decompose_overhead(paired_overhead(run), floor)         # doctest: +SKIP
>>> print(parts)                                                    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .latency_floor import FloorResult
from .overhead_plots import CLAIM_MS

__all__ = ["OverheadParts", "claim_verdict", "decompose_overhead"]


@dataclass(frozen=True)
class OverheadParts:
    """The median paired overhead (ms) and the four parts that add up to it."""

    total_ms: float
    floor_ms: float
    gateway_ms: float
    idle_ms: float
    rest_ms: float
    n_pairs: int
    n_back_to_back: int
    library: str

    def parts(self) -> dict[str, float]:
        """The parts in the order they are explained, in ms."""
        return {
            "floor: two round trips to an empty /health": self.floor_ms,
            "idle wake-up penalty": self.idle_ms,
            "gateway's own work above the floor": self.gateway_ms,
            "the rest (the governed arm outside the two calls)": self.rest_ms,
        }

    def table(self) -> pd.DataFrame:
        """One row per part with its ms and share of the total, and the total last."""
        parts = self.parts()
        frame = pd.DataFrame(
            {
                "ms": [*parts.values(), self.total_ms],
                "share of total": [v / self.total_ms for v in parts.values()] + [1.0],
            },
            index=pd.Index([*parts, "paired overhead, p50 (measured)"], name="part"),
        )
        return frame

    def sum_line(self) -> str:
        """``a + b + c + d = total`` with the values, as printed under the table."""
        values = list(self.parts().values())
        terms = f"{values[0]:.3f}" + "".join(
            f" - {-v:.3f}" if v < 0 else f" + {v:.3f}" for v in values[1:]
        )
        return f"{terms} = {sum(self.parts().values()):.3f} ms (measured: {self.total_ms:.3f} ms)"

    def __str__(self) -> str:
        return (
            f"paired overhead p50 {self.total_ms:.3f} ms ({self.library}, {self.n_pairs} pairs) "
            f"= {self.sum_line()}"
        )


def decompose_overhead(
    pairs: pd.DataFrame, floor: FloorResult, library: str = "httpx.AsyncClient"
) -> OverheadParts:
    """Split the median of ``pairs["overhead_ms"]`` (pairs with a synchronous audit, sent
    through ``library``) using the back-to-back samples of the same ``library`` in ``floor``.
    """
    if library not in floor.samples:
        raise ValueError(f"the floor was not measured with {library!r}: {list(floor.samples)}")
    if pairs.empty:
        raise ValueError("no pairs to decompose: every pair failed or none was run")
    s = floor.samples[library]
    total = float(np.median(pairs["overhead_ms"]))
    in_pairs = float(np.median(pairs["pre_check_ms"] + pairs["audit_ms"]))
    back_to_back = float(np.median(s["pre_check"] + s["audit"]))
    health = 2 * float(np.median(s["health"]))
    return OverheadParts(
        total_ms=total,
        floor_ms=health,
        gateway_ms=back_to_back - health,
        idle_ms=in_pairs - back_to_back,
        rest_ms=total - in_pairs,
        n_pairs=len(pairs),
        n_back_to_back=len(s["health"]),
        library=library,
    )


def _where(value: float, claim: tuple[float, float]) -> str:
    lo, hi = claim
    if value < lo:
        return "below"
    return "within" if value <= hi else "above"


def claim_verdict(p50: float, p99: float, claim: tuple[float, float] = CLAIM_MS) -> str:
    """One sentence: where a measured p50 and p99 fall against a claimed range (ms)."""
    lo, hi = claim
    return (
        f"This run's paired governance overhead is {p50:.2f} ms at p50 and {p99:.2f} ms at p99: "
        f"the p50 is {_where(p50, claim)} AxonFlow's claimed {lo:g}-{hi:g} ms, "
        f"the p99 {_where(p99, claim)} it."
    )
