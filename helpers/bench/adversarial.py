"""The adversarial section of the gateway benchmark: obfuscated attacks and their look-alikes.

Scores the decision engine (embedded defaults) on the adversarial corpus
(``data/corpus/adversarial/``), kept apart from the regression corpus, and reports accuracy
per category with every miss listed; then times the inputs built to hurt the canonical views:
floods of separators, format characters, fullwidth digits and escapes, and payloads encoded
once, twice or inside JSON behind 1 MiB of prose or of escapes (each must also be blocked:
``payload_floods_blocked``). Introduced with
``07_obfuscation_and_redaction.ipynb``.
"""

from __future__ import annotations

import time
from typing import Any

from helpers.corpus import CORPUS_DIR, load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.trail.quality import quality_report, run_corpus

__all__ = ["ADVERSARIAL_DIR", "PAYLOAD_FLOODS", "adversarial_inputs", "adversarial_section"]

ADVERSARIAL_DIR = CORPUS_DIR / "adversarial"
_MIB = 1 << 20
_PROSE = (
    "Our team reviews how we deploy, monitor and roll back models across regions, and "
    "wants a checklist for evaluation, canary releases and incident response. "
)
_PADDING = (_PROSE * (_MIB // len(_PROSE) + 1))[:_MIB]

# fmt: off
# A table: each flood's name above its payload, which the formatter would split mid-value.
#: Floods that carry an SQL-injection payload: each must be blocked, not only fast. The
#: payload is ``id=1' OR '1'='1``, encoded as the name says, after 1 MiB of prose or escapes.
PAYLOAD_FLOODS = {
    "1 MiB prose + payload percent-encoded": _PADDING + " id=1%27%20OR%20%271%27%3D%271",
    "1 MiB prose + payload percent-encoded twice":
        _PADDING + " id=1%2527%2520OR%2520%25271%2527%253D%25271",
    "1 MiB prose + payload JSON-escaped percent":
        _PADDING + ' {"q": "id=1\\u002527 OR \\u0025271\\u002527=\\u0025271"}',
    "1 MiB of %20 + payload percent-encoded":
        ("%20" * (_MIB // 3)) + "id=1%27%20OR%20%271%27%3D%271",
    "1 MiB of \\u0020 + payload JSON-escaped":
        ("\\u0020" * (_MIB // 6)) + "id=1\\u0027 OR \\u00271\\u0027=\\u00271",
    "1 MiB of &#32; + payload HTML-escaped":
        ("&#32;" * (_MIB // 5)) + "id=1&#39; OR &#39;1&#39;=&#39;1",
}
# fmt: on


def adversarial_inputs() -> dict[str, str]:
    """About 1 MiB each (counted in characters): the floods the views must survive."""
    return {
        "1 MiB zero-width characters between digits": ("4\u200b" * (_MIB // 2))[:_MIB],
        "1 MiB format characters only": "\u2060\ufeff\u200d" * (_MIB // 3),
        "1 MiB mixed separators between digits": ("12.3/4\t5-" * (_MIB // 10))[:_MIB],
        "1 MiB fullwidth digits and dashes": ("\uff14\uff11\uff11\uff11\u2013" * (_MIB // 5)),
        "1 MiB non-breaking spaces and digits": ("4111\u00a0" * (_MIB // 5)),
        "1 MiB percent escapes": ("%27%20OR%20" * (_MIB // 11))[:_MIB],
        "1 MiB JSON escapes": ("\\u0027 or " * (_MIB // 10))[:_MIB],
        "1 MiB HTML entities": ("&#39; OR " * (_MIB // 9))[:_MIB],
        "1 MiB spelled digits": ("four one one one " * (_MIB // 17))[:_MIB],
        "1 MiB of '/**/' between keywords": ("UN/**/ION " * (_MIB // 10))[:_MIB],
        "1 MiB of dotted SSN-shaped numbers, area 000": " ".join(
            f"000.{i % 98 + 1:02d}.{i % 9998 + 1:04d}" for i in range(95_000)
        )[:_MIB],
        **PAYLOAD_FLOODS,
    }


def adversarial_section(engine: DecisionEngine) -> dict[str, Any]:
    """Per-category accuracy on the adversarial corpus and the worst of 3 times per flood."""
    rows = load_corpus(ADVERSARIAL_DIR)
    verdicts = quality_report(run_corpus(engine, rows))
    misses = [r for r in verdicts.results if not r.correct]
    missed = {r.row.id for r in misses}
    categories: dict[str, dict[str, Any]] = {}
    for row in rows:
        c = categories.setdefault(
            row.category, {"rows": 0, "correct": 0, "threat": not row.expected_approved}
        )
        c["rows"] += 1
        c["correct"] += row.id not in missed
    threats = [r for r in rows if not r.expected_approved]
    worst: dict[str, float] = {}
    blocked: dict[str, bool] = {}
    for name, text in adversarial_inputs().items():
        times = []
        for _ in range(3):
            t0 = time.perf_counter_ns()
            decision = engine.decide(text, "user-123")
            times.append((time.perf_counter_ns() - t0) / 1e6)
        worst[name] = max(times)
        if name in PAYLOAD_FLOODS:
            blocked[name] = not decision.approved
    return {
        "rows": verdicts.total,
        "correct": verdicts.correct,
        "threat_rows": len(threats),
        "benign_rows": verdicts.total - len(threats),
        "by_category": dict(sorted(categories.items())),
        "misses": [repr(r) for r in misses],
        "flood_ms_worst_of_3": worst,
        "payload_floods_blocked": blocked,
    }
