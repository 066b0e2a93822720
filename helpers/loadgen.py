"""The load generator: labelled corpus queries through the full governed pipeline.

Each governed request is the three gateway-mode steps, timed on the client: pre-check
(:class:`helpers.client.GatewayClient`), the LLM call through the real async SDK
(:func:`helpers.llm_call.call_llm`, skipped when the query is blocked), and the audit
(synchronous, or enqueued to :class:`helpers.audit_queue.AuditQueue`). :func:`run_load`
drives them in one of three ways (see :class:`helpers.load_results.LoadConfig`): a closed
loop at concurrency C, an open loop at a fixed arrival rate timed from each planned start,
or pairs of direct and governed calls in random order. It runs on its own event loop in a
worker thread, so it works the same from a script and from a notebook cell.

Which user sends each query: :func:`user_for`. Introduced in ``03_latency_analysis.ipynb``.

>>> run = run_load(stack, LoadConfig.closed(n=1000, concurrency=16))     # doctest: +SKIP
>>> run.frame().total_ms.median()                                       # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import random
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, TypeVar

from .audit_queue import AuditQueue
from .bench.machine import machine_info
from .client import TokenUsage
from .corpus import CorpusRow, load_corpus
from .llm_call import DEFAULT_MODELS, LLMCall, call_llm
from .load_results import LOAD_USER, LoadConfig, LoadRun, RequestRecord

__all__ = ["CORPUS_USER", "LOAD_USER", "ROLE_FAMILIES", "WorkItem", "build_workload",
           "pad_prompt", "run_async", "run_load", "user_for"]  # fmt: skip

T = TypeVar("T")
#: The corpus's default user (an engineer); rows with any other user are about roles.
CORPUS_USER = "user-123"
#: Families whose verdict depends on who asks (admin access, role/department-scoped rules).
ROLE_FAMILIES = frozenset({"admin", "custom"})
_PAD = ("Please keep the answer practical and short, with one example for a platform team "
        "that runs several services in production and reviews its runbooks every quarter. ")  # fmt: skip


def user_for(row: CorpusRow, load_user: str = LOAD_USER) -> str:
    """The row's own user where the row is about roles, otherwise ``load_user``.

    A row is about roles when its user is not the corpus default or its family's verdict
    depends on the user (admin access, scoped custom rules). Every other row would be
    decided the same for any non-admin user, so it is sent as ``load_user`` (by default
    ``svc-loadtest``, whose rate limit no run reaches): a 1,000-query run as ``user-123``
    (600 requests per minute) would otherwise be measuring the rate limiter.
    """
    if row.user_token != CORPUS_USER or row.family in ROLE_FAMILIES:
        return row.user_token
    return load_user


def pad_prompt(text: str, length: int) -> str:
    """``text`` followed by benign filler up to ``length`` characters (never shorter)."""
    if len(text) >= length:
        return text
    filler = _PAD * (1 + (length - len(text)) // len(_PAD))
    return (text + " " + filler)[:length]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One query to send: the corpus row, who sends it, the exact prompt, where it goes."""

    row: CorpusRow
    user: str
    prompt: str
    provider: str
    model: str


def build_workload(config: LoadConfig, rows: Sequence[CorpusRow] | None = None,
                   n: int | None = None, seed: int | None = None) -> list[WorkItem]:  # fmt: skip
    """``n`` items: the corpus reshuffled on every pass, providers alternating at random."""
    rows = list(load_corpus() if rows is None else rows)
    if config.approved_only:
        rows = [r for r in rows if r.expected_approved]
    if not rows:
        raise ValueError("the workload is empty: no corpus rows match the configuration")
    n = config.n if n is None else n
    rng = random.Random(config.seed if seed is None else seed)
    items: list[WorkItem] = []
    order: list[CorpusRow] = []
    while len(items) < n:
        if not order:
            order = rows[:]
            rng.shuffle(order)
        row = order.pop()
        provider = rng.choice(config.providers)
        prompt = row.query
        if config.pad_to:
            prompt = pad_prompt(prompt, rng.choice(config.pad_to))
        items.append(WorkItem(row, user_for(row, config.load_user), prompt, provider,
                              DEFAULT_MODELS[provider]))  # fmt: skip
    return items


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:  # not on every platform; the standard loop still works
            return None
        return uvloop.new_event_loop
    return None


