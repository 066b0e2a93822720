"""The one set pass per text answers exactly what each family's own pass answers."""

from __future__ import annotations

import pytest
import re2

from helpers.corpus import CORPUS_DIR, load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.gateway.policies.onepass import candidates
from helpers.gateway.policies.pii import PII_RULES
from helpers.gateway.policies.rbac import ADMIN_PATTERNS, UserDirectory, scan_admin_access
from helpers.gateway.policies.sqli import SQLI_PATTERNS, _compiled
from helpers.gateway.policies.views import VIEW_MARKERS, VIEW_SHAPES

from .conftest import hermetic_settings

TEXTS = [row.query for row in load_corpus() + load_corpus(CORPUS_DIR / "adversarial")] + [
    "",
    "x",
    "SSN 123-45-6789 and 4111 1111 1111 1111, mail bob@example.com",
    "1' OR '1'='1'; DROP TABLE users--",
    "SELECT * FROM information_schema.tables; four one one one two two two",
    "12.34/56\t78-90 DE89-3704-0044",
    "%27 \\u0027 &#39; &amp; /* */ %2 \\q &x",
    "caf\u00e9 \u00fcber FROM users WHERE \ud800",
]


def _each_pattern(text: str) -> tuple[list[int], list[str], list[int], bool]:
    data = text.encode("utf-8", "surrogatepass")
    singles = _compiled().single
    sqli = [i for i in range(len(SQLI_PATTERNS)) if singles[i].search(data) is not None]
    views = [name for name, (marker, regex) in VIEW_MARKERS.items() if re2.search(regex, data)]
    views += [name for name, regex in VIEW_SHAPES.items() if re2.search(regex, data)]
    pii = [i for i, rule in enumerate(PII_RULES) if rule.regex.search(data) is not None]
    admin = any(re2.search(regex, data) for regex in ADMIN_PATTERNS)
    return sqli, views, pii, admin


@pytest.mark.parametrize("text", TEXTS)
def test_the_one_pass_names_every_pattern_that_matches_alone(text: str) -> None:
    found = candidates(text)
    assert (list(found.sqli), list(found.views), list(found.pii), found.admin) == _each_pattern(
        text
    )
    assert found.data == text.encode("utf-8", "surrogatepass")


def test_a_lone_surrogate_does_not_stop_the_admin_and_custom_checks() -> None:
    engine = DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)
    text = "Status of Project Nightjar? SELECT na\ud800me FROM users WHERE id = 5"
    decision = engine.decide(text, "user-123")
    assert decision.policies == ["sys_admin_users_table", "unreleased_code_names"]
    start, end = decision.findings[0].span  # type: ignore[misc]
    assert text[start:end] == "SELECT na\ud800me FROM users WHERE"


def test_a_shared_encoding_gives_the_same_spans_as_the_text() -> None:
    user = UserDirectory.load().lookup("user-123")
    text = "\u00e9t\u00e9: SELECT name FROM users WHERE id = 5"
    data = text.encode("utf-8")
    assert scan_admin_access(text, user, data=data) == scan_admin_access(text, user)
    (finding,) = scan_admin_access(text, user, data=data)
    assert finding.span is not None
    assert text[finding.span[0] : finding.span[1]].startswith("SELECT")
