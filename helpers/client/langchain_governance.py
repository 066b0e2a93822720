"""Gateway-mode governance for LangChain and LangGraph, as one callback handler.

Drop :class:`GovernanceCallback` into any chat model's or graph's ``callbacks`` and every
model call is pre-checked before it is sent (the whole prompt: system turn, history and any
retrieved context), audited after it with the token usage LangChain reports in
``usage_metadata`` (streams included, with ``stream_usage=True``), and every tool call's
arguments are pre-checked before the tool runs. A block raises :class:`GovernanceBlocked`,
which stops the chain or graph before the model or tool is reached. Works with any
LangChain chat model (``ChatOpenAI``, ``ChatAnthropic``, ...), sync or async.

Needs ``langchain-core`` (imported here only). Introduced in ``12_frameworks.ipynb``.

>>> handler = GovernanceCallback(gateway, user_token="user-123")        # doctest: +SKIP
>>> ChatOpenAI(model="gpt-4o-mini", callbacks=[handler]).invoke("hi")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from helpers.errors import HelperError

from .gateway_client import SyncGatewayClient
from .providers import content_text
from .results import PreCheckResult, TokenUsage

__all__ = ["GovernanceBlocked", "GovernanceCallback"]


class GovernanceBlocked(HelperError):
    """A pre-check refused a model call or a tool call; ``result`` says which policy."""

    def __init__(self, what: str, result: PreCheckResult) -> None:
        super().__init__(f"{what} blocked: {result.block_reason or 'refused by policy'}")
        self.what = what
        self.result = result


class _QuietBlocks(logging.Filter):
    """LangChain logs a handler's exception as a warning before re-raising it; a block is
    an expected outcome that the caller handles, so that warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "GovernanceBlocked" not in record.getMessage()


_QUIET = _QuietBlocks()


class GovernanceCallback(BaseCallbackHandler):
    """Pre-check, audit and tool-argument checks for LangChain runs (see the module doc)."""

    raise_error = True  # a block must stop the run, not be logged and ignored
    run_inline = True

    def __init__(
        self, gateway: SyncGatewayClient, user_token: str, *, provider: str | None = None
    ) -> None:
        self.gateway = gateway
        self.user_token = user_token
        self.provider = provider
        self.audits: list[str] = []
        self.decisions: list[PreCheckResult] = []
        self._runs: dict[UUID, tuple[str, float, str, str]] = {}
        self._lock = threading.Lock()
        manager_log = logging.getLogger("langchain_core.callbacks.manager")
        if _QUIET not in manager_log.filters:
            manager_log.addFilter(_QUIET)

    def _check(self, what: str, text: str) -> PreCheckResult:
        result = self.gateway.pre_check(text, self.user_token, context={"framework": "langchain"})
        with self._lock:
            self.decisions.append(result)
        if not result.approved:
            raise GovernanceBlocked(what, result)
        return result

    # -- model calls -------------------------------------------------------------------------
    # `# fmt: skip`: 12_frameworks prints this method, its signature compact on four lines.
    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        prompt = "\n".join(content_text(m.content) for batch in messages for m in batch)
        meta = metadata or {}
        params = kwargs.get("invocation_params") or {}
        model = meta.get("ls_model_name") or params.get("model") or params.get("model_name") or ""
        provider = self.provider or meta.get("ls_provider") or "unknown"
        result = self._check("model call", prompt)
        with self._lock:
            self._runs[run_id] = (result.context_id, time.perf_counter(), provider, model)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        context_id, started, provider, model = run
        usage = TokenUsage(0, 0)
        generation = response.generations[0][0] if response.generations else None
        message = getattr(generation, "message", None)
        meta = getattr(message, "usage_metadata", None)
        if meta:
            usage = TokenUsage(meta.get("input_tokens", 0), meta.get("output_tokens", 0))
        served = (getattr(message, "response_metadata", None) or {}).get("model_name") or model
        latency = round((time.perf_counter() - started) * 1000)
        meta = {"framework": "langchain"}
        audit = self.gateway.audit(
            context_id, provider, served or "unknown", usage, latency_ms=latency, metadata=meta
        )
        with self._lock:
            self.audits.append(audit.audit_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        context_id, started, provider, model = run
        latency = round((time.perf_counter() - started) * 1000)
        meta = {"framework": "langchain", "error": type(error).__name__}
        self.gateway.audit(
            context_id,
            provider,
            model or "unknown",
            TokenUsage(0, 0),
            latency_ms=latency,
            metadata=meta,
        )

    # -- tool calls ----------------------------------------------------------------------------
    # `# fmt: skip`: 12_frameworks prints this method, its signature compact on four lines.
    def on_tool_start(
        self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
        inputs: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        name = (serialized or {}).get("name", "tool")
        args = json.dumps(inputs, sort_keys=True, default=str) if inputs else input_str
        self._check(f"tool call {name}", f"{name}({args})")