def run_async(factory: Callable[[], Awaitable[T]], *, loop: str = "uvloop") -> T:
    """Run ``factory()`` to completion on a fresh event loop in a worker thread.

    A notebook cell already runs inside an event loop, so this keeps the measuring loop
    separate (and ``uvloop`` where available). Interrupting the caller cancels the work.
    """
    box: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> T:
        task = asyncio.current_task()
        running = asyncio.get_running_loop()
        box["cancel"] = lambda: running.call_soon_threadsafe(task.cancel)  # type: ignore[union-attr]
        started.set()
        return await factory()

    def target() -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
                box["value"] = runner.run(main())
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=target, name="loadgen-loop", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        started.wait()
        if "cancel" in box:
            box["cancel"]()
        thread.join()
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]


def _progress(total: int, label: str, enabled: bool | None) -> Any:
    """A tqdm.auto bar, or None. ``enabled=None``: on in a terminal or a Jupyter session,
    off in headless executions (nbval, nbclient, CI) so committed outputs stay clean."""
    if enabled is None:
        enabled = sys.stderr.isatty() or "JPY_SESSION_NAME" in os.environ
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="req", mininterval=0.25, leave=False)


def _ms(ns: int) -> float:
    return ns / 1e6


class _Pipeline:
    """One run's clients and the two kinds of request (governed, direct)."""

    def __init__(self, stack: Any, config: LoadConfig, bar: Any) -> None:
        self.config = config
        self.gateway = stack.gateway_client(transport=config.transport)
        self.llm = {"openai": stack.async_openai_client(), "anthropic": stack.async_anthropic_client()}
        self.audits = AuditQueue(self.gateway) if config.audit == "background" else None
        self.bar = bar
        self.origin = perf_counter_ns()
        self.in_flight = 0

    async def aclose(self) -> None:
        if self.audits is not None:
            await self.audits.aclose()
        await self.gateway.aclose()
        for client in self.llm.values():
            await client.close()

    async def _llm(self, item: WorkItem) -> LLMCall:
        return await call_llm(self.llm[item.provider], item.provider, item.model, item.prompt,
                              max_tokens=self.config.max_tokens, stream=self.config.stream)  # fmt: skip

    async def request(self, seq: int, item: WorkItem, planned_ns: int | None = None,
                      arm: str = "governed", pair: int = -1) -> RequestRecord:  # fmt: skip
        start = perf_counter_ns()
        origin = start if planned_ns is None else planned_ns
        self.in_flight += 1
        in_flight = self.in_flight
        nan = math.nan
        pre_ms = llm_ms = ttft = audit_ms = sim = nan
        approved: bool | None = None
        policies, error = "", ""
        try:
            if arm != "governed":
                llm = await self._llm(item)
                llm_ms, ttft, sim = llm.ms, llm.ttft_ms, llm.simulated_ms
            else:
                t0 = perf_counter_ns()
                pre = await self.gateway.pre_check(item.prompt, user_token=item.user)
                pre_ms = _ms(perf_counter_ns() - t0)
                approved, policies = pre.approved, ";".join(pre.policies)
                usage, latency, summary = TokenUsage(0, 0), 0.0, "blocked by pre-check; LLM not called"
                if pre.approved:
                    llm = await self._llm(item)
                    llm_ms, ttft, sim = llm.ms, llm.ttft_ms, llm.simulated_ms
                    usage, latency, summary = llm.usage, llm.ms, ""
                t0 = perf_counter_ns()
                if self.audits is not None:
                    self.audits.submit(pre.context_id, item.provider, item.model, usage, latency, summary)
                else:
                    await self.gateway.audit(pre.context_id, item.provider, item.model, usage,
                                             latency, summary)  # fmt: skip
                audit_ms = _ms(perf_counter_ns() - t0)
        except Exception as exc:  # recorded per request; a run never stops on one failure
            error = f"{type(exc).__name__}: {exc}"[:300]
        end = perf_counter_ns()
        self.in_flight -= 1
        if self.bar is not None:
            self.bar.update(1)
        row = item.row
        correct = None
        if approved is not None:
            correct = (approved == row.expected_approved
                       and set(filter(None, policies.split(";"))) == set(row.expected_policies))  # fmt: skip
        return RequestRecord(
            seq, pair, arm, row.id, row.category, row.family, item.user, item.provider,
            item.model, len(item.prompt), row.expected_approved, approved, policies, correct,
            pre_ms, llm_ms, ttft, audit_ms, _ms(end - origin), _ms(start - origin), sim,
            _ms(start - self.origin), in_flight, error,
        )  # fmt: skip


