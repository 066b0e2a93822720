"""The stand-ins' answer bank: short canned answers chosen deterministically by topic.

The provider stand-ins are not language models. For each request they find the topic
whose keywords best match the last user message (``data/answers.yaml``) and pick one of
its answers by a SHA-256 hash of ``(model, last user message, seed)``, so the same
request always gets the same text and different models or seeds may get different ones.
A message that starts with "Repeat after me:" gets the rest of itself back, as a real model
would give it: that shows what text reached the model (a redacted prompt, notebook 07).
Introduced in ``01_gateway_mode_openai.ipynb``.

>>> bank = load_answer_bank()
>>> bank.choose("gpt-4o-mini", "How should we deploy a model to production?", 0).topic
'deployment'
>>> bank.choose("gpt-4o-mini", "Repeat after me: [SSN_1] is on file.").text
'[SSN_1] is on file.'
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from helpers.errors import ConfigError
from helpers.settings import DATA_DIR
from helpers.yamlcheck import load_yaml

__all__ = ["DEFAULT_ANSWERS_PATH", "Answer", "AnswerBank", "Topic", "load_answer_bank"]

DEFAULT_ANSWERS_PATH = DATA_DIR / "answers.yaml"

_NON_WORD = re.compile(r"[^0-9a-z]+")
_REPEAT = re.compile(r"\s*repeat after me\s*:\s*(\S.*)", re.IGNORECASE | re.DOTALL)


def _normalise(text: str) -> str:
    """Lower-case words separated by single spaces, padded so ``" kw"`` finds word starts."""
    return " " + _NON_WORD.sub(" ", text.lower()).strip() + " "


@dataclass(frozen=True)
class Topic:
    """One topic of the bank: its keywords and the answers it can give."""

    id: str
    keywords: tuple[str, ...]
    answers: tuple[str, ...]

    def score(self, normalised_question: str) -> int:
        """How many distinct keywords start a word (or phrase) of the question."""
        return sum(1 for kw in self.keywords if " " + kw in normalised_question)

    def __repr__(self) -> str:
        return f"<Topic {self.id} keywords={len(self.keywords)} answers={len(self.answers)}>"


@dataclass(frozen=True)
class Answer:
    """The bank's choice for one request."""

    topic: str
    index: int
    text: str

    def __repr__(self) -> str:
        preview = self.text if len(self.text) <= 50 else self.text[:47] + "..."
        return f"Answer(topic={self.topic!r}, index={self.index}, text={preview!r})"


@dataclass(frozen=True)
class AnswerBank:
    """Topics in file order plus the id of the fallback topic."""

    topics: tuple[Topic, ...]
    fallback: str

    def topic_for(self, question: str) -> Topic:
        """The best-scoring topic; ties go to the earlier topic, no match to the fallback."""
        normalised = _normalise(question)
        best, best_score = self._by_id(self.fallback), 0
        for topic in self.topics:
            score = topic.score(normalised)
            if score > best_score:
                best, best_score = topic, score
        return best

    def choose(self, model: str, question: str, seed: object = 0) -> Answer:
        """The answer for ``question`` asked of ``model``; pure function of its arguments."""
        if (repeat := _REPEAT.fullmatch(question)) is not None:
            return Answer("repeat", 0, repeat.group(1).strip())
        topic = self.topic_for(question)
        key = f"{model}\x1f{question}\x1f{seed}".encode()
        index = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % len(topic.answers)
        return Answer(topic.id, index, topic.answers[index])

    def _by_id(self, topic_id: str) -> Topic:
        for topic in self.topics:
            if topic.id == topic_id:
                return topic
        raise KeyError(topic_id)

    @classmethod
    def from_yaml(cls, path: str | Path) -> AnswerBank:
        """Load and validate a bank; problems raise :class:`ConfigError` naming the file."""
        path = Path(path)
        raw = load_yaml(path)  # a mapping, duplicate keys refused, errors name the file
        if not isinstance(raw, dict) or not isinstance(raw.get("topics"), list):
            raise ConfigError(f"{path}: expected a mapping with 'fallback' and a 'topics' list")
        topics = tuple(_topic(path, i, entry) for i, entry in enumerate(raw["topics"]))
        ids = [t.id for t in topics]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{path}: topic ids must be unique, got {ids}")
        fallback = raw.get("fallback")
        if fallback not in ids:
            raise ConfigError(f"{path}: fallback {fallback!r} is not one of the topic ids {ids}")
        return cls(topics, fallback)

    def __repr__(self) -> str:
        return f"<AnswerBank topics={len(self.topics)} fallback={self.fallback!r}>"


def _topic(path: Path, position: int, entry: object) -> Topic:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise ConfigError(f"{path}: topic #{position} needs a string 'id'")
    topic_id = entry["id"]
    keywords = entry.get("keywords") or []
    answers = entry.get("answers") or []
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        raise ConfigError(f"{path}: topic {topic_id!r}: 'keywords' must be non-empty strings")
    if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise ConfigError(f"{path}: topic {topic_id!r}: 'answers' must be a non-empty list")
    return Topic(
        id=topic_id,
        # Keywords are normalised like questions so "few-shot" matches "few shot".
        keywords=tuple(_normalise(k).strip() for k in keywords),
        answers=tuple(" ".join(a.split()) for a in answers),
    )


@lru_cache(maxsize=8)
def _cached(path: Path) -> AnswerBank:
    return AnswerBank.from_yaml(path)


def load_answer_bank(path: str | Path | None = None) -> AnswerBank:
    """The bank at ``path`` (default ``data/answers.yaml``), cached per path."""
    return _cached(Path(path or DEFAULT_ANSWERS_PATH).resolve())
