"""Proxy mode: ``POST /api/request``, wire-compatible with the official SDK's ``proxy_llm_call``.

In proxy mode one request carries the whole governed call: the gateway runs the same
policies as the pre-check, calls the provider itself (:mod:`.providers`, keys on the
gateway), writes the audit (hashes only, same trail, same chain) and answers with the text.
The wire follows ``PROXY-CONTRACT.md`` (AxonFlow's agent, SDK 9.5):

* success: 200 ``{"success": true, "blocked": false, "data": {"data": <text>, "metadata":
  {...}}, "policy_info": {...}}``;
* policy block: 403 ``{"success": false, "blocked": true, "block_reason": ...,
  "policy_info": {"policies_evaluated": [<blocking policy first>, ...], ...}}`` (the SDK
  raises ``PolicyViolationError``);
* provider failure, missing key, unreachable or hanging provider: 200 ``{"success": false,
  "blocked": false, "error": ...}`` (the v6.2+ form; the SDK returns ``success=False``);
* bad input: 400 ``{"success": false, "blocked": false, "error": ...}``.

Extensions (AxonFlow drops these): ``data.metadata`` also carries ``provider``, ``model``,
``token_usage``, ``latency_ms`` (the provider call), ``context_id`` and ``audit_id``; the
SDK lifts ``data.metadata`` into its response's ``metadata``. Every approved request is
audited with ``metadata.mode = "proxy"`` and its ``outcome`` (``ok`` or the failure kind),
so a failed call is in the trail as a failure, never missing and never half-written.

Redaction (``PII_ACTION=redact``, ``SECRET_ACTION=redact``) works as on the pre-check: the
provider receives the query and ``context.system_prompt`` with typed placeholders, the
caller receives the answer with its own values put back, and the audit notes the types and
the count redacted. The answer itself is inspected with the same switches (:mod:`.replies`):
a value the caller never sent is redacted, or blocks the answer (403, ``blocked: true``,
audited as ``reply_blocked``). Introduced in ``11_proxy_mode.ipynb``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from helpers.settings import DEFAULT_MODELS

from .auth import Authenticator
from .governance import Governance, Governed
from .policies.obfuscation import sensitive_matches
from .providers import (
    PROVIDERS,
    ProviderConfig,
    ProviderError,
    Providers,
    provider_for_model,
)
from .replies import ReplyInspector
from .validation import Call, Reject, text_field

__all__ = ["ProxyMode", "go_duration"]

log = logging.getLogger("helpers.gateway.proxy")

#: The families every decision runs (``policy_info.static_checks``).
STATIC_CHECKS = [
    "sql_injection",
    "admin_access",
    "pii_detection",
    "secret_detection",
    "custom_policies",
    "rate_limit",
]
#: Request types AxonFlow routes somewhere other than an LLM; this gateway has neither.
UNSUPPORTED_TYPES = {
    "multi-agent-plan": "multi-agent planning needs AxonFlow's orchestrator",
    "mcp-query": "MCP connectors need AxonFlow's connector runtime",
}
MOCK_ANSWER = "test_response_hourly_validation"  # AxonFlow's answer for skip_llm


def go_duration(ns: int) -> str:
    """A duration as Go prints it (``policy_info.processing_time``): ``850µs``, ``1.2ms``."""
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:g}µs"
    if ns < 1_000_000_000:
        return f"{round(ns / 1e6, 3):g}ms"
    return f"{round(ns / 1e9, 3):g}s"


class LLMParams(NamedTuple):
    provider: str
    model: str
    system_prompt: str | None
    max_tokens: int | None
    temperature: float | None


def policy_info(governed: Governed) -> dict[str, Any]:
    """``policy_info`` of a proxy reply: the blocking policy first, then the others reported."""
    decision = governed.decision
    blocking = [f.policy_id for f in decision.blocking]
    triggered = blocking + [p for p in decision.reported_policies if p not in blocking]
    return {
        "policies_evaluated": triggered,
        "static_checks": STATIC_CHECKS,
        "processing_time": go_duration(time.perf_counter_ns() - governed.started_ns),
        "tenant_id": governed.client_id,
    }


class ProxyMode:
    """The proxy-mode half of the gateway: its provider clients and ``/api/request``; shared
    with ``/v1/chat/completions`` (:mod:`.openai_compat`). Governance is the core's
    (:mod:`.governance`), so every switch means what it means on the pre-check.

    >>> proxy = ProxyMode(governance, Authenticator({}))              # doctest: +SKIP
    >>> Route("/api/request", Endpoint(proxy.request), methods=["POST"])  # doctest: +SKIP
    """

    def __init__(
        self,
        governance: Governance,
        auth: Authenticator,
        *,
        limit: int = 4 * 1024 * 1024,
        config: ProviderConfig | None = None,
        inspect_replies: bool = True,
    ) -> None:
        self.governance = governance
        self.auth = auth
        self.limit = limit
        self.inspect_replies = inspect_replies
        self.providers = Providers(config or ProviderConfig.from_env())

    def warm_up(self) -> None:
        """Build the connection pools of the providers that have a key before serving, so a
        configuration error (a base URL that is not one) shows at start-up."""
        for provider in self.providers.config.keys:
            self.providers.client(provider)

    async def aclose(self) -> None:
        await self.providers.aclose()

    def reply_inspector(self, governed: Governed, parts: Sequence[str]) -> ReplyInspector:
        """What each answer passes through: the reply inspection (unless switched off) and
        the restoring of the caller's placeholders. Values the caller sent raw (under
        ``warn`` or ``log``) are its own: repeated in the answer, they are not a leak."""
        if not self.inspect_replies:
            return ReplyInspector(None, governed.redaction)
        engine = self.governance.engine
        actions = {"pii": engine.pii_action, "secret": engine.secret_action}
        caller: list[str] = []
        if governed.redaction is None and any(
            f.family in ("pii", "secret") for f in governed.decision.findings
        ):
            joined = "\n".join(parts)
            found = sensitive_matches(joined, layout=engine.ssn_layout)
            caller = [joined[m.span[0] : m.span[1]] for m in found]
        return ReplyInspector(
            actions, governed.redaction, caller_values=caller, ssn_layout=engine.ssn_layout
        )

    # -- POST /api/request -------------------------------------------------------------------
    async def request(self, call: Call) -> tuple[int, dict[str, Any]]:
        try:
            return await self._request(call)
        except Reject as exc:
            return exc.status, {"success": False, "blocked": False, "error": exc.message}

    async def _request(self, call: Call) -> tuple[int, dict[str, Any]]:
        client = self.auth.check(call)
        data = await call.json(self.limit)
        query = text_field(data, "query")
        user_token = text_field(data, "user_token")
        request_type = text_field(data, "request_type") or "chat"
        context = data.get("context")
        if context is not None and not isinstance(context, dict):
            raise Reject(400, "context must be an object")
        skip_llm = data.get("skip_llm")
        if skip_llm is not None and not isinstance(skip_llm, bool):
            raise Reject(400, "skip_llm must be true, false or null")
        if not query:
            raise Reject(400, "query field is required")
        if request_type in UNSUPPORTED_TYPES:
            raise Reject(
                400,
                f"request_type {request_type!r} is not supported by the embedded gateway: "
                f"{UNSUPPORTED_TYPES[request_type]}. Use chat, completion or llm_chat.",
            )
        params = llm_params(context or {}, self.providers.config)
        client_id = self.auth.tenant(call, client, text_field(data, "client_id"))

        # The system prompt is sent to the provider too, so it is governed with the query.
        roles = (["system"] if params.system_prompt else []) + ["user"]
        parts = ([params.system_prompt] if params.system_prompt else []) + [query]
        governed = await self.governance.decide(client_id, user_token, parts, context=context)
        decision = governed.decision
        if not decision.approved:
            return 403, {
                "success": False,
                "blocked": True,
                "block_reason": decision.block_reason,
                "policy_info": policy_info(governed),
                "context_id": governed.context_id,
            }
        base_meta = {"mode": "proxy", "endpoint": "/api/request", "request_type": request_type}
        if skip_llm:
            audit_id = await self.governance.record(
                governed, "mock", "mock", metadata={**base_meta, "outcome": "ok", "skip_llm": True}
            )
            return 200, self._success(governed, MOCK_ANSWER, "mock", "mock", (0, 0), 0.0, audit_id)

        sent = governed.redaction.texts if governed.redaction else parts
        messages = [{"role": r, "content": t} for r, t in zip(roles, sent, strict=True)]
        llm_started = time.perf_counter_ns()
        try:
            answer = await self.providers.complete(
                params.provider,
                params.model,
                messages,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
            )
        except ProviderError as exc:
            latency_ms = (time.perf_counter_ns() - llm_started) / 1e6
            meta = {**base_meta, "outcome": f"provider_{exc.kind}", "error": exc.message}
            audit_id = await self.governance.record(
                governed, params.provider, params.model, latency_ms=latency_ms, metadata=meta
            )
            return 200, {
                "success": False,
                "blocked": False,
                "error": f"LLM call failed: {exc.message}",
                "policy_info": policy_info(governed),
                "context_id": governed.context_id,
                "audit_id": audit_id,
            }
        latency_ms = (time.perf_counter_ns() - llm_started) / 1e6
        tokens = (answer.prompt_tokens, answer.completion_tokens)
        inspector = self.reply_inspector(governed, parts)
        text = inspector.check(answer.text)
        meta = {**base_meta, "outcome": "ok", "finish_reason": answer.finish_reason}
        if inspector.blocked:
            meta["outcome"] = "reply_blocked"
        if governed.redaction is not None:
            meta["redaction"] = governed.redaction.note
        if inspector.verdict.policies:
            meta["reply"] = inspector.verdict.note
        audit_id = await self.governance.record(
            governed,
            params.provider,
            answer.model,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            latency_ms=latency_ms,
            metadata=meta,
        )
        if inspector.blocked:
            info = policy_info(governed)
            info["policies_evaluated"] = [inspector.blocked_by, *info["policies_evaluated"]]
            return 403, {
                "success": False,
                "blocked": True,
                "block_reason": inspector.reason,
                "policy_info": info,
                "context_id": governed.context_id,
                "audit_id": audit_id,
            }
        return 200, self._success(
            governed, text, params.provider, answer.model, tokens, latency_ms, audit_id
        )

    def _success(
        self,
        governed: Governed,
        text: str,
        provider: str,
        model: str,
        tokens: tuple[int, int],
        latency_ms: float,
        audit_id: str,
    ) -> dict[str, Any]:
        prompt, completion = tokens
        metadata = {
            "processed_at": self.governance.store.now(),  # type: ignore[union-attr]
            "provider": provider,
            "model": model,
            "token_usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "latency_ms": round(latency_ms, 3),
            "context_id": governed.context_id,
            "audit_id": audit_id,
        }
        return {
            "success": True,
            "blocked": False,
            "data": {"data": text, "metadata": metadata},
            "policy_info": policy_info(governed),
        }


def llm_params(context: dict[str, Any], config: ProviderConfig) -> LLMParams:
    """``context.provider``, ``model``, ``max_tokens``, ``temperature``, ``system_prompt``,
    validated with messages that name the field and the value."""
    provider = context.get("provider")
    model = context.get("model")
    if provider is not None and provider not in PROVIDERS:
        raise Reject(400, f"context.provider={provider!r} is not one of openai, anthropic")
    if model is not None and (not isinstance(model, str) or not model):
        raise Reject(400, f"context.model={model!r} must be a non-empty string")
    if provider is None:
        if model is not None:
            provider = provider_for_model(model)
        else:  # the first provider the gateway has a key for
            provider = next((p for p in PROVIDERS if config.has_key(p)), "openai")
    max_tokens = context.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise Reject(400, f"context.max_tokens={max_tokens!r} must be a positive integer")
    temperature = context.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise Reject(400, f"context.temperature={temperature!r} must be a number from 0 to 2")
    system_prompt = context.get("system_prompt")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise Reject(400, "context.system_prompt must be a string")
    return LLMParams(
        provider, model or DEFAULT_MODELS[provider], system_prompt or None, max_tokens, temperature
    )