async def _closed(pipe: _Pipeline, items: Sequence[WorkItem], concurrency: int) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    work = iter(enumerate(items))

    async def worker() -> None:
        for seq, item in work:  # one shared iterator: each item goes to exactly one worker
            records.append(await pipe.request(seq, item))

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))
    return sorted(records, key=lambda r: r.seq)


async def _open(pipe: _Pipeline, items: Sequence[WorkItem], rate: float) -> list[RequestRecord]:
    interval_ns = 1e9 / rate
    first = perf_counter_ns() + 2_000_000
    tasks = []
    for seq, item in enumerate(items):
        planned = first + round(seq * interval_ns)
        wait = (planned - perf_counter_ns()) / 1e9
        if wait > 0:
            await asyncio.sleep(wait)
        # A late wake-up is not hidden: the request is still timed from `planned`.
        tasks.append(asyncio.create_task(pipe.request(seq, item, planned)))
    return list(await asyncio.gather(*tasks))


async def _paired(pipe: _Pipeline, items: Sequence[WorkItem], seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    second = "direct_b" if pipe.config.aa else "governed"
    records: list[RequestRecord] = []
    for pair, item in enumerate(items):
        arms = ["direct", second]
        rng.shuffle(arms)
        for arm in arms:
            records.append(await pipe.request(len(records), item, None, arm, pair))
        if pipe.config.think_ms > 0:
            await asyncio.sleep(pipe.config.think_ms / 1000)
    return records


async def _drive(stack: Any, config: LoadConfig, items: list[WorkItem], warm: list[WorkItem],
                 bar: Any) -> tuple[list[RequestRecord], float, Any]:  # fmt: skip
    pipe = _Pipeline(stack, config, None)
    try:
        # Warm-up, discarded: connection set-up, first-call imports and caches on both sides.
        await _closed(pipe, warm, min(config.concurrency, 8))
        for item in warm[:4]:
            await pipe.request(0, item, None, "direct")
        if pipe.audits is not None:  # a fresh queue, so its counts cover measured requests only
            await pipe.audits.aclose()
            pipe.audits = AuditQueue(pipe.gateway)
        pipe.bar, pipe.origin = bar, perf_counter_ns()
        gc.collect()  # start every run from the same heap state, not the last run's garbage
        t0 = perf_counter_ns()
        if config.mode == "closed":
            records = await _closed(pipe, items, config.concurrency)
        elif config.mode == "open":
            records = await _open(pipe, items, config.rate)
        else:
            records = await _paired(pipe, items, config.seed)
        wall_s = (perf_counter_ns() - t0) / 1e9
        stats = await pipe.audits.aclose() if pipe.audits is not None else None
        return records, wall_s, stats
    finally:
        await pipe.aclose()


def run_load(stack: Any, config: LoadConfig, *, label: str | None = None,
             progress: bool | None = None, rows: Sequence[CorpusRow] | None = None) -> LoadRun:  # fmt: skip
    """Run ``config`` against ``stack``'s gateway and providers; one record per request.

    ``stack`` is a :class:`helpers.stack.Stack` (anything with ``gateway_client``,
    ``async_openai_client`` and ``async_anthropic_client`` works). ``progress``: a tqdm bar
    (``None`` = only when interactive). Warm-up requests run first and are discarded.
    """
    items = build_workload(config, rows)
    warm = build_workload(config, rows, n=config.warmup, seed=config.seed + 1) if config.warmup else []
    label = label or config.mode
    total = len(items) * (2 if config.mode == "paired" else 1)
    bar = _progress(total, label, progress)
    machine = machine_info()
    try:
        records, wall_s, stats = run_async(lambda: _drive(stack, config, items, warm, bar),
                                           loop=config.loop)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    return LoadRun(label, config, tuple(records), wall_s, stack.describe(),
                   float(getattr(stack, "time_scale", math.nan)), machine, stats)  # fmt: skip
