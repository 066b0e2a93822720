"""What a load run produced: its configuration, one record per request, and a results file.

:class:`LoadConfig` says how a run was driven, :class:`RequestRecord` is one request (the
three steps timed on the client), and :class:`LoadRun` bundles them with the machine, the
backends and the background-audit counts. :meth:`LoadRun.frame` gives a pandas DataFrame;
:func:`save_results` and :func:`load_results` write and read a JSON results file, so an
analysis can be re-run on numbers measured elsewhere (``data/results/`` holds one from an
offline run). Introduced in ``03_latency_analysis.ipynb``.

>>> runs = load_results(DATA_DIR / "results" / "pipeline-offline.json")   # doctest: +SKIP
>>> runs["main"].frame()[["pre_check_ms", "llm_ms", "audit_ms"]].median()  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.client import AuditQueueStats

__all__ = [
    "FORMAT",
    "LOAD_USER",
    "LoadConfig",
    "LoadRun",
    "RequestRecord",
    "load_results",
    "save_results",
]

FORMAT = "gateway-mode-latency-results/1"
#: A directory user whose role has a rate limit far above any run's request count.
LOAD_USER = "svc-loadtest"
_MODES = ("closed", "open", "paired")


@dataclass(frozen=True)
class LoadConfig:
    """How a run is driven. Use :meth:`closed`, :meth:`open` or :meth:`paired`.

    * ``closed``: ``concurrency`` workers, each sending its next request when the last one
      finished (service time; hides stalls).
    * ``open``: requests start on a fixed schedule, ``rate`` per second, each timed from its
      *planned* start (coordinated omission corrected; the start lag is recorded).
    * ``paired``: ``n`` pairs, each the same prompt sent directly to the provider and
      through governance, in random order; a background audit is flushed (untimed) before
      the next arm, and ``think_ms`` of idle time follows each pair.

    ``load_user`` is the ``user_token`` sent for corpus rows that are not about roles (see
    :func:`helpers.lab.loadgen.user_for`). ``aa`` replaces the governed arm by a second direct
    call: an A/A test measuring the paired method's own noise.
    """

    mode: str = "closed"
    n: int = 1000
    concurrency: int = 16
    rate: float = 100.0
    transport: str = "httpx"
    audit: str = "sync"
    stream: bool = True
    max_tokens: int = 256
    providers: tuple[str, ...] = ("openai", "anthropic")
    load_user: str = LOAD_USER
    warmup: int = 20
    seed: int = 7
    approved_only: bool = False
    pad_to: tuple[int, ...] = ()
    think_ms: float = 0.0
    aa: bool = False
    loop: str = "uvloop"

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in _MODES:
            problems.append(f"mode must be one of {_MODES}, got {self.mode!r}")
        if self.n < 1 or self.concurrency < 1 or self.warmup < 0 or self.max_tokens < 1:
            problems.append("n, concurrency and max_tokens must be >= 1 and warmup >= 0")
        if not self.rate > 0:
            problems.append(f"rate must be > 0 requests/s, got {self.rate}")
        if self.transport not in ("httpx", "aiohttp"):
            problems.append(f"transport must be 'httpx' or 'aiohttp', got {self.transport!r}")
        if self.audit not in ("sync", "background"):
            problems.append(f"audit must be 'sync' or 'background', got {self.audit!r}")
        if not self.providers or set(self.providers) - {"openai", "anthropic"}:
            problems.append(f"providers must name openai and/or anthropic: {self.providers}")
        if self.loop not in ("uvloop", "asyncio"):
            problems.append(f"loop must be 'uvloop' or 'asyncio', got {self.loop!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def closed(cls, n: int = 1000, concurrency: int = 16, **kw: Any) -> LoadConfig:
        return cls(mode="closed", n=n, concurrency=concurrency, **kw)

    @classmethod
    def open(cls, n: int = 1000, rate: float = 100.0, **kw: Any) -> LoadConfig:
        return cls(mode="open", n=n, rate=rate, **kw)

    @classmethod
    def paired(
        cls, n: int = 500, transport: str = "httpx", audit: str = "sync", **kw: Any
    ) -> LoadConfig:
        """Pairs of approved prompts (a blocked one never reaches the provider), each asking
        for a short non-streamed reply: the call's own jitter is then smallest."""
        defaults: dict[str, Any] = {"stream": False, "max_tokens": 16, "approved_only": True}
        return cls(mode="paired", n=n, transport=transport, audit=audit, **{**defaults, **kw})

    def describe(self) -> str:
        """Short label for titles: ``closed loop C=16, httpx, sync audit``."""
        how = {
            "closed": f"closed loop C={self.concurrency}",
            "open": f"open loop R={self.rate:g}/s",
            "paired": "A/A pairs (direct vs direct)" if self.aa else "paired",
        }[self.mode]
        return f"{how}, {self.transport}, {self.audit} audit"

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request, timed on the client in milliseconds; NaN where a step did not run.

    ``arm`` is ``governed`` (pre-check, LLM call, audit) or ``direct`` (LLM call only).
    ``total_ms`` runs from the planned start in an open loop (so it includes
    ``start_lag_ms``) and from the actual start otherwise. With a background audit,
    ``audit_ms`` is the time to enqueue it. ``simulated_ms`` is the delay the provider
    stand-in slept on purpose (NaN for a real provider).
    """

    seq: int
    pair: int
    arm: str
    query_id: str
    category: str
    family: str
    user: str
    provider: str
    model: str
    prompt_chars: int
    expected_approved: bool
    approved: bool | None
    policies: str
    correct: bool | None
    pre_check_ms: float
    llm_ms: float
    ttft_ms: float
    audit_ms: float
    total_ms: float
    start_lag_ms: float
    simulated_ms: float
    start_ms: float
    in_flight: int
    error: str = ""


_COLUMNS = tuple(f.name for f in fields(RequestRecord))


@dataclass(frozen=True)
class LoadRun:
    """A finished run. ``wall_s`` covers the measured requests only (warm-up excluded)."""

    label: str
    config: LoadConfig
    records: tuple[RequestRecord, ...]
    wall_s: float
    backends: str = ""
    time_scale: float = math.nan
    machine: Mapping[str, Any] = field(default_factory=dict)
    audit_queue: AuditQueueStats | None = None

    @property
    def errors(self) -> int:
        return sum(1 for r in self.records if r.error)

    @property
    def throughput(self) -> float:
        """Completed requests per second of wall time."""
        return len(self.records) / self.wall_s if self.wall_s > 0 else math.nan

    def frame(self) -> pd.DataFrame:
        """One row per request, columns as :class:`RequestRecord`, plus ``governance_ms``."""
        df = pd.DataFrame.from_records([_row(r) for r in self.records], columns=_COLUMNS)
        for col in ("approved", "correct"):
            df[col] = df[col].astype("boolean")
        df["governance_ms"] = df["pre_check_ms"] + df["audit_ms"]
        return df

    def __repr__(self) -> str:
        lost = f" audits_lost={self.audit_queue.lost}" if self.audit_queue else ""
        return (
            f"<LoadRun {self.label!r} {self.config.describe()} n={len(self.records)} "
            f"errors={self.errors}{lost} wall={self.wall_s:.1f} s>"
        )


def _row(r: RequestRecord) -> tuple[Any, ...]:
    return tuple(getattr(r, c) for c in _COLUMNS)


def _clean(value: Any) -> Any:
    """JSON has no NaN: store it as null; round floats to 0.1 microsecond."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def _run_to_json(run: LoadRun) -> dict[str, Any]:
    q = run.audit_queue
    return {
        "config": run.config.as_dict(),
        "wall_s": run.wall_s,
        "backends": run.backends,
        "time_scale": _clean(run.time_scale),
        "machine": dict(run.machine),
        "audit_queue": None
        if q is None
        else {**q.as_dict(), "send_ms": [_clean(v) for v in q.send_ms]},
        "columns": list(_COLUMNS),
        "rows": [[_clean(v) for v in _row(r)] for r in run.records],
    }


