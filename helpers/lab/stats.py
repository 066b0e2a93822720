"""Latency statistics the way ``MEASURING.md`` asks: distributions with n, never averages alone.

Introduced in ``03_latency_analysis.ipynb``; the benchmarks use the same functions so the
notebook and the JSON reports agree.

>>> s = summarize([1.0, 2.0, 3.0, 4.0])
>>> s.n, s.p50
(4, 2.5)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "PERCENTILES",
    "LatencySummary",
    "ecdf",
    "paired_differences",
    "summarize",
    "supported",
]

#: The percentiles every table in the suite reports, as (label, q).
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)


def supported(q: float, n: int) -> bool:
    """Whether ``n`` samples can estimate percentile ``q`` (0-100): at least one sample must
    lie above it, so ``n >= 100 / (100 - q)`` (100 for p99, 1,000 for p99.9). Below that the
    "percentile" is only the largest sample, or an interpolation towards it."""
    return q < 100 and n * (100 - q) >= 100 - 1e-9


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles of one sample in its own unit (milliseconds throughout this project)."""

    n: int
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float
    min: float
    mean: float

    def as_dict(self, digits: int | None = None) -> dict[str, float | int]:
        """Every field by name; with ``digits``, each float rounded to that many decimals."""
        fields = asdict(self)
        if digits is None:
            return fields
        return {k: round(v, digits) if isinstance(v, float) else v for k, v in fields.items()}

    def row(self, *, supported_only: bool = False) -> dict[str, float | int]:
        """Column labels as the tables print them (``p99.9`` rather than ``p999``).

        ``supported_only=True`` leaves a percentile the sample is too small for as NaN
        (see :func:`supported`): 60 samples say nothing about a p99.9.
        """
        row = {
            "n": self.n,
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "p99.9": self.p999,
            "max": self.max,
        }
        if supported_only:
            for label, q in PERCENTILES:
                if not supported(q, self.n):
                    row[label] = float("nan")
        return row

    def __repr__(self) -> str:
        return (
            f"<LatencySummary n={self.n} p50={self.p50:.3f} p99={self.p99:.3f} max={self.max:.3f}>"
        )


def summarize(samples: Iterable[float]) -> LatencySummary:
    """Summarise a sample; raises ``ValueError`` on an empty one (no silent NaN tables)."""
    arr = np.asarray(list(samples) if not isinstance(samples, np.ndarray) else samples, float)
    if arr.size == 0:
        raise ValueError("cannot summarise an empty sample: no requests were measured")
    if not np.all(np.isfinite(arr)):
        raise ValueError("sample contains NaN or infinite values; drop failed requests first")
    q = np.percentile(arr, [50, 90, 95, 99, 99.9])
    return LatencySummary(
        n=int(arr.size),
        p50=float(q[0]),
        p90=float(q[1]),
        p95=float(q[2]),
        p99=float(q[3]),
        p999=float(q[4]),
        max=float(arr.max()),
        min=float(arr.min()),
        mean=float(arr.mean()),
    )


def ecdf(samples: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and their cumulative fractions (i/n), for a step plot."""
    x = np.sort(np.asarray(list(samples), float))
    if x.size == 0:
        raise ValueError("cannot build an ECDF of an empty sample")
    y = np.arange(1, x.size + 1) / x.size
    return x, y


def paired_differences(governed: Sequence[float], direct: Sequence[float]) -> np.ndarray:
    """Per-pair overhead: governed[i] - direct[i]. The pairs must line up one to one."""
    g = np.asarray(governed, float)
    d = np.asarray(direct, float)
    if g.shape != d.shape:
        raise ValueError(f"paired samples differ in length: {g.size} governed, {d.size} direct")
    return g - d
