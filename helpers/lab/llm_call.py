"""Step 2 of a governed request, timed: one LLM call through the real async SDK.

:func:`call_llm` sends one prompt through :func:`helpers.client.call_llm`, to
``openai.AsyncOpenAI`` or ``anthropic.AsyncAnthropic`` (whatever :mod:`helpers.stack` built:
the real API or the local stand-in), and returns an :class:`LLMCall` with the time on the
client, the time to the first text token when streaming, the token usage, and, when the
provider is the stand-in, the delay it *simulated* (read from its
``x-standin-simulated-total-ms`` and ``x-standin-time-scale`` headers). Knowing the
simulated part lets an analysis separate the stand-in's deliberate sleep from the real cost
of the call. Introduced in ``03_latency_analysis.ipynb``.

>>> call = await call_llm(client, "openai", "gpt-4o-mini", "What is RAG?")   # doctest: +SKIP
>>> call                                                                        # doctest: +SKIP
<LLMCall openai gpt-4o-mini 27.412 ms ttft=13.020 ms simulated=25.300 ms tokens=9+104>
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from helpers.client import TokenUsage
from helpers.client import call_llm as sdk_call

__all__ = ["PROVIDERS", "LLMCall", "call_llm", "simulated_ms"]

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
    A failed call raises a :class:`~helpers.errors.ProviderError`.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {PROVIDERS}, got {provider!r}")
    turn = [{"role": "user", "content": prompt}]
    reply = await sdk_call(client, model, turn, stream=stream, max_tokens=max_tokens)
    ttft = math.nan if reply.ttft_ms is None else reply.ttft_ms
    return LLMCall(
        provider,
        model,
        reply.latency_ms,
        ttft,
        simulated_ms(reply.headers),
        reply.usage,
        len(reply.text),
    )
