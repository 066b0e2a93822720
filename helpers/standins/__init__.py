"""Local stand-ins for the OpenAI and Anthropic HTTP APIs (not the real services).

One Starlette app speaks both wire protocols on loopback, so the unmodified ``openai`` and
``anthropic`` SDKs work against it through ``base_url``, offline and without keys. Answers
come from a small answer bank (``data/answers.yaml``); latency is **simulated** from
per-model profiles (``data/latency_profiles.yaml``) and can be scaled down or off. Faults
(429, 500, 529, slow) can be injected to show retries and timeouts. Every response is
labelled with ``x-standin: true``. Introduced in ``01_gateway_mode_openai.ipynb``.

Run it::

    python -m helpers.standins --port 0 --time-scale 0.01

or from Python, in its own process, with ``helpers.server.start_standins``; then point
``openai.OpenAI(base_url=url + "/v1")`` and ``anthropic.Anthropic(base_url=url)`` at it.

They stand in for another vendor's service, so they import nothing of the gateway, the
client, the lab or the trail; only the shared :mod:`helpers.errors`, :mod:`helpers.settings`
and :mod:`helpers.yamlcheck` (an import-linter contract in ``pyproject.toml``).

Or ask in-process what it would answer, without HTTP:

>>> reply = Simulator().plan("gpt-4o-mini", [Turn("user", "How do we monitor LLM calls?")])
>>> reply.answer.topic, reply.completion_tokens == count_tokens(reply.text)
('monitoring', True)
"""

from __future__ import annotations

from .answers import Answer, AnswerBank, load_answer_bank
from .app import create_standin_app, startup_line
from .faults import FailRule, FaultRates, parse_fail_header
from .latency import (
    LatencyProfile,
    LatencyProfiles,
    SimulatedLatency,
    load_profiles,
    request_rng,
    simulate_latency,
)
from .simulator import PlannedReply, Simulator
from .tokens import Turn, count_prompt_tokens, count_tokens, split_tokens

__all__ = [
    "Answer",
    "AnswerBank",
    "FailRule",
    "FaultRates",
    "LatencyProfile",
    "LatencyProfiles",
    "PlannedReply",
    "SimulatedLatency",
    "Simulator",
    "Turn",
    "count_prompt_tokens",
    "count_tokens",
    "create_standin_app",
    "load_answer_bank",
    "load_profiles",
    "parse_fail_header",
    "request_rng",
    "simulate_latency",
    "split_tokens",
    "startup_line",
]
