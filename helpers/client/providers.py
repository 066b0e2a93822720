"""Step 2, the application's own LLM call, through the real ``openai`` or ``anthropic`` SDK.

:func:`call_llm` (async) and :func:`call_llm_sync` take an SDK client you built (any
``base_url``: the real service or the local stand-ins), send one chat, optionally streamed,
and return an :class:`LLMReply`: the text, any tool calls, the token counts the audit needs,
the time to first token and the response headers. Which provider it is follows from the
client: OpenAI clients have ``.chat``, Anthropic clients ``.messages``. Messages are OpenAI-shaped
(``{"role", "content"}``); for Anthropic, system messages become the ``system`` parameter.

A call that fails raises one :class:`~helpers.errors.ProviderError` subclass (module
:mod:`.provider_errors`), after the SDK's own retries, carrying the provider's status and
message, the time until the failure and the tokens reported so far. A stream that breaks
off raises the same way mid-stream, after ``on_text`` has seen what did arrive; a stream
that ends before the model finished is a :class:`~helpers.errors.ProviderBadReply`.
Introduced in ``10_real_application.ipynb``.

>>> split_system([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
('Be brief.', [{'role': 'user', 'content': 'hi'}])
"""

from __future__ import annotations

import inspect
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Any

from helpers.errors import ProviderBadReply, ProviderError

from .provider_errors import failure_types, provider_error
from .results import TokenUsage

__all__ = [
    "LLMReply",
    "ToolCall",
    "call_llm",
    "call_llm_sync",
    "content_text",
    "list_models",
    "provider_of",
    "split_system",
]

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
    #: The HTTP response headers (a stand-in reports the latency it simulated there).
    headers: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


def provider_of(llm: Any) -> str:
    """``"openai"`` or ``"anthropic"`` from the SDK client's shape (sync or async)."""
    if hasattr(llm, "chat"):
        return "openai"
    if hasattr(llm, "messages"):
        return "anthropic"
    raise TypeError(f"expected an openai or anthropic SDK client, got {type(llm).__name__}")


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string as it is, or a list of content blocks
    with each block's ``text`` on its own line; ``None`` is ``""``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks: keep the text ones
        return "\n".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


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


def _openai_reply(resp: Any, model: str, ms: float, ttft: float | None = None) -> LLMReply:
    choice = resp.choices[0]
    calls = tuple(
        ToolCall(c.id, c.function.name, _json(c.function.arguments))
        for c in choice.message.tool_calls or ()
    )
    usage = TokenUsage(resp.usage.prompt_tokens, resp.usage.completion_tokens)
    text = choice.message.content or ""
    return LLMReply("openai", model, text, usage, ms, ttft, calls, choice.finish_reason, resp)


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


#: What reading an unexpected reply object raises (a body that is JSON, but not a completion).
_SHAPE_ERRORS = (AttributeError, TypeError, IndexError, KeyError)


class _Call:
    """One call in progress: its clock, the streamed text, the usage and finish seen so far,
    and so, when it fails, the typed error that says what it cost."""

    def __init__(self, provider: str, model: str, on_text: OnText) -> None:
        self.provider, self.model, self.on_text = provider, model, on_text
        self.t0 = perf_counter()
        self.failures = failure_types(provider)
        self.streaming = False
        self.parts: list[str] = []
        self.ttft: float | None = None
        self.usage = TokenUsage(0, 0)
        self.finish = ""
        self.finished = False
        self.headers: Mapping[str, str] = {}

    def ms(self) -> float:
        return (perf_counter() - self.t0) * 1000

    def failed(self, exc: BaseException) -> ProviderError:
        return provider_error(
            exc,
            self.provider,
            latency_ms=self.ms(),
            streamed=len(self.parts) if self.streaming else None,
            prompt_tokens=self.usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens,
        )

    def reply(self, read: Callable[..., LLMReply], answer: Any) -> LLMReply:
        """An answer object read into an :class:`LLMReply`; a wrong shape is a bad reply."""
        try:
            reply = read(answer, self.model, self.ms(), self.ttft)
        except _SHAPE_ERRORS as exc:
            raise self.failed(exc) from exc
        return replace(reply, headers=self.headers)

    def text(self, piece: str) -> None:
        if self.ttft is None:
            self.ttft = self.ms()
        self.parts.append(piece)
        if self.on_text is not None:
            self.on_text(piece)

    def ended(self) -> None:
        """After the last chunk: a stream that never said the model finished was cut."""
        if not self.finished:
            raise ProviderBadReply(
                self.provider,
                f"the stream ended after {len(self.parts)} streamed pieces, before the model "
                "said it had finished; the answer is incomplete",
                latency_ms=self.ms(),
                prompt_tokens=self.usage.prompt_tokens,
                completion_tokens=self.usage.completion_tokens,
            )

    def openai_stream_reply(self) -> LLMReply:
        """The reply an OpenAI stream added up to (Anthropic's SDK builds its own)."""
        self.ended()
        text = "".join(self.parts)
        return LLMReply(
            "openai",
            self.model,
            text,
            self.usage,
            self.ms(),
            self.ttft,
            (),
            self.finish,
            headers=self.headers,
        )


