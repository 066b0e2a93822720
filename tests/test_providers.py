"""helpers.client.providers: one LLM call through the real SDKs, and how it fails.

Over real sockets against the stand-ins behind a :class:`FaultSwitch`. The whole fault
matrix (each fault through ``governed_completion`` and the service) is in
``test_provider_faults.py``; here: what ``call_llm`` itself promises about failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from helpers.client import call_llm, call_llm_sync, list_models
from helpers.errors import ProviderBadReply, ProviderRejected

from .provider_fakes import FaultyProvider

ASK = [{"role": "user", "content": "How do we monitor LLM calls in production?"}]
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}


@pytest.fixture(scope="module")
def provider() -> Iterator[FaultyProvider]:
    faulty = FaultyProvider()
    yield faulty
    faulty.close()


@pytest.fixture
def healed(provider: FaultyProvider) -> Iterator[FaultyProvider]:
    yield provider
    provider.heal()


def sync_llm(provider: str, url: str, base: str = "") -> Any:
    if provider == "openai":
        return openai.OpenAI(base_url=url + (base or "/v1"), api_key="k", max_retries=0)
    return anthropic.Anthropic(base_url=url + base, api_key="k", max_retries=0)


def async_llm(provider: str, url: str, base: str = "") -> Any:
    if provider == "openai":
        return openai.AsyncOpenAI(base_url=url + (base or "/v1"), api_key="k", max_retries=0)
    return anthropic.AsyncAnthropic(base_url=url + base, api_key="k", max_retries=0)


@pytest.mark.parametrize("provider_name", ["openai", "anthropic"])
def test_an_error_in_on_text_is_the_callers_own(healed: FaultyProvider, provider_name: str) -> None:
    """``on_text`` is application code: what it raises passes through untranslated."""

    def refuse(piece: str) -> None:
        raise KeyError("the caller's own bug")

    with sync_llm(provider_name, healed.url) as llm, pytest.raises(KeyError, match="own bug"):
        call_llm_sync(llm, MODELS[provider_name], ASK, stream=True, on_text=refuse)


@pytest.mark.parametrize("provider_name", ["openai", "anthropic"])
@pytest.mark.parametrize("blocking", [False, True])
def test_a_stream_that_ends_before_the_model_finished_is_a_bad_reply(
    healed: FaultyProvider, provider_name: str, blocking: bool
) -> None:
    seen: list[str] = []
    healed.fail("short")
    with pytest.raises(ProviderBadReply, match="before the model said it had finished") as caught:
        if blocking:
            with sync_llm(provider_name, healed.url) as llm:
                call_llm_sync(llm, MODELS[provider_name], ASK, stream=True, on_text=seen.append)
        else:

            async def run() -> None:
                async with async_llm(provider_name, healed.url) as llm:
                    await call_llm(
                        llm, MODELS[provider_name], ASK, stream=True, on_text=seen.append
                    )

            asyncio.run(run())
    error = caught.value
    assert seen and f"after {len(seen)} streamed pieces" in error.message
    assert error.latency_ms > 0 and error.completion_tokens <= 1
    # Anthropic reports the prompt's tokens as the stream starts; OpenAI only at its end.
    assert (error.prompt_tokens > 0) == (provider_name == "anthropic")


@pytest.mark.parametrize(
    ("fault", "fragment"),
    [("malformed", "not JSON"), ("html", "not a chat completion")],
)
def test_a_reply_that_is_not_a_completion_is_a_bad_reply(
    healed: FaultyProvider, fault: str, fragment: str
) -> None:
    healed.fail(fault)
    with sync_llm("openai", healed.url) as llm, pytest.raises(ProviderBadReply, match=fragment):
        call_llm_sync(llm, MODELS["openai"], ASK)


@pytest.mark.parametrize("provider_name", ["openai", "anthropic"])
def test_list_models_checks_the_base_url_without_spending_tokens(
    healed: FaultyProvider, provider_name: str
) -> None:
    async def run(base: str) -> list[str]:
        async with async_llm(provider_name, healed.url, base) as llm:
            return await list_models(llm)

    models = asyncio.run(run(""))
    assert models and all(
        m.startswith("gpt" if provider_name == "openai" else "claude") for m in models
    )
    with pytest.raises(ProviderRejected, match="check the base URL") as caught:
        asyncio.run(run("/v1/v1" if provider_name == "openai" else "/v1"))
    assert caught.value.status == 404


@pytest.mark.parametrize("provider_name", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_reply_carries_the_response_headers(
    healed: FaultyProvider, provider_name: str, stream: bool
) -> None:
    """The stand-in's simulated latency is read from the headers of the very call."""
    with sync_llm(provider_name, healed.url) as llm:
        reply = call_llm_sync(llm, MODELS[provider_name], ASK, stream=stream)
    assert "x-standin-simulated-total-ms" in reply.headers
    assert reply.text and reply.usage.completion_tokens > 0
    assert (reply.ttft_ms is not None) == stream
