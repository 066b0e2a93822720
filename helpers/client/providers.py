"""Step 2, the application's own LLM call, through the real ``openai`` or ``anthropic`` SDK.

:func:`call_llm` (async) and :func:`call_llm_sync` take an SDK client you built (any
``base_url``: the real service or the local stand-ins), send one chat, optionally streamed,
and return an :class:`LLMReply`: the text, any tool calls, the token counts the audit needs,
and the time to first token. Which provider it is follows from the client: OpenAI clients
have ``.chat``, Anthropic clients ``.messages``. Messages are OpenAI-shaped
(``{"role", "content"}``); for Anthropic, system messages become the ``system`` parameter.
Introduced in ``10_real_application.ipynb``.

>>> split_system([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
('Be brief.', [{'role': 'user', 'content': 'hi'}])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from .results import TokenUsage

__all__ = ["LLMReply", "ToolCall", "call_llm", "call_llm_sync", "provider_of", "split_system"]

Message = Mapping[str, Any]
OnText = Callable[[str], None] | None


@dataclass(frozen=True)
class ToolCall:
    """A function the model asked to call, with the arguments it produced (parsed JSON)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class LLMReply:
    """What one LLM call returned, in the same shape for both providers."""

    provider: str
    model: str
    text: str
    usage: TokenUsage
    latency_ms: float
    ttft_ms: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish: str = ""
    raw: Any = field(default=None, compare=False, repr=False)


def provider_of(llm: Any) -> str:
    """``"openai"`` or ``"anthropic"`` from the SDK client's shape (sync or async)."""
    if hasattr(llm, "chat"):
        return "openai"
    if hasattr(llm, "messages"):
        return "anthropic"
    raise TypeError(f"expected an openai or anthropic SDK client, got {type(llm).__name__}")


def split_system(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """Anthropic takes system text as a parameter, not as a message."""
    system = [str(m["content"]) for m in messages if m["role"] == "system"]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    return ("\n".join(system) if system else None), rest


def _openai_kwargs(model: str, messages: Sequence[Message], stream: bool, kw: dict[str, Any]):
    args = {"model": model, "messages": list(messages), **kw}
    if stream:
        args.update(stream=True, stream_options={"include_usage": True})
    return args


def _anthropic_kwargs(model: str, messages: Sequence[Message], kw: dict[str, Any]):
    system, rest = split_system(messages)
    args = {"model": model, "messages": rest, "max_tokens": kw.pop("max_tokens", 512), **kw}
    if system is not None:
        args["system"] = system
    return args


def _openai_reply(resp: Any, model: str, ms: float) -> LLMReply:
    choice = resp.choices[0]
    calls = tuple(
        ToolCall(c.id, c.function.name, _json(c.function.arguments))
        for c in choice.message.tool_calls or ()
    )
    usage = TokenUsage(resp.usage.prompt_tokens, resp.usage.completion_tokens)
    text = choice.message.content or ""
    return LLMReply("openai", model, text, usage, ms, None, calls, choice.finish_reason, resp)


def _anthropic_reply(msg: Any, model: str, ms: float, ttft: float | None = None) -> LLMReply:
    text = "".join(b.text for b in msg.content if b.type == "text")
    calls = tuple(
        ToolCall(b.id, b.name, dict(b.input)) for b in msg.content if b.type == "tool_use"
    )
    usage = TokenUsage(msg.usage.input_tokens, msg.usage.output_tokens)
    return LLMReply("anthropic", model, text, usage, ms, ttft, calls, msg.stop_reason or "", msg)


def _json(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"_unparsed": text}  # a model can emit broken JSON; keep it for the pre-check
    return value if isinstance(value, dict) else {"_value": value}


class _Stream:
    """Collects an OpenAI chunk stream: text, usage, time to first token."""

    def __init__(self, model: str, on_text: OnText, t0: float) -> None:
        self.model, self.on_text, self.t0 = model, on_text, t0
        self.parts: list[str] = []
        self.ttft: float | None = None
        self.usage = TokenUsage(0, 0)
        self.finish = ""

    def feed(self, chunk: Any) -> None:
        if chunk.usage is not None:
            self.usage = TokenUsage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            self.finish = choice.finish_reason or self.finish
            if choice.delta.content:
                self.text(choice.delta.content)

    def text(self, piece: str) -> None:
        if self.ttft is None:
            self.ttft = (perf_counter() - self.t0) * 1000
        self.parts.append(piece)
        if self.on_text is not None:
            self.on_text(piece)

    def reply(self) -> LLMReply:
        ms = (perf_counter() - self.t0) * 1000
        return LLMReply("openai", self.model, "".join(self.parts), self.usage, ms, self.ttft,
                        (), self.finish)  # fmt: skip


async def call_llm(
    llm: Any,
    model: str,
    messages: Sequence[Message],
    *,
    stream: bool = False,
    on_text: OnText = None,
    **kwargs: Any,
) -> LLMReply:
    """One chat through an async SDK client (``AsyncOpenAI`` or ``AsyncAnthropic``).

    ``on_text`` gets each streamed piece as it arrives; extra ``kwargs`` go to the SDK
    (``tools``, ``max_tokens``, ``temperature``...).
    """
    t0 = perf_counter()
    if provider_of(llm) == "openai":
        resp = await llm.chat.completions.create(**_openai_kwargs(model, messages, stream, kwargs))
        if not stream:
            return _openai_reply(resp, model, (perf_counter() - t0) * 1000)
        collected = _Stream(model, on_text, t0)
        async for chunk in resp:
            collected.feed(chunk)
        return collected.reply()
    args = _anthropic_kwargs(model, messages, kwargs)
    if not stream:
        msg = await llm.messages.create(**args)
        return _anthropic_reply(msg, model, (perf_counter() - t0) * 1000)
    collected = _Stream(model, on_text, t0)
    async with llm.messages.stream(**args) as events:
        async for piece in events.text_stream:
            collected.text(piece)
        msg = await events.get_final_message()
    return _anthropic_reply(msg, model, (perf_counter() - t0) * 1000, collected.ttft)


def call_llm_sync(
    llm: Any,
    model: str,
    messages: Sequence[Message],
    *,
    stream: bool = False,
    on_text: OnText = None,
    **kwargs: Any,
) -> LLMReply:
    """Blocking :func:`call_llm`, for ``OpenAI`` or ``Anthropic`` clients."""
    t0 = perf_counter()
    if provider_of(llm) == "openai":
        resp = llm.chat.completions.create(**_openai_kwargs(model, messages, stream, kwargs))
        if not stream:
            return _openai_reply(resp, model, (perf_counter() - t0) * 1000)
        collected = _Stream(model, on_text, t0)
        for chunk in resp:
            collected.feed(chunk)
        return collected.reply()
    args = _anthropic_kwargs(model, messages, kwargs)
    if not stream:
        return _anthropic_reply(llm.messages.create(**args), model, (perf_counter() - t0) * 1000)
    collected = _Stream(model, on_text, t0)
    with llm.messages.stream(**args) as events:
        for piece in events.text_stream:
            collected.text(piece)
        msg = events.get_final_message()
    return _anthropic_reply(msg, model, (perf_counter() - t0) * 1000, collected.ttft)
