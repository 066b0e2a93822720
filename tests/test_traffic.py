"""helpers.trail.traffic: the seeded day plan, and a small day run through the real stack.

The run tests start the embedded gateway and the provider stand-ins (time scale 0) in their
own processes, exactly as the notebook does, and send real pre-checks, real SDK calls and real
audits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from helpers.client import SyncGatewayClient
from helpers.errors import ConfigError, GatewayUnavailable
from helpers.gateway.engine import DecisionEngine
from helpers.gateway.policies.rbac import UserDirectory
from helpers.stack import Backend, Stack, start_stack
from helpers.trail.traffic import GUEST_TOKEN, PERSONAS, DayPlan, plan_day, run_day

from .conftest import hermetic_settings


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    assert plan_day(seed=11) == plan_day(seed=11)
    assert plan_day(seed=11).calls != plan_day(seed=12).calls


def test_the_default_day_has_the_variety_the_notebook_promises() -> None:
    plan = plan_day()
    users = {c.user_token for c in plan.calls}
    assert len(users) >= 7 and GUEST_TOKEN in users
    assert len({c.department for c in plan.calls}) >= 7
    assert plan.providers == {"openai", "anthropic"}
    assert len({c.model for c in plan.calls}) >= 6
    assert {c.kind for c in plan.calls} == {"routine", "risky", "burst"}
    assert sum(c.fail for c in plan.calls) >= 5
    # Dated and -latest ids are in the mix, so the pricing-by-family path is exercised.
    assert {"gpt-4o-2024-08-06", "claude-3-5-sonnet-latest"} <= {c.model for c in plan.calls}


def test_calls_are_in_time_order_within_the_day() -> None:
    plan = plan_day(seed=5, calls=120)
    times = [c.at for c in plan.calls]
    assert times == sorted(times)
    assert all(t.date() == plan.day and t.tzinfo is UTC for t in times)
    assert all(7 <= t.hour <= 19 for t in times)
    assert [c.index for c in plan.calls] == list(range(len(plan)))


def test_guest_burst_exceeds_the_guest_limit_within_one_window() -> None:
    requests, per_seconds = UserDirectory.load().role_limit("guest")
    plan = plan_day(seed=1, calls=10, guest_burst=requests + 3)
    burst = [c for c in plan.calls if c.kind == "burst"]
    assert len(burst) == requests + 3 and {c.user_token for c in burst} == {GUEST_TOKEN}
    assert (burst[-1].at - burst[0].at).total_seconds() < per_seconds


def test_plan_frame_has_no_query_text() -> None:
    frame = plan_day(seed=2, calls=20).frame()
    assert "query" not in frame.columns and frame["query_chars"].min() > 0
    assert len(frame) == 20 + 14


@pytest.fixture(scope="module")
def engine() -> DecisionEngine:
    return DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)


@pytest.mark.parametrize("persona", PERSONAS, ids=[p.token for p in PERSONAS])
def test_routine_prompts_trigger_no_policy_for_their_asker(persona, engine) -> None:  # type: ignore[no-untyped-def]
    for prompt in persona.prompts:
        assert engine.decide(prompt, persona.token).policies == [], prompt


def test_routine_calls_with_documents_stay_clean(engine: DecisionEngine) -> None:
    plan = plan_day(seed=99, calls=300, risky_share=0.0)
    dirty = [c for c in plan.calls if c.kind != "burst"
             and engine.decide(c.query, c.user_token).policies]  # fmt: skip
    assert dirty == []


def test_risky_share_draws_policy_triggering_prompts(engine: DecisionEngine) -> None:
    plan = plan_day(seed=4, calls=200, risky_share=1.0, guest_burst=0)
    flagged = sum(bool(engine.decide(c.query, c.user_token).policies) for c in plan.calls)
    assert flagged >= 150  # scoped custom rules may not apply to every asker


# -- through the real stack -------------------------------------------------------------------


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack(hermetic_settings(), time_scale=0, quiet=True) as s:
        yield s


SMALL = dict(seed=3, calls=30, guest_burst=12, failure_share=0.2)


def test_a_small_day_through_gateway_sdks_and_audit(stack: Stack) -> None:
    plan = plan_day(**SMALL)
    result = run_day(plan, stack)
    assert result.count("calls") == len(plan)
    assert result.count("rate_limited") == 2  # 12 guest requests against a bucket of 10
    planned_failures = [o for o in result.outcomes if o.approved and o.call.fail]
    assert planned_failures and all(o.error == "InternalServerError" for o in planned_failures)
    # What the tutorial teaches: every call is audited, refusals and failures included.
    assert result.count("gaps") == 0 and result.count("audited") == len(plan)

    with stack.sync_gateway_client() as gw:
        records = gw.list_records(limit=1000)
    assert len(records) == len(plan)
    audited = [r for r in records if r["audit_id"]]
    assert len(audited) == result.count("audited")
    outcomes = [r["metadata"]["outcome"] for r in audited]
    assert outcomes.count("refused") == result.count("blocked")
    assert outcomes.count("provider_error") == len(planned_failures)
    failed = [r for r in audited if r["metadata"]["outcome"] != "answered"]
    assert all(r["prompt_tokens"] == r["completion_tokens"] == 0 for r in failed)
    answered = [r for r in audited if r["metadata"]["outcome"] == "answered"]
    assert {r["metadata"]["latency"] for r in answered} == {"simulated"}
    assert {r["provider"] for r in audited} == {"openai", "anthropic"}
    # The simulated clock travels in the context; the gateway's own clock is separate.
    times = sorted(r["request_context"]["simulated_at"] for r in records)
    assert times[0].startswith(plan.day.isoformat())
    ok = next(o for o in result.outcomes if o.audit_id and o.approved and not o.error)
    rec = next(r for r in audited if r["audit_id"] == ok.audit_id)
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["latency_ms"]) == (
        ok.prompt_tokens, ok.completion_tokens, ok.latency_ms)  # fmt: skip


def test_a_faulty_client_leaves_its_failed_calls_as_gaps(stack: Stack) -> None:
    plan = plan_day(**SMALL)
    result = run_day(plan, stack, audit_failures=False)
    failed = [o for o in result.outcomes if o.approved and o.call.fail]
    assert failed and result.count("gaps") == len(failed)
    assert all(o.gap and o.error == "InternalServerError" for o in failed)
    assert result.count("audited") == len(plan) - len(failed)  # refusals are still audited


def test_the_same_plan_gives_the_same_day_on_a_fresh_stack(stack: Stack) -> None:
    plan = plan_day(seed=8, calls=25, guest_burst=0, failure_share=0.1)

    def shape(result):  # type: ignore[no-untyped-def]
        return [(o.approved, o.policies, o.prompt_tokens, o.completion_tokens, o.latency_ms,
                 o.audit_id is None) for o in result.outcomes]  # fmt: skip

    first = shape(run_day(plan, stack))
    with start_stack(hermetic_settings(), time_scale=0, quiet=True) as fresh:
        second = shape(run_day(plan, fresh))
    assert first == second
    assert any(latency and latency > 100 for *_, latency, _ in first)  # simulated, not loopback


def test_an_explicit_gateway_client_is_used_and_left_open(stack: Stack) -> None:
    plan = plan_day(seed=6, calls=5, guest_burst=0)
    with SyncGatewayClient(stack.gateway.url, client_id="tenant-a",
                           settings=hermetic_settings()) as gw:  # fmt: skip
        run_day(plan, stack, gateway=gw)
        assert gw.health().ok  # still usable: run_day closes only what it opened
        assert {r["client_id"] for r in gw.list_records()} == {"tenant-a"}


def test_live_providers_need_explicit_consent() -> None:
    settings = hermetic_settings()
    live = Stack(
        settings,
        gateway=Backend("gateway", "http://127.0.0.1:9", False, "embedded gateway"),
        openai=Backend("openai", "https://api.openai.com/v1", True, "OpenAI API"),
        anthropic=Backend("anthropic", "http://127.0.0.1:9", False, "stand-in"),
        time_scale=0,
    )
    with pytest.raises(ConfigError, match="allow_live=True"):
        run_day(plan_day(seed=1, calls=3), live)
    # A plan without the live provider needs no consent: it gets as far as the (dead) gateway.
    anthropic_only = DayPlan(1, datetime(2025, 6, 3).date(),
                             tuple(c for c in plan_day(seed=1, calls=40).calls
                                   if c.provider == "anthropic")[:1])  # fmt: skip
    assert anthropic_only.providers == {"anthropic"}
    with pytest.raises(GatewayUnavailable):
        run_day(anthropic_only, live)
