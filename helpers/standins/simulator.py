"""What a stand-in will answer, computed in-process with no HTTP.

:class:`Simulator` is the core both wire protocols share: given a model, the chat turns and
the limits, it returns a :class:`PlannedReply` with the text, its tokens, the usage counts
and the simulated latency. The HTTP handlers only translate requests into a call to
:meth:`Simulator.plan` and the plan into the provider's JSON or event stream, so code that
wants to know "what would the stand-in say, and how long would it take?" can ask directly.
Introduced in ``01_gateway_mode_openai.ipynb``.

>>> reply = Simulator().plan("gpt-4o-mini", [Turn("user", "What is RAG?")], max_tokens=5)
>>> reply.finish, reply.completion_tokens, reply.text == "".join(reply.tokens)
('length', 5, True)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .answers import Answer, AnswerBank, load_answer_bank
from .faults import SLOW_FACTOR
from .latency import LatencyProfiles, SimulatedLatency, load_profiles, request_rng, simulate_latency
from .tokens import Turn, count_prompt_tokens, split_tokens

__all__ = ["PlannedReply", "Simulator", "last_user_text"]


@dataclass(frozen=True)
class PlannedReply:
    """One reply as the stand-in will send it.

    ``finish`` is ``"stop"`` (natural end), ``"length"`` (cut at ``max_tokens``) or
    ``"stop_sequence"`` (cut before ``stop_sequence``); each API maps it to its own words.
    """

    model: str
    answer: Answer
    text: str
    tokens: tuple[str, ...]
    prompt_tokens: int
    finish: str
    stop_sequence: str | None
    latency: SimulatedLatency

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __repr__(self) -> str:
        return (
            f"<PlannedReply {self.model} topic={self.answer.topic!r} "
            f"tokens={self.prompt_tokens}+{self.completion_tokens} finish={self.finish!r} "
            f"ttft={self.latency.ttft_s * 1000:.0f}ms total={self.latency.total_s * 1000:.0f}ms "
            f"(simulated)>"
        )


def last_user_text(turns: Sequence[Turn]) -> str:
    """Text of the last user turn, or ``""`` when there is none."""
    for turn in reversed(turns):
        if turn.role == "user":
            return turn.text
    return ""


class Simulator:
    """Answer bank + latency profiles + seed: everything that decides a reply.

    >>> sim = Simulator(seed=7, time_scale=0)
    >>> sim.plan("claude-3-5-haiku", [Turn("user", "hi")]).latency.wall_total_s
    0.0
    """

    def __init__(
        self,
        *,
        answers: AnswerBank | str | Path | None = None,
        profiles: LatencyProfiles | str | Path | None = None,
        seed: int = 0,
        time_scale: float = 1.0,
    ) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, got {time_scale}")
        self.answers = answers if isinstance(answers, AnswerBank) else load_answer_bank(answers)
        self.profiles = (
            profiles if isinstance(profiles, LatencyProfiles) else load_profiles(profiles)
        )
        self.seed = seed
        self.time_scale = time_scale

    def plan(
        self,
        model: str,
        turns: Sequence[Turn],
        *,
        max_tokens: int | None = None,
        stop: Sequence[str] = (),
        request_seed: int | None = None,
        rng: random.Random | None = None,
        slow: bool = False,
    ) -> PlannedReply:
        """Plan one reply. The text depends only on (model, last user text, seeds);
        ``rng`` drives the latency draw (default: seeded from the same inputs)."""
        question = last_user_text(turns)
        seed_key = self.seed if request_seed is None else f"{self.seed}:{request_seed}"
        answer = self.answers.choose(model, question, seed_key)
        text, finish, stop_sequence = _cut_at_stop(answer.text, stop)
        tokens = split_tokens(text)
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens, finish, stop_sequence = tokens[:max_tokens], "length", None
        if rng is None:
            rng = request_rng(self.seed, model, question, "latency")
        latency = simulate_latency(
            model, len(tokens), rng, profiles=self.profiles, time_scale=self.time_scale
        )
        if slow:
            latency = latency.slowed_by(SLOW_FACTOR)
        return PlannedReply(
            model=model,
            answer=answer,
            text="".join(tokens),
            tokens=tuple(tokens),
            prompt_tokens=count_prompt_tokens(turns),
            finish=finish,
            stop_sequence=stop_sequence,
            latency=latency,
        )

    def __repr__(self) -> str:
        return f"<Simulator seed={self.seed} time_scale={self.time_scale:g}>"


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, str, str | None]:
    """Cut ``text`` before the earliest stop sequence, as the real APIs do."""
    best: tuple[int, str] | None = None
    for seq in stop:
        at = text.find(seq) if seq else -1
        if at >= 0 and (best is None or at < best[0]):
            best = (at, seq)
    if best is None:
        return text, "stop", None
    return text[: best[0]], "stop_sequence", best[1]
