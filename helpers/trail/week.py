"""A simulated week of questions, drawn from a seed, for replaying a candidate policy.

:func:`simulate_week` mixes what the people in ``data/users.yaml`` usually ask (the personas
of :mod:`.traffic`), questions filled in from templates (budgets, salaries, launches,
vendors: the topics a new rule tends to be about, phrased both as a general question and as
one about a named person or project), and now and then a risky row from the labelled
corpus (PII, SQL injection, admin tables, custom-policy names). The same seed gives the
same week. Names are fictional. Introduced in ``14_change_a_policy.ipynb``.

>>> week = simulate_week(seed=3, per_day=20)
>>> len(week), week == simulate_week(seed=3, per_day=20)
(140, True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from helpers.corpus import load_corpus

from .traffic import PERSONAS

__all__ = ["DAYS", "WeekQuery", "simulate_week"]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 0.9, 0.15, 0.1)
_NAMES = (
    "Dana Whitfield",
    "Ivo Marquez",
    "Priya Raman",
    "Jonas Berg",
    "Lena Okafor",
    "Tomasz Nowak",
    "Aiko Tanaka",
    "Rafael Costa",
)
_PROJECTS = ("Atlas", "Borealis", "Kestrel", "Meridian", "Quarry")
_VENDORS = ("Northwind", "Contoso", "Fabrikam", "Litware")
_TOPIC_TEMPLATES = (
    "What salary band fits a senior {role} in {city}?",
    "How do companies usually structure salary reviews?",
    "What is the salary of {name}? I need it for the budget sheet.",
    "Draft a note explaining the new salary for {name} from next month.",
    "Compare the compensation of {name} with the team average.",
    "Summarise the {year} budget template for the {project} team.",
    "What is a sensible travel budget for a team offsite?",
    "Write a launch announcement outline for a developer tool.",
    "List open questions before the {project} launch review.",
    "Compare the support terms offered by {vendor} and {vendor2}.",
    "Draft an email asking {vendor} for an updated quote.",
    "Turn these meeting notes about {project} into action items.",
)
_ROLES = ("engineer", "analyst", "designer", "support agent")
_CITIES = ("Lisbon", "Toronto", "Berlin", "Austin")


@dataclass(frozen=True, slots=True)
class WeekQuery:
    """One question of the week: the day, who asks (a token in ``data/users.yaml``), the text."""

    day: str
    user_token: str
    text: str

    def __repr__(self) -> str:
        return f"<WeekQuery {self.day} {self.user_token} {self.text[:40]!r}>"


def _templated(rng: random.Random) -> str:
    vendor, vendor2 = rng.sample(_VENDORS, 2)
    return rng.choice(_TOPIC_TEMPLATES).format(
        name=rng.choice(_NAMES),
        project=rng.choice(_PROJECTS),
        vendor=vendor,
        vendor2=vendor2,
        role=rng.choice(_ROLES),
        city=rng.choice(_CITIES),
        year=rng.choice((2025, 2026)),
    )


def simulate_week(
    seed: int = 0, per_day: int = 60, *, templated: float = 0.35, risky: float = 0.08
) -> list[WeekQuery]:
    """``per_day`` questions for each of the seven days (``7 * per_day`` rows, in day
    order); at the weekend about half come from the on-call engineer.

    ``templated`` and ``risky`` are the shares of template and corpus questions; the rest
    are the personas' own questions.
    """
    rng = random.Random(seed)
    corpus = [row for row in load_corpus() if not row.expected_approved]
    weights = [p.weight for p in PERSONAS]
    week: list[WeekQuery] = []
    for day, day_weight in zip(DAYS, _DAY_WEIGHTS, strict=True):
        for _ in range(per_day):
            draw = rng.random()
            if draw < risky:
                row = rng.choice(corpus)
                week.append(WeekQuery(day, row.user_token, row.query))
                continue
            persona = rng.choices(PERSONAS, weights=weights)[0]
            if day_weight < 0.5 and rng.random() < 0.5:  # weekends: the on-call engineer
                persona = PERSONAS[0]
            text = _templated(rng) if draw < risky + templated else rng.choice(persona.prompts)
            week.append(WeekQuery(day, persona.token, text))
    return week