def _openai_chunk(call: _Call, chunk: Any) -> str:
    """Usage and finish from one OpenAI chunk into ``call``; its text."""
    if chunk.usage is not None:
        call.usage = TokenUsage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
    text = []
    for choice in chunk.choices:
        if choice.finish_reason:
            call.finish, call.finished = choice.finish_reason, True
        text.append(choice.delta.content or "")
    return "".join(text)


def _anthropic_event(call: _Call, event: Any) -> str:
    """Usage and the end of the message from one Anthropic event into ``call``; its text."""
    if event.type == "message_start":
        usage = event.message.usage
        call.usage = TokenUsage(usage.input_tokens, usage.output_tokens or 0)
    elif event.type == "message_delta":
        call.usage = TokenUsage(call.usage.prompt_tokens, event.usage.output_tokens)
    elif event.type == "message_stop":
        call.finished = True
    return event.text if event.type == "text" else ""


async def _pieces(
    call: _Call, source: AsyncIterable[Any], read: Callable[[_Call, Any], str]
) -> AsyncIterator[str]:
    """The text of a stream, piece by piece. Whatever the SDK raises while reading it, and a
    chunk that does not parse, is the provider's failure; ``on_text`` runs outside this."""
    call.streaming = True
    chunks = aiter(source)
    while True:
        try:
            piece = read(call, await anext(chunks))
        except StopAsyncIteration:
            return
        except Exception as exc:
            raise call.failed(exc) from exc
        if piece:
            yield piece


def _pieces_sync(
    call: _Call, source: Iterable[Any], read: Callable[[_Call, Any], str]
) -> Iterator[str]:
    """Blocking :func:`_pieces`."""
    call.streaming = True
    chunks = iter(source)
    while True:
        try:
            piece = read(call, next(chunks))
        except StopIteration:
            return
        except Exception as exc:
            raise call.failed(exc) from exc
        if piece:
            yield piece


async def _parsed(raw: Any) -> Any:
    """A raw response's body: ``parse()`` is plain in openai's async client, awaited in
    anthropic's."""
    body = raw.parse()
    return await body if inspect.isawaitable(body) else body


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
    (``tools``, ``max_tokens``, ``temperature``, ``extra_headers``...). A failure raises a
    :class:`~helpers.errors.ProviderError`.
    """
    call = _Call(provider_of(llm), model, on_text)
    if call.provider == "openai":
        try:
            raw = await llm.chat.completions.with_raw_response.create(
                **_openai_kwargs(model, messages, stream, kwargs)
            )
            call.headers = raw.headers
            resp = await _parsed(raw)
        except call.failures as exc:
            raise call.failed(exc) from exc
        if not stream:
            return call.reply(_openai_reply, resp)
        async for piece in _pieces(call, resp, _openai_chunk):
            call.text(piece)
        return call.openai_stream_reply()
    args = _anthropic_kwargs(model, messages, kwargs)
    try:
        if not stream:
            raw = await llm.messages.with_raw_response.create(**args)
            call.headers = raw.headers
            msg = await _parsed(raw)
        else:
            async with llm.messages.stream(**args) as events:
                call.headers = events.response.headers
                async for piece in _pieces(call, events, _anthropic_event):
                    call.text(piece)
                call.ended()
                msg = await events.get_final_message()
    except call.failures as exc:
        raise call.failed(exc) from exc
    return call.reply(_anthropic_reply, msg)


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
    call = _Call(provider_of(llm), model, on_text)
    if call.provider == "openai":
        try:
            raw = llm.chat.completions.with_raw_response.create(
                **_openai_kwargs(model, messages, stream, kwargs)
            )
            call.headers = raw.headers
            resp = raw.parse()
        except call.failures as exc:
            raise call.failed(exc) from exc
        if not stream:
            return call.reply(_openai_reply, resp)
        for piece in _pieces_sync(call, resp, _openai_chunk):
            call.text(piece)
        return call.openai_stream_reply()
    args = _anthropic_kwargs(model, messages, kwargs)
    try:
        if not stream:
            raw = llm.messages.with_raw_response.create(**args)
            call.headers = raw.headers
            msg = raw.parse()
        else:
            with llm.messages.stream(**args) as events:
                call.headers = events.response.headers
                for piece in _pieces_sync(call, events, _anthropic_event):
                    call.text(piece)
                call.ended()
                msg = events.get_final_message()
    except call.failures as exc:
        raise call.failed(exc) from exc
    return call.reply(_anthropic_reply, msg)


async def list_models(llm: Any) -> list[str]:
    """The model ids the provider offers (``GET /v1/models``, no tokens spent): a cheap
    check that the base URL and key work. A failure raises a
    :class:`~helpers.errors.ProviderError`, typed as a chat would have met it."""
    call = _Call(provider_of(llm), "", None)
    try:
        page = await llm.models.list()
    except call.failures as exc:
        raise call.failed(exc) from exc
    try:
        return [model.id for model in page.data]
    except _SHAPE_ERRORS as exc:
        raise call.failed(exc) from exc
