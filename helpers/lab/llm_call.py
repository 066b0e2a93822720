"""Step 2 of a governed request, timed: one LLM call through the real async SDK.

:func:`call_llm` sends one prompt through ``openai.AsyncOpenAI`` or
``anthropic.AsyncAnthropic`` (whatever :mod:`helpers.stack` built: the real API or the local
stand-in) and returns an :class:`LLMCall` with the time on the client, the time to the first
text token when streaming, the token usage, and, when the provider is the stand-in, the
delay it *simulated* (read from its ``x-standin-simulated-total-ms`` and
``x-standin-time-scale`` headers). Knowing the simulated part lets an analysis separate the
stand-in's deliberate sleep from the real cost of the call. Introduced in
``03_latency_analysis.ipynb``.

>>> call = await call_llm(client, "openai", "gpt-4o-mini", "What is RAG?")   # doctest: +SKIP
>>> call                                                                        # doctest: +SKIP
<LLMCall openai gpt-4o-mini 27.412 ms ttft=13.020 ms simulated=25.300 ms tokens=9+104>
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from helpers.client import TokenUsage
from helpers.settings import DEFAULT_MODELS

__all__ = ["DEFAULT_MODELS", "PROVIDERS", "LLMCall", "call_llm", "simulated_ms"]

PROVIDERS = ("openai", "anthropic")


@dataclass(frozen=True, slots=True)
class LLMCall:
    """One timed LLM call. ``ttft_ms`` is NaN when not streamed; ``simulated_ms`` is NaN
    when the provider is real (no stand-in headers)."""

    provider: str
    model: str
    ms: float
    ttft_ms: float
    simulated_ms: float
    usage: TokenUsage
    text_chars: int

    def __repr__(self) -> str:
        ttft = "" if math.isnan(self.ttft_ms) else f" ttft={self.ttft_ms:.3f} ms"
        sim = "" if math.isnan(self.simulated_ms) else f" simulated={self.simulated_ms:.3f} ms"
        return (
            f"<LLMCall {self.provider} {self.model} {self.ms:.3f} ms{ttft}{sim} "
            f"tokens={self.usage.prompt_tokens}+{self.usage.completion_tokens}>"
        )


def simulated_ms(headers: Mapping[str, str]) -> float:
    """The wall-clock delay a stand-in slept on purpose, in ms; NaN for a real provider.

    The stand-in reports the simulated latency at scale 1 and the scale it applied; the
    product is what it actually waited.
    """
    total = headers.get("x-standin-simulated-total-ms")
    scale = headers.get("x-standin-time-scale")
    if total is None or scale is None:
        return math.nan
    try:
        return float(total) * float(scale)
    except ValueError:
        return math.nan


def _ms_since(t0: int) -> float:
    return (perf_counter_ns() - t0) / 1e6


async def _parse(raw: Any) -> Any:
    """``raw.parse()``: plain in openai's raw responses, a coroutine in anthropic's."""
    parsed = raw.parse()
    return await parsed if inspect.isawaitable(parsed) else parsed


async def _openai(
    client: Any, model: str, prompt: str, max_tokens: int, stream: bool
) -> tuple[float, float, TokenUsage, int, Mapping[str, str]]:
    messages = [{"role": "user", "content": prompt}]
    t0 = perf_counter_ns()
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=messages, max_tokens=max_tokens
        )
        resp = await _parse(raw)
        ms = _ms_since(t0)
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        return ms, math.nan, TokenUsage.from_openai(resp.usage), len(text), raw.headers
    raw = await client.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    ttft, chars, usage = math.nan, 0, None
    async for chunk in await _parse(raw):
        if chunk.choices and chunk.choices[0].delta.content:
            if chars == 0:
                ttft = _ms_since(t0)
            chars += len(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = TokenUsage.from_openai(chunk.usage)
    ms = _ms_since(t0)
    return ms, ttft, usage or TokenUsage(0, 0), chars, raw.headers


async def _anthropic(
    client: Any, model: str, prompt: str, max_tokens: int, stream: bool
) -> tuple[float, float, TokenUsage, int, Mapping[str, str]]:
    messages = [{"role": "user", "content": prompt}]
    t0 = perf_counter_ns()
    if not stream:
        raw = await client.messages.with_raw_response.create(
            model=model, messages=messages, max_tokens=max_tokens
        )
        msg = await _parse(raw)
        ms = _ms_since(t0)
        chars = sum(len(b.text) for b in msg.content if b.type == "text")
        return ms, math.nan, TokenUsage.from_anthropic(msg.usage), chars, raw.headers
    raw = await client.messages.with_raw_response.create(
        model=model, messages=messages, max_tokens=max_tokens, stream=True
    )
    ttft, chars, prompt_tokens, output_tokens = math.nan, 0, 0, 0
    async for event in await _parse(raw):
        if event.type == "content_block_delta" and getattr(event.delta, "text", ""):
            if chars == 0:
                ttft = _ms_since(t0)
            chars += len(event.delta.text)
        elif event.type == "message_start":
            prompt_tokens = event.message.usage.input_tokens or 0
        elif event.type == "message_delta" and event.usage is not None:
            output_tokens = event.usage.output_tokens or 0
    ms = _ms_since(t0)
    return ms, ttft, TokenUsage(prompt_tokens, output_tokens), chars, raw.headers


async def call_llm(
    client: Any,
    provider: str,
    model: str,
    prompt: str,
    *,
    max_tokens: int = 256,
    stream: bool = True,
) -> LLMCall:
    """Send ``prompt`` as one user turn and time the call on the client.

    ``client`` is an ``openai.AsyncOpenAI`` (``provider="openai"``) or an
    ``anthropic.AsyncAnthropic`` (``provider="anthropic"``). Streaming reads every event,
    so ``ms`` ends when the last token has arrived and ``ttft_ms`` marks the first text.
    """
    if provider == "openai":
        ms, ttft, usage, chars, headers = await _openai(client, model, prompt, max_tokens, stream)
    elif provider == "anthropic":
        ms, ttft, usage, chars, headers = await _anthropic(
            client, model, prompt, max_tokens, stream
        )
    else:
        raise ValueError(f"provider must be one of {PROVIDERS}, got {provider!r}")
    return LLMCall(provider, model, ms, ttft, simulated_ms(headers), usage, chars)
