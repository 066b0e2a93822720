"""What a load run sends: corpus rows turned into prompts, users and providers.

:func:`build_workload` draws ``n`` items from the labelled corpus (reshuffled on every
pass, so each row appears about equally often), picks a provider for each, optionally pads
prompts to chosen lengths with benign filler, and decides who sends each one with
:func:`user_for`. Introduced in ``03_latency_analysis.ipynb``.

>>> items = build_workload(LoadConfig.closed(n=3, seed=1))
>>> len(items), sorted({i.provider for i in items}) <= ["anthropic", "openai"]
(3, True)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from helpers.corpus import CorpusRow, load_corpus
from helpers.settings import DEFAULT_MODELS

from .load_results import LOAD_USER, LoadConfig

__all__ = ["CORPUS_USER", "ROLE_FAMILIES", "WorkItem", "build_workload", "pad_prompt", "user_for"]

#: The corpus's default user (an engineer); rows with any other user are about roles.
CORPUS_USER = "user-123"
#: Families whose verdict depends on who asks (admin access, role/department-scoped rules).
ROLE_FAMILIES = frozenset({"admin", "custom"})
_PAD = (
    "Please keep the answer practical and short, with one example for a platform team "
    "that runs several services in production and reviews its runbooks every quarter. "
)


def user_for(row: CorpusRow, load_user: str = LOAD_USER) -> str:
    """The row's own user where the row is about roles, otherwise ``load_user``.

    A row is about roles when its user is not the corpus default or its family's verdict
    depends on the user (admin access, scoped custom rules). Every other row would be
    decided the same for any non-admin user, so it is sent as ``load_user`` (by default
    ``svc-loadtest``, whose rate limit no run reaches): a 1,000-query run as ``user-123``
    (600 requests per minute) would otherwise be measuring the rate limiter.
    """
    if row.user_token != CORPUS_USER or row.family in ROLE_FAMILIES:
        return row.user_token
    return load_user


def pad_prompt(text: str, length: int) -> str:
    """``text`` followed by benign filler up to ``length`` characters (never shorter)."""
    if len(text) >= length:
        return text
    filler = _PAD * (1 + (length - len(text)) // len(_PAD))
    return (text + " " + filler)[:length]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One query to send: the corpus row, who sends it, the exact prompt, where it goes."""

    row: CorpusRow
    user: str
    prompt: str
    provider: str
    model: str


def build_workload(
    config: LoadConfig,
    rows: Sequence[CorpusRow] | None = None,
    n: int | None = None,
    seed: int | None = None,
) -> list[WorkItem]:
    """``n`` items: the corpus reshuffled on every pass, providers alternating at random."""
    rows = list(load_corpus() if rows is None else rows)
    if config.approved_only:
        rows = [r for r in rows if r.expected_approved]
    if not rows:
        raise ValueError("the workload is empty: no corpus rows match the configuration")
    n = config.n if n is None else n
    rng = random.Random(config.seed if seed is None else seed)
    items: list[WorkItem] = []
    order: list[CorpusRow] = []
    while len(items) < n:
        if not order:
            order = rows[:]
            rng.shuffle(order)
        row = order.pop()
        provider = rng.choice(config.providers)
        prompt = row.query
        if config.pad_to:
            prompt = pad_prompt(prompt, rng.choice(config.pad_to))
        items.append(
            WorkItem(
                row, user_for(row, config.load_user), prompt, provider, DEFAULT_MODELS[provider]
            )
        )
    return items
