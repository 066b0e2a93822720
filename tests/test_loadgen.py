"""The load generator and what it builds on: workload, LLM call timing, background audits,
results files, the run modes, the floor, and the analysis tables.

Scheduling is tested against a fake stack (no network) so the assertions are about
structure and relations (every item sent once, pairs complete, later open-loop arrivals
queue longer), never about how fast this machine is. The analysis tables are tested against
samples with known answers. One test drives the real SDKs against the real stand-in.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers.client import AuditQueue, TokenUsage
from helpers.corpus import CorpusRow, load_corpus
from helpers.errors import BadRequest, GatewayUnavailable
from helpers.gateway.engine import DecisionEngine
from helpers.lab import loadgen
from helpers.lab.latency_floor import FloorResult, RawHTTPClient, decision_times
from helpers.lab.llm_call import LLMCall, call_llm, simulated_ms
from helpers.lab.load_results import (
    LoadConfig,
    LoadRun,
    RequestRecord,
    load_results,
    save_results,
)
from helpers.lab.loop_thread import run_async
from helpers.lab.pipeline_stats import (
    open_loop_table,
    paired_overhead,
    step_table,
    sweep_table,
    verdicts,
)
from helpers.lab.workload import LOAD_USER, build_workload, pad_prompt, user_for
from helpers.server import start_standins
from helpers.settings import DEFAULT_MODELS, Settings

HERMETIC = Settings.load(env={}, dotenv_path=None)


def row(
    id: str = "b-1",
    family: str = "benign",
    user: str = "user-123",
    query: str = "hi",
    approved: bool = True,
    policies: tuple[str, ...] = (),
) -> CorpusRow:
    return CorpusRow(id, family, user, query, approved, policies, family)


# ------------------------------------------------------------------------------ workload


@pytest.mark.parametrize(
    ("family", "user", "expected"),
    [
        ("benign", "user-123", LOAD_USER),  # plain row: the load user
        ("pii", "user-123", LOAD_USER),
        ("sqli", "user-123", LOAD_USER),
        ("admin", "user-123", "user-123"),  # admin access depends on the role
        ("custom", "user-123", "user-123"),  # rules may be scoped to roles or departments
        ("benign", "user-345", "user-345"),  # any non-default user makes the row about roles
        ("admin", "contractor-901", "contractor-901"),
    ],
)
def test_user_for(family: str, user: str, expected: str) -> None:
    assert user_for(row(family=family, user=user)) == expected


def test_user_for_takes_a_configurable_load_user() -> None:
    assert user_for(row(), "svc-other") == "svc-other"


def test_load_user_keeps_every_corpus_verdict() -> None:
    """Substituting the load user must not change any labelled decision."""
    engine = DecisionEngine.from_settings(HERMETIC, rate_limits=False)
    changed = []
    for r in load_corpus():
        a = engine.decide(r.query, r.user_token)
        b = engine.decide(r.query, user_for(r))
        if (a.approved, a.policies) != (b.approved, b.policies):
            changed.append(r.id)
    assert changed == []


@pytest.mark.parametrize("length", [10, 64, 500, 4096])
def test_pad_prompt_length_and_prefix(length: int) -> None:
    out = pad_prompt("What is RAG?", length)
    assert out.startswith("What is RAG?")
    assert len(out) == max(length, len("What is RAG?"))


def test_padding_is_benign() -> None:
    engine = DecisionEngine.from_settings(HERMETIC, rate_limits=False)
    for r in [r for r in load_corpus() if r.expected_approved][:60]:
        d = engine.decide(pad_prompt(r.query, 4096), user_for(r))
        assert (d.approved, set(d.policies)) == (True, set(r.expected_policies)), r.id


def test_build_workload_cycles_the_corpus_evenly() -> None:
    rows = [row(id=f"r{i}") for i in range(7)]
    items = build_workload(LoadConfig.closed(n=30, seed=3), rows)
    counts = pd.Series([i.row.id for i in items]).value_counts()
    assert len(items) == 30 and set(counts.index) == {r.id for r in rows}
    assert counts.max() - counts.min() <= 1


def test_build_workload_is_seeded_and_filters() -> None:
    rows = [row(id="a"), row(id="b", approved=False), row(id="c")]
    cfg = LoadConfig.paired(n=10, seed=5, providers=("anthropic",))
    first, again = build_workload(cfg, rows), build_workload(cfg, rows)
    assert [i.row.id for i in first] == [i.row.id for i in again]
    assert {i.row.id for i in first} == {"a", "c"}
    assert {(i.provider, i.model) for i in first} == {("anthropic", "claude-haiku-4-5")}
    with pytest.raises(ValueError, match="empty"):
        build_workload(cfg, [row(approved=False)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "sideways"},
        {"n": 0},
        {"rate": 0},
        {"transport": "curl"},
        {"audit": "later"},
        {"providers": ("mistral",)},
        {"loop": "trio"},
        {"concurrency": 0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LoadConfig(**kwargs)


def test_config_round_trip_and_labels() -> None:
    cfg = LoadConfig.paired(n=40, transport="aiohttp", audit="background", pad_to=(64, 512))
    assert (cfg.stream, cfg.approved_only, cfg.max_tokens) == (False, True, 16)
    assert LoadConfig.from_dict(cfg.as_dict()) == cfg
    assert cfg.describe() == "paired, aiohttp, background audit"
    assert LoadConfig.open(rate=50).describe() == "open loop R=50/s, httpx, sync audit"


# ------------------------------------------------------------------------------ LLM call


def test_simulated_ms_from_headers() -> None:
    h = {"x-standin-simulated-total-ms": "812.5", "x-standin-time-scale": "0.02"}
    assert simulated_ms(h) == pytest.approx(16.25)
    assert math.isnan(simulated_ms({}))
    assert math.isnan(simulated_ms({**h, "x-standin-time-scale": "fast"}))


@pytest.fixture(scope="module")
def standin_url() -> Iterator[str]:
    with start_standins(time_scale=0) as st:
        yield st.url


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [True, False])
def test_call_llm_through_the_real_sdks(standin_url: str, provider: str, stream: bool) -> None:
    import anthropic
    import openai

    async def go() -> LLMCall:
        if provider == "openai":
            client: Any = openai.AsyncOpenAI(api_key="x", base_url=standin_url + "/v1")
        else:
            client = anthropic.AsyncAnthropic(api_key="x", base_url=standin_url)
        try:
            return await call_llm(
                client,
                provider,
                DEFAULT_MODELS[provider],
                "How do we monitor LLM calls?",
                max_tokens=20,
                stream=stream,
            )
        finally:
            await client.close()

    call = run_async(go)
    assert call.usage.completion_tokens == 20 and call.usage.prompt_tokens > 0
    assert call.text_chars > 0 and call.ms > 0
    assert call.simulated_ms == 0.0  # time scale 0: the stand-in slept nothing
    assert math.isnan(call.ttft_ms) != stream
    assert "simulated=" in repr(call)


def test_call_llm_rejects_unknown_provider() -> None:
    with pytest.raises(ValueError, match="provider"):
        run_async(lambda: call_llm(object(), "mistral", "m", "hi"))


# ------------------------------------------------------------------------------ run_async


def test_run_async_returns_raises_and_works_inside_a_running_loop() -> None:
    assert run_async(lambda: asyncio.sleep(0, result=7)) == 7

    async def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        run_async(boom)

    async def notebook_cell() -> int:  # a kernel's cell already runs inside a loop
        return run_async(lambda: asyncio.sleep(0, result=3))

    assert asyncio.run(notebook_cell()) == 3


# ------------------------------------------------------------------------------ audit queue


class FakeGateway:
    """Async stand-in for GatewayClient: scripted pre-check verdicts and audit outcomes."""

    def __init__(
        self, audit_failures: list[Exception] | None = None, block: asyncio.Event | None = None
    ) -> None:
        self.audit_failures = list(audit_failures or [])
        self.block = block
        self.audits: list[str] = []
        self.pre_checks = 0
        self.closed = False

    async def pre_check(self, query: str, user_token: str = "") -> Any:
        self.pre_checks += 1
        if query == "explode":
            raise GatewayUnavailable("no gateway answered (scripted)")
        blocked = query.startswith("block")
        policies = ("sys_pii_ssn",) if blocked else ()
        return type(
            "Pre",
            (),
            {"approved": not blocked, "policies": policies, "context_id": f"ctx-{self.pre_checks}"},
        )()

    async def audit(self, context_id: str, *args: Any, **kwargs: Any) -> None:
        if self.block is not None:
            await self.block.wait()
        if self.audit_failures:
            raise self.audit_failures.pop(0)
        self.audits.append(context_id)

    async def aclose(self) -> None:
        self.closed = True


def _queue_run(gw: FakeGateway, jobs: int, **kw: Any) -> tuple[Any, list[bool]]:
    async def go() -> tuple[Any, list[bool]]:
        q = AuditQueue(gw, backoff_s=0, **kw)  # type: ignore[arg-type]
        accepted = [
            q.submit(f"c{i}", "openai", "gpt-4o-mini", TokenUsage(1, 2)) for i in range(jobs)
        ]
        return await q.aclose(), accepted

    return run_async(go)


def test_audit_queue_sends_everything_and_flushes_on_close() -> None:
    gw = FakeGateway()
    stats, accepted = _queue_run(gw, 25)
    assert all(accepted) and sorted(gw.audits) == sorted(f"c{i}" for i in range(25))
    assert (stats.submitted, stats.sent, stats.failed, stats.dropped, stats.lost) == (
        25,
        25,
        0,
        0,
        0,
    )
    assert len(stats.send_ms) == 25


def test_audit_queue_retries_transient_failures() -> None:
    gw = FakeGateway([GatewayUnavailable("down"), GatewayUnavailable("down")])
    stats, _ = _queue_run(gw, 1, workers=1)
    assert (stats.sent, stats.retried, stats.failed) == (1, 2, 0)


def test_audit_queue_counts_permanent_and_exhausted_failures() -> None:
    bad = BadRequest(400, "Invalid or expired context", "u")
    gw = FakeGateway([bad] + [GatewayUnavailable("down")] * 3)
    stats, _ = _queue_run(gw, 2, workers=1, retries=2)
    assert (stats.sent, stats.failed, stats.retried) == (0, 2, 2)
    assert "GatewayUnavailable" in stats.last_error


def test_audit_queue_full_is_a_counted_drop_not_a_silent_one() -> None:
    async def go() -> tuple[Any, list[bool]]:
        gate = asyncio.Event()
        q = AuditQueue(FakeGateway(block=gate), maxsize=2, workers=1)  # type: ignore[arg-type]
        accepted = []
        for i in range(6):
            accepted.append(q.submit(f"c{i}", "openai", "m"))
            await asyncio.sleep(0)  # let the worker take the first job
        gate.set()
        return await q.aclose(), accepted

    stats, accepted = run_async(go)
    assert accepted.count(False) == stats.dropped > 0
    assert stats.sent + stats.dropped == 6 and stats.lost == stats.dropped
    assert "queue full" in stats.last_error and stats.max_depth == 2


def test_audit_queue_counts_unflushed_audits_as_failed() -> None:
    async def go() -> Any:
        q = AuditQueue(FakeGateway(block=asyncio.Event()), workers=1)  # type: ignore[arg-type]
        for i in range(3):
            q.submit(f"c{i}", "openai", "m")
        stats = await q.aclose(timeout=0.05)
        with pytest.raises(RuntimeError, match="closed"):
            q.submit("late", "openai", "m")
        return stats

    stats = run_async(go)
    assert (stats.sent, stats.failed) == (0, 3) and "unsent" in stats.last_error


# ------------------------------------------------------------------------------ run modes


class FakeStack:
    """Enough of helpers.stack.Stack for run_load; the LLM call is patched below."""

    time_scale = 0.5

    def __init__(self) -> None:
        self.gateways: list[FakeGateway] = []

    def gateway_client(self, transport: str = "httpx") -> FakeGateway:
        self.gateways.append(FakeGateway())
        return self.gateways[-1]

    def async_openai_client(self) -> Any:
        return _Closable()

    def async_anthropic_client(self) -> Any:
        return _Closable()

    def describe(self) -> str:
        return "fake stack"


class _Closable:
    async def close(self) -> None:
        return None


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """call_llm replaced: 1 ms of real sleep, a fixed 'simulated' part, one call at a time."""
    state: dict[str, Any] = {"calls": 0, "lock": None}

    async def fake(client: Any, provider: str, model: str, prompt: str, **kw: Any) -> LLMCall:
        state["calls"] += 1
        if state["lock"] is None:
            state["lock"] = asyncio.Lock()
        async with state["lock"]:
            await asyncio.sleep(state.get("sleep", 0.001))
        return LLMCall(provider, model, 1.0, 0.5, 0.25, TokenUsage(3, 4), 10)

    monkeypatch.setattr(loadgen, "call_llm", fake)
    return state


def corpus_rows() -> list[CorpusRow]:
    return [
        row(id="ok-1", query="fine 1"),
        row(id="ok-2", query="fine 2"),
        row(id="bl-1", query="block me", approved=False, policies=("sys_pii_ssn",)),
    ]


def test_closed_loop_sends_each_item_once_and_scores_verdicts(fake_llm: dict[str, Any]) -> None:
    stack = FakeStack()
    run = loadgen.run_load(
        stack, LoadConfig.closed(n=30, concurrency=4, warmup=3), rows=corpus_rows(), progress=False
    )
    df = run.frame()
    assert list(df["seq"]) == list(range(30)) and run.errors == 0
    assert df["correct"].all() and (df["start_lag_ms"] == 0).all()
    blocked = df[df["approved"] == False]  # noqa: E712
    assert blocked["llm_ms"].isna().all() and blocked["audit_ms"].notna().all()
    assert (df.loc[df["approved"] == True, "llm_ms"] == 1.0).all()  # noqa: E712
    assert verdicts(run) == {
        "decisions": 30,
        "correct": 30,
        "wrong": 0,
        "rate_limited": 0,
        "errors": 0,
    }
    measured = stack.gateways[-1]
    assert measured.pre_checks == 30 + 3 and measured.closed  # warm-up on the same client
    assert len(measured.audits) == 33
    assert "fake stack" in run.backends and run.time_scale == 0.5 and "cores" in run.machine


def test_a_failing_request_is_recorded_and_the_run_goes_on(fake_llm: dict[str, Any]) -> None:
    rows = [*corpus_rows(), row(id="x-1", query="explode")]
    run = loadgen.run_load(
        FakeStack(), LoadConfig.closed(n=12, concurrency=2, warmup=0), rows=rows, progress=False
    )
    df = run.frame()
    assert run.errors == 3 and len(df) == 12
    assert df.loc[df["query_id"] == "x-1", "error"].str.contains("GatewayUnavailable").all()


def test_background_audit_is_counted(fake_llm: dict[str, Any]) -> None:
    run = loadgen.run_load(
        FakeStack(),
        LoadConfig.closed(n=20, audit="background", warmup=2),
        rows=corpus_rows(),
        progress=False,
    )
    q = run.audit_queue
    assert q is not None and (q.submitted, q.sent, q.lost) == (20, 20, 0)
    assert "audits_lost=0" in repr(run)


def test_open_loop_times_from_the_planned_start(fake_llm: dict[str, Any]) -> None:
    """Arrivals every 1 ms into a provider that serves one call at a time for 10 ms: the
    queue grows, so later requests wait longer; a closed loop would never show that."""
    fake_llm["sleep"] = 0.010
    rows = [row(id="ok", query="fine")]
    run = loadgen.run_load(
        FakeStack(), LoadConfig.open(n=15, rate=1000, warmup=0), rows=rows, progress=False
    )
    df = run.frame()
    assert len(df) == 15 and (df["total_ms"] >= df["start_lag_ms"]).all()
    assert df["total_ms"].iloc[-1] > 5 * df["total_ms"].iloc[0]
    assert df["in_flight"].max() > 1
    table = open_loop_table([run])
    assert table.loc[0, "offered_rps"] == 1000 and table.loc[0, "latency_p99_ms"] > 0


def test_paired_mode_sends_both_arms_in_random_order(fake_llm: dict[str, Any]) -> None:
    run = loadgen.run_load(
        FakeStack(), LoadConfig.paired(n=40, warmup=0, seed=11), rows=corpus_rows(), progress=False
    )
    df = run.frame()
    assert len(df) == 80 and set(df.groupby("pair")["arm"].apply(frozenset)) == {
        frozenset({"direct", "governed"})
    }
    assert df["query_id"].isin(["ok-1", "ok-2"]).all()  # approved rows only
    pairs = paired_overhead(run)
    assert len(pairs) == 40 and set(pairs["first_arm"]) == {"direct", "governed"}
    direct = df[df["arm"] == "direct"]
    assert direct["pre_check_ms"].isna().all() and direct["approved"].isna().all()


def test_aa_mode_has_no_governed_arm(fake_llm: dict[str, Any]) -> None:
    run = loadgen.run_load(
        FakeStack(), LoadConfig.paired(n=5, warmup=0, aa=True), rows=corpus_rows(), progress=False
    )
    assert set(run.frame()["arm"]) == {"direct", "direct_b"}
    assert len(paired_overhead(run, arms=("direct_b", "direct"))) == 5


# ------------------------------------------------------------------------------ results file


def record(seq: int, **kw: Any) -> RequestRecord:
    base: dict[str, Any] = dict(
        seq=seq,
        pair=-1,
        arm="governed",
        query_id=f"q{seq}",
        category="benign",
        family="benign",
        user=LOAD_USER,
        provider="openai",
        model="gpt-4o-mini",
        prompt_chars=20,
        expected_approved=True,
        approved=True,
        policies="",
        correct=True,
        pre_check_ms=1.0,
        llm_ms=10.0,
        ttft_ms=math.nan,
        audit_ms=1.0,
        total_ms=12.0,
        start_lag_ms=0.0,
        simulated_ms=8.0,
        start_ms=float(seq),
        in_flight=1,
    )
    return RequestRecord(**{**base, **kw})


@pytest.mark.parametrize("name", ["runs.json", "runs.json.gz"])
def test_results_file_round_trip(tmp_path: Any, name: str) -> None:
    from helpers.client import AuditQueueStats

    recs = (record(0), record(1, approved=False, correct=False, llm_ms=math.nan, error="boom"))
    run = LoadRun(
        "main",
        LoadConfig.closed(n=2, pad_to=(64,)),
        recs,
        1.5,
        "offline",
        0.02,
        {"cores": 2},
        AuditQueueStats(2, 2, 0, 0, 0, 1, (0.5, 0.6)),
    )
    path = save_results(tmp_path / "r" / name, {"main": run}, extra={"note": 1})
    back = load_results(path)["main"]
    assert back.config == run.config and back.wall_s == 1.5 and back.machine == {"cores": 2}
    assert back.audit_queue == run.audit_queue
    pd.testing.assert_frame_equal(back.frame(), run.frame())
    raw = path.read_bytes()
    stored = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    assert stored["extra"] == {"note": 1}


def test_results_file_rejects_other_json(tmp_path: Any) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a results file"):
        load_results(path)
    with pytest.raises(ValueError, match="cannot read"):
        load_results(tmp_path / "missing.json")


# ------------------------------------------------------------------------------ analysis


def test_step_table_on_a_known_distribution() -> None:
    df = pd.DataFrame(
        {"pre_check_ms": np.arange(1, 1001, dtype=float), "llm_ms": [np.nan] * 500 + [5.0] * 500}
    )
    t = step_table(df)
    assert t.loc["pre-check", "p50"] == 500.5 and t.loc["pre-check", "max"] == 1000
    assert t.loc["pre-check", "p99"] == pytest.approx(990.01)
    assert t.loc["LLM call", "n"] == 500 and list(t.columns) == [
        "n",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "max",
    ]


def _pairs_frame(
    direct: np.ndarray, governed: np.ndarray, sim_d: np.ndarray, sim_g: np.ndarray
) -> pd.DataFrame:
    recs = []
    for i in range(len(direct)):
        recs.append(
            record(
                2 * i,
                pair=i,
                arm="direct",
                total_ms=direct[i],
                simulated_ms=sim_d[i],
                pre_check_ms=math.nan,
                audit_ms=math.nan,
                approved=None,
                correct=None,
            )
        )
        recs.append(
            record(2 * i + 1, pair=i, arm="governed", total_ms=governed[i], simulated_ms=sim_g[i])
        )
    return LoadRun("p", LoadConfig.paired(n=len(direct)), tuple(recs), 1.0).frame()


def test_paired_overhead_removes_the_simulated_draws() -> None:
    rng = np.random.default_rng(0)
    sim_d, sim_g = rng.lognormal(3, 0.5, 300), rng.lognormal(3, 0.5, 300)
    base = rng.normal(2.0, 0.1, 300)  # the real (non-simulated) cost of the LLM call
    direct = base + sim_d
    governed = base + sim_g + 1.5  # exactly 1.5 ms of governance in every pair
    pairs = paired_overhead(_pairs_frame(direct, governed, sim_d, sim_g))
    assert np.allclose(pairs["overhead_ms"], 1.5)
    assert pairs["raw_ms"].std() > 5  # the raw difference is dominated by the draws


def test_paired_overhead_median_of_noisy_pairs() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    direct = rng.normal(10.0, 0.3, n)
    governed = rng.normal(10.0, 0.3, n) + 0.8
    zeros = np.zeros(n)
    pairs = paired_overhead(_pairs_frame(direct, governed, zeros, zeros))
    assert pairs["overhead_ms"].median() == pytest.approx(0.8, abs=0.03)
    # the difference of two N(0, 0.3) has sd 0.3 * sqrt(2)
    assert pairs["overhead_ms"].std() == pytest.approx(0.3 * math.sqrt(2), rel=0.05)


def test_paired_overhead_drops_pairs_with_an_error() -> None:
    df = _pairs_frame(np.ones(4), np.ones(4) * 2, np.zeros(4), np.zeros(4))
    df.loc[(df["pair"] == 2) & (df["arm"] == "direct"), "error"] = "Timeout"
    assert list(paired_overhead(df).index) == [0, 1, 3]


def test_verdicts_separate_rate_limits_from_wrong_answers() -> None:
    recs = (
        record(0),
        record(1, correct=False),
        record(2, correct=False, approved=False, policies="rate_limit"),
    )
    v = verdicts(LoadRun("m", LoadConfig(), recs, 1.0))
    assert (v["decisions"], v["correct"], v["wrong"], v["rate_limited"]) == (3, 1, 1, 1)


def test_sweep_table_throughput_is_requests_over_wall_time() -> None:
    runs = [
        LoadRun(
            "c", LoadConfig.closed(n=4, concurrency=c), tuple(record(i) for i in range(4)), wall
        )
        for c, wall in ((8, 0.5), (1, 2.0))
    ]
    t = sweep_table(runs)
    assert list(t["concurrency"]) == [1, 8] and list(t["throughput_rps"]) == [2.0, 8.0]
    assert t.loc[0, "total_p50_ms"] == 12.0


# ------------------------------------------------------------------------------ the floor


def test_decision_times_cover_every_row_and_pass() -> None:
    rows = load_corpus()[:10]
    out = decision_times(rows, passes=3, settings=HERMETIC)
    assert out.shape == (30,) and (out > 0).all()


def test_floor_decomposition_from_known_samples() -> None:
    n = 50
    s = {"health": np.full(n, 0.30), "pre_check": np.full(n, 0.55), "audit": np.full(n, 0.45)}
    floor = FloorResult({"aiohttp": s}, decision_ms=np.full(20, 0.01), warmup=5)
    d = floor.decomposition("aiohttp")
    assert d.loc["pre-check"].tolist() == pytest.approx([0.01, 0.30, 0.24])
    assert d.loc["audit"].tolist() == pytest.approx([0.0, 0.30, 0.15])
    t = floor.table()
    assert t.loc["aiohttp", "governance_p50_ms"] == pytest.approx(1.0)
    assert t.loc["aiohttp", "pre_check_above_floor_p50_ms"] == pytest.approx(0.25)
    assert floor.n == n and len(floor.frame()) == 3 * n


def test_raw_http_client_against_a_real_gateway(gateway: Any) -> None:
    client = RawHTTPClient(gateway.url)
    try:
        status, body = client.request("GET", "/health")
        assert (status, body["status"]) == (200, "healthy")
        status, body = client.request(
            "POST", "/api/policy/pre-check", {"user_token": "u", "client_id": "c", "query": "hello"}
        )
        assert status == 200 and body["approved"] is True
    finally:
        client.close()


def test_step_table_can_leave_out_unsupported_percentiles() -> None:
    df = pd.DataFrame({"pre_check_ms": np.arange(1, 1001, dtype=float),
                       "llm_ms": [np.nan] * 940 + [5.0] * 60})  # fmt: skip
    t = step_table(df, supported_only=True)
    assert t.loc["pre-check", "p99.9"] == pytest.approx(np.percentile(np.arange(1, 1001), 99.9))
    assert np.isnan(t.loc["LLM call", "p99"]) and t.loc["LLM call", "p95"] == 5.0
