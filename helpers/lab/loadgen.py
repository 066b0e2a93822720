"""The load generator: labelled corpus queries through the full governed pipeline.

Each governed request is the three gateway-mode steps, timed on the client: pre-check
(:class:`helpers.client.GatewayClient`), the LLM call through the real async SDK
(:func:`helpers.lab.llm_call.call_llm`, skipped when the query is blocked), and the audit
(synchronous, or enqueued to :class:`helpers.client.audit_queue.AuditQueue`). :func:`run_load`
drives them in one of three ways (see :class:`helpers.lab.load_results.LoadConfig`): a closed
loop at concurrency C, an open loop at a fixed arrival rate timed from each planned start,
or pairs of direct and governed calls in random order. It runs on its own event loop in a
worker thread, so it works the same from a script and from a notebook cell.

Which user sends each query: :func:`helpers.lab.workload.user_for`.
Introduced in ``03_latency_analysis.ipynb``.

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
from collections.abc import Sequence
from time import perf_counter_ns
from typing import Any

from helpers.client import AuditQueue, TokenUsage
from helpers.corpus import CorpusRow

from .llm_call import LLMCall, call_llm
from .load_results import LOAD_USER, LoadConfig, LoadRun, RequestRecord
from .loop_thread import run_async
from .machine import machine_info
from .paid_calls import check_paid_calls
from .workload import WorkItem, build_workload, user_for

__all__ = ["LOAD_USER", "WorkItem", "build_workload", "run_load", "user_for"]


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
        self.llm = {
            "openai": stack.async_openai_client(),
            "anthropic": stack.async_anthropic_client(),
        }
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
        return await call_llm(
            self.llm[item.provider],
            item.provider,
            item.model,
            item.prompt,
            max_tokens=self.config.max_tokens,
            stream=self.config.stream,
        )

    async def request(
        self,
        seq: int,
        item: WorkItem,
        planned_ns: int | None = None,
        arm: str = "governed",
        pair: int = -1,
    ) -> RequestRecord:
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
                usage, latency, summary = (
                    TokenUsage(0, 0),
                    0.0,
                    "blocked by pre-check; LLM not called",
                )
                if pre.approved:
                    llm = await self._llm(item)
                    llm_ms, ttft, sim = llm.ms, llm.ttft_ms, llm.simulated_ms
                    usage, latency, summary = llm.usage, llm.ms, ""
                t0 = perf_counter_ns()
                if self.audits is not None:
                    self.audits.submit(
                        pre.context_id, item.provider, item.model, usage, latency, summary
                    )
                else:
                    await self.gateway.audit(
                        pre.context_id, item.provider, item.model, usage, latency, summary
                    )
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
            correct = approved == row.expected_approved and set(
                filter(None, policies.split(";"))
            ) == set(row.expected_policies)
        return RequestRecord(
            seq,
            pair,
            arm,
            row.id,
            row.category,
            row.family,
            item.user,
            item.provider,
            item.model,
            len(item.prompt),
            row.expected_approved,
            approved,
            policies,
            correct,
            pre_ms,
            llm_ms,
            ttft,
            audit_ms,
            _ms(end - origin),
            _ms(start - origin),
            sim,
            _ms(start - self.origin),
            in_flight,
            error,
        )


async def _closed(
    pipe: _Pipeline, items: Sequence[WorkItem], concurrency: int
) -> list[RequestRecord]:
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
            if pipe.audits is not None and arm == "governed":
                # Let the background audit finish (untimed) before anything else is timed:
                # otherwise it competes with the next arm and is charged to it, which
                # flatters the governed arm when the direct one follows. Its contention
                # under load shows in the closed- and open-loop runs instead.
                await pipe.audits.flush()
        if pipe.config.think_ms > 0:
            await asyncio.sleep(pipe.config.think_ms / 1000)
    return records


async def _drive(
    stack: Any, config: LoadConfig, items: list[WorkItem], warm: list[WorkItem], bar: Any
) -> tuple[list[RequestRecord], float, Any]:
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
        # Start from a clean heap, and freeze what is already there (as latency-sensitive
        # Python services do), so a notebook's large heap of plots and frames does not turn
        # the generator's own garbage collections into tens-of-milliseconds stalls.
        gc.collect()
        gc.freeze()
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
        gc.unfreeze()
        await pipe.aclose()


def run_load(
    stack: Any,
    config: LoadConfig,
    *,
    label: str | None = None,
    progress: bool | None = None,
    rows: Sequence[CorpusRow] | None = None,
) -> LoadRun:
    """Run ``config`` against ``stack``'s gateway and providers; one record per request.

    ``stack`` is a :class:`helpers.stack.Stack` (anything with ``gateway_client``,
    ``async_openai_client`` and ``async_anthropic_client`` works). ``progress``: a tqdm bar
    (``None`` = only when interactive). Warm-up requests run first and are discarded.
    """
    items = build_workload(config, rows)
    warm = (
        build_workload(config, rows, n=config.warmup, seed=config.seed + 1) if config.warmup else []
    )
    check_paid_calls(stack, [*warm, *items], config)  # before anything is sent
    label = label or config.mode
    total = len(items) * (2 if config.mode == "paired" else 1)
    bar = _progress(total, label, progress)
    machine = machine_info()
    try:
        records, wall_s, stats = run_async(
            lambda: _drive(stack, config, items, warm, bar), loop=config.loop
        )
    finally:
        if bar is not None:
            bar.close()
    return LoadRun(
        label,
        config,
        tuple(records),
        wall_s,
        stack.describe(),
        float(getattr(stack, "time_scale", math.nan)),
        machine,
        stats,
    )
