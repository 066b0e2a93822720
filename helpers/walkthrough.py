"""``python -m helpers.walkthrough --provider openai|anthropic``: the three steps in a terminal.

Pre-check, the LLM call through the real SDK, and the audit, each timed on the client, then a
latency breakdown. Offline by default (embedded gateway, provider stand-in with simulated
latency); live services are used when configured. A blocked query prints why, skips the LLM,
audits the refusal, and still exits 0: a refusal is a correct outcome, not a failure. When
``AXONFLOW_AGENT_URL`` is set but nothing healthy answers there, it says so and exits 2,
unless ``--fallback`` allows the embedded gateway instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .client import SyncGatewayClient, TokenUsage, call_llm_sync
from .gateway.policies.rbac import UserDirectory
from .plots import format_ms  # notebooks 01 and 02 import it from here too
from .settings import DEFAULT_MODELS
from .stack import Stack, start_stack

__all__ = ["SECRET_HEADERS", "format_ms", "main", "run", "show_request"]

DEFAULT_QUERY = "What are best practices for AI model deployment?"
RULE = "=" * 60


#: Headers whose values are credentials: :func:`show_request` masks them.
SECRET_HEADERS = frozenset({"authorization", "x-license-key", "x-api-key", "api-key"})


def show_request(request: Any) -> str:
    """A recorded ``httpx.Request`` as it went over the wire: the request line, then each
    header as sent, credentials masked (the auth scheme stays visible). The body is left
    out; ``json.loads(request.content)`` shows it. Introduced in ``01_gateway_mode_openai``.

    >>> import httpx
    >>> print(show_request(httpx.Request("GET", "http://gw/health",
    ...                                  headers={"Authorization": "Basic Y29tbXVuaXR5Og=="})))
    GET /health
      Host: gw
      Authorization: Basic ****
    """
    lines = [f"{request.method} {request.url.raw_path.decode()}"]
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode(), raw_value.decode()
        if name.lower() in SECRET_HEADERS:
            scheme, _, secret = value.partition(" ")
            value = f"{scheme} ****" if secret else "****"
        lines.append(f"  {name}: {value}")
    return "\n".join(lines)


def _llm_client(stack: Stack, provider: str) -> Any:
    """Build the SDK client up front, so Step 2 times the call, not imports and set-up."""
    return stack.openai_client() if provider == "openai" else stack.anthropic_client()


def run(stack: Stack, provider: str, query: str, user: str, model: str | None = None) -> int:
    model = model or DEFAULT_MODELS[provider]
    label = "OpenAI" if provider == "openai" else "Anthropic"
    backend = stack.openai if provider == "openai" else stack.anthropic
    simulated = "" if backend.live else " (simulated latency, stand-in)"
    # What the app knows about its user, from the same directory the embedded gateway reads.
    person = UserDirectory.load(stack.settings.users_file).lookup(user)
    context = {"user_role": person.role, "department": person.department or "unknown"}
    print("AxonFlow Gateway Mode - Python Example\n")
    print(f"Backends: {stack.describe()}\n")
    print(f'Query: "{query}"')
    print(f"User: {user}")
    print(f"Context: {context}\n")
    with SyncGatewayClient(url=stack.gateway.url, settings=stack.settings) as gateway:
        # Open the keep-alive connection first, so Step 1 times the pre-check, not TCP set-up.
        gateway.health()
        print("Step 1: Policy Pre-Check...")
        pre = gateway.pre_check(query, user_token=user, context=context)
        print(f"   Completed in {format_ms(pre.duration_ms)}")
        print(f"   Context ID: {pre.context_id}")
        print(f"   Approved: {pre.approved}\n")
        if not pre.approved:
            print(f"   Blocked: {pre.block_reason}")
            print(f"   Policies: {', '.join(pre.policies)}\n")
            print(f"Step 2: LLM Call ({label})... skipped: the query was blocked\n")
            print("Step 3: Audit Logging (the refusal)...")
            aud = gateway.audit(
                pre.context_id,
                provider,
                model,
                TokenUsage(0, 0),
                latency_ms=0,
                response_summary="blocked by pre-check; LLM not called",
            )
            print(f"   Audit logged in {format_ms(aud.duration_ms)}")
            print(f"   Audit ID: {aud.audit_id}")
            return 0
        print(f"Step 2: LLM Call ({label})...")
        with _llm_client(stack, provider) as llm:
            t0 = time.perf_counter_ns()
            reply = call_llm_sync(llm, model, [{"role": "user", "content": query}], max_tokens=300)
            llm_ms = (time.perf_counter_ns() - t0) / 1e6
        text, usage = reply.text, reply.usage
        print(f"   Response received in {format_ms(llm_ms)}{simulated}")
        print(f"   Tokens: {usage.prompt_tokens} prompt, {usage.completion_tokens} completion\n")
        print("Step 3: Audit Logging...")
        aud = gateway.audit(
            pre.context_id,
            provider,
            model,
            usage,
            latency_ms=round(llm_ms),
            response_summary=text[:200],
        )
        print(f"   Audit logged in {format_ms(aud.duration_ms)}")
        print(f"   Audit ID: {aud.audit_id}\n")
    governance = pre.duration_ms + aud.duration_ms
    print(RULE)
    print("Results")
    print(RULE)
    print(f"\nResponse:\n{text}\n")
    print("Latency Breakdown (one request; notebook 03 measures distributions):")
    print(f"   Pre-check:  {format_ms(pre.duration_ms)}")
    print(f"   LLM call:   {format_ms(llm_ms)}{simulated}")
    print(f"   Audit:      {format_ms(aud.duration_ms)}")
    print("   -----------------")
    print(f"   Governance: {format_ms(governance)} (overhead)")
    print(f"   Total:      {format_ms(governance + llm_ms)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.walkthrough", description=__doc__)
    p.add_argument("--provider", choices=("openai", "anthropic"), default="openai")
    p.add_argument("--query", default=DEFAULT_QUERY)
    p.add_argument(
        "--user", default=None, help="user token (default AXONFLOW_USER_TOKEN or user-123)"
    )
    p.add_argument("--model", default=None, help="model id (default per provider)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="stand-in latency multiplier (default STANDIN_TIME_SCALE or 1)",
    )
    p.add_argument(
        "--fallback",
        action="store_true",
        help="use the embedded gateway when AXONFLOW_AGENT_URL does not answer (default: exit 2)",
    )
    args = p.parse_args(argv)
    with start_stack(time_scale=args.time_scale, quiet=True) as stack:
        for note in stack.notes:
            print(f"note: {note}", file=sys.stderr)
        if stack.settings.agent_url and not stack.gateway.live and not args.fallback:
            print(
                f"error: AXONFLOW_AGENT_URL={stack.settings.agent_url} is not answering; start "
                "the agent, unset the variable, or pass --fallback to use the embedded gateway",
                file=sys.stderr,
            )
            return 2
        return run(
            stack, args.provider, args.query, args.user or stack.settings.user_token, args.model
        )


if __name__ == "__main__":
    sys.exit(main())