def _float(v: Any) -> Any:
    return math.nan if v is None else v


def _run_from_json(label: str, data: Mapping[str, Any]) -> LoadRun:
    cols = data["columns"]
    floats = {f.name for f in fields(RequestRecord) if f.type == "float"}
    records = []
    for row in data["rows"]:
        rec = dict(zip(cols, row, strict=True))
        records.append(
            RequestRecord(**{c: _float(rec[c]) if c in floats else rec[c] for c in _COLUMNS})
        )
    q = data.get("audit_queue")
    stats = None
    if q is not None:  # its as_dict() keys, plus the send times (``lost`` is derived)
        kept = {f.name: q[f.name] for f in fields(AuditQueueStats) if f.name in q}
        stats = AuditQueueStats(**{**kept, "send_ms": tuple(q.get("send_ms", ()))})
    return LoadRun(
        label,
        LoadConfig.from_dict(data["config"]),
        tuple(records),
        data["wall_s"],
        data.get("backends", ""),
        _float(data.get("time_scale")),
        data.get("machine", {}),
        stats,
    )


def save_results(
    path: str | Path, runs: Mapping[str, LoadRun], extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``runs`` (label -> run) and any ``extra`` JSON-ready facts to one file
    (gzip-compressed when the name ends in ``.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "runs": {label: _run_to_json(run) for label, run in runs.items()},
        "extra": dict(extra or {}),
    }
    text = json.dumps(doc, separators=(",", ":")) + "\n"
    if path.suffix == ".gz":  # mtime=0: the same runs give the same bytes
        path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _read(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def load_results(path: str | Path) -> dict[str, LoadRun]:
    """Read a file written by :func:`save_results`; runs keep their labels and order."""
    path = Path(path)
    try:
        doc = _read(path)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read a results file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a results file (expected format {FORMAT!r})")
    return {label: _run_from_json(label, run) for label, run in doc["runs"].items()}
