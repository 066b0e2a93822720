"""The SQL-injection scanner: pattern table, payloads, plain-English traps, adversarial input."""

from __future__ import annotations

import csv
import re

import pytest
import re2

from helpers.gateway.policies import sqli
from helpers.gateway.policies.sqli import (
    SQLI_CATEGORIES,
    SQLI_PATTERNS,
    SqliMatch,
    explain_sqli,
    scan_sqli,
)
from helpers.settings import DATA_DIR

UNION = "sqli_union_based"
BOOL = "sqli_boolean_blind"
TIME = "sqli_time_based"
ERROR = "sqli_error_based"
STACKED = "sqli_stacked_queries"
COMMENT = "sqli_comment_injection"
GENERIC = "sqli_generic"
DANGER = "sqli_dangerous_query"


def ids(text: str) -> list[str]:
    return [f.policy_id for f in scan_sqli(text)]


# --- the pattern table ------------------------------------------------------------------------


def test_table_size_and_categories() -> None:
    assert len(SQLI_PATTERNS) >= 37
    assert SQLI_CATEGORIES == (
        "union_based", "boolean_blind", "time_based", "error_based",
        "stacked_queries", "comment_injection", "generic", "dangerous_query",
    )  # fmt: skip
    assert {p.category for p in SQLI_PATTERNS} == set(SQLI_CATEGORIES)
    # The table is grouped in canonical category order, so a notebook can print it as is.
    order = [SQLI_CATEGORIES.index(p.category) for p in SQLI_PATTERNS]
    assert order == sorted(order)
    names = [p.name for p in SQLI_PATTERNS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("pattern", SQLI_PATTERNS, ids=lambda p: p.name)
def test_pattern_compiles_and_catches_its_example(pattern: sqli.SqliPattern) -> None:
    re2.compile("(?i)" + pattern.regex)  # as written
    re2.compile("(?i)" + sqli.widen_spaces(pattern.regex))  # as scanned
    assert pattern.description and pattern.example
    assert pattern.policy_id == f"sqli_{pattern.category}"
    assert pattern.name in [m.pattern.name for m in explain_sqli(pattern.example)]
    assert pattern.policy_id in ids(pattern.example)


def test_expand_rejects_other_whitespace_classes() -> None:
    assert sqli.widen_spaces(r"a\s+b\s*c").count("/\\*") == 4
    with pytest.raises(ValueError, match="only as"):
        sqli.widen_spaces(r"a\s?b")


def test_reprs() -> None:
    assert repr(SQLI_PATTERNS[0]) == "<SqliPattern union_after_quote union_based>"
    (first, *_) = explain_sqli("1'; DROP TABLE orders")
    assert isinstance(first, SqliMatch)
    assert repr(first) == "<SqliMatch stacked_drop (2, 14)>"


# --- payloads: every category, with case, whitespace and comment variants ----------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # union_based
        ("Look up order 5' UNION SELECT card_number FROM payments--", [UNION, COMMENT]),
        ("5' UnIoN SeLeCt sku FROM inventory", [UNION]),
        ("1'\n\tUNION\n\tSELECT name FROM t", [UNION]),
        ("5'/**/UNION/**/ALL/**/SELECT/**/NULL,NULL", [UNION, COMMENT]),
        ("id=7 union all select 1,2,3", [UNION]),
        ('x") UNION SELECT a FROM b', [UNION]),
        ("q=1 union /* spacer */ select 2", [UNION]),
        ("try UNION SELECT NULL", [UNION]),
        ("append union select group_concat(sku) from inventory", [UNION]),
        ("article 3' ORDER BY 7-- then show it", [UNION]),
        ("1' UNION/*!50000SELECT*/ 1,2", [UNION, COMMENT]),
        # boolean_blind
        ("Username: admin' OR '1'='1", [BOOL]),
        ("' oR 'a'='a", [BOOL]),
        ("x' or ''='", [BOOL]),
        ('user" or ""="', [BOOL]),
        ("admin'/**/or/**/'1'='1", [BOOL, COMMENT]),
        ("'\tOR\t1=1 and more", [BOOL]),
        ("Filter where id = 5 or 1=1", [BOOL]),
        ("id=10 and 1=2", [BOOL]),
        ("1' AND '1'='2", [BOOL]),
        ("q=' || '1'='1", [BOOL]),
        ("page=2 AND LENGTH(database())>3", [BOOL]),
        ("5 AND ASCII(SUBSTRING((SELECT code FROM vouchers),1,1))>64", [BOOL]),
        ("name' or true--", [BOOL]),
        # time_based
        ("1 AND SLEEP(5)", [TIME]),
        ("1) oR sLeEp(5)#", [TIME, COMMENT]),
        ("x' AND sleep( 2.5 )", [TIME]),
        ("IF(1=1,SLEEP(5),0)", [TIME]),
        ("';WAITFOR DELAY '00:00:05'--", [TIME, COMMENT]),
        ("1;SELECT PG_SLEEP(5)", [TIME]),
        ("select benchmark(100000, sha1('a'))", [TIME]),
        ("BEGIN DBMS_LOCK.SLEEP(5); END;", [TIME]),
        ("1 AND dbms_pipe.receive_message(('a'),5)=1", [TIME]),
        # error_based
        ("AND 1=CONVERT(int,(SELECT TOP 1 name FROM products))", [ERROR]),
        ("and extractvalue(rand(),concat(0x3a,version()))", [ERROR, GENERIC]),
        ("or updatexml(null,(select version()),null)", [ERROR]),
        ("' AND CAST(version() AS int)", [ERROR]),
        ("1 and (select version())::int=1", [ERROR]),
        ("1 AND CAST(@@version AS signed)", [ERROR, GENERIC]),
        ("' AND (SELECT 1 FROM t GROUP BY FLOOR(RAND(0)*2))", [ERROR]),
        ("1 AND EXP(~(SELECT * FROM (SELECT user())a))", [ERROR]),
        # stacked_queries (critical)
        ("1;DROP TABLE orders", [STACKED, DANGER]),
        ("x;\n  DELETE FROM logs WHERE id > 3", [STACKED]),
        ("5 ; insert into t values(1)", [STACKED]),
        ("a'; update orders set total=0", [STACKED]),
        ("'; exec('sel'+'ect 1')", [STACKED]),
        ("1; shutdown", [STACKED]),
        ("'); SELECT name FROM products", [STACKED]),
        ("1; CREATE TABLE pwn(x int)", [STACKED]),
        # comment_injection
        ("admin'--", [COMMENT]),
        ("admin' --", [COMMENT]),
        ("admin'#", [COMMENT]),
        ('admin"#', [COMMENT]),
        ("x') --+", [COMMENT]),
        ("name')-- and more text", [COMMENT]),
        ("user';-- then more", [COMMENT]),
        ("SELECT/**/name FROM t", [COMMENT]),
        ("1 AND/**/1=1", [COMMENT]),
        ("7 /*!50000UNION*/ /*!50000SELECT*/ 1,2", [UNION, COMMENT]),
        ("Open invoice?id=1 OR 1=1--", [BOOL, COMMENT]),
        # generic
        ("'; EXEC xp_cmdshell 'whoami'", [STACKED, GENERIC]),
        ("SELECT load_file(0x2f6574632f706173737764)", [GENERIC]),
        ("select 1 into dumpfile '/tmp/x'", [GENERIC]),
        ("WHERE name = char(0x61,0x64)", [GENERIC]),
        ("' AND 1=(SELECT CHAR(65)+CHAR(66))", [GENERIC]),
        ("SELECT * FROM t WHERE id IN (0xdeadbeef01)", [GENERIC]),
        ("||@@version||", [GENERIC]),
        ("SELECT pg_read_file('/etc/passwd')", [GENERIC]),
        ("select sql from main.sqlite_master", [GENERIC]),
        ("COPY t TO PROGRAM 'curl x'", [GENERIC]),
        # dangerous_query (critical), flagged wherever they appear
        ("drop   table orders", [DANGER]),
        ("DROP TABLE IF EXISTS orders", [DANGER]),
        ("drop schema public cascade", [DANGER]),
        ("truncate\ttable logs", [DANGER]),
        ("ALTER TABLE payments DROP COLUMN amount", [DANGER]),
        ("delete from orders", [DANGER]),
        ("DELETE FROM orders;", [DANGER]),
        ("DELETE FROM t WHERE 1=1", [DANGER]),
        ("GRANT SELECT, INSERT ON db.* TO 'bob'@'localhost'", [DANGER]),
        ("REVOKE ALL PRIVILEGES ON *.* FROM 'eve'@'%'", [DANGER]),
        ("CREATE LOGIN eve WITH PASSWORD = 'x'", [DANGER]),
        ("CREATE ROLE ops2 SUPERUSER;", [DANGER]),
        ("grant dba to scott", [DANGER]),
        ("create user bob password 'x'", [DANGER]),
    ],
)
def test_payloads(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


# --- plain English and questions about SQL are approved ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # plain English that borrows SQL words
        "please grant me access to the wiki",
        "drop me a line",
        "select the best option for me",
        "union members voted",
        "we should truncate the essay",
        "sleep for 8 hours",
        "delete the old draft",
        "I will alter the table layout in the doc",
        "or 1 or 2 more days",
        "Tom's and Jerry's",
        "wait -- really?",
        "1=1 is true in math",
        "Can you select union reps for the panel?",
        "Help me create user stories with clear acceptance criteria",
        "Please create user accounts for the interns",
        "Let's grant all students extra time",
        "Can you grant admin rights to Sam?",
        "I'd pick 'A' or 'B' = best choice",
        "He said 'wait' -- and then left",
        "She said 'yes' or 'no' -- nothing else",
        "Meet at 5 or 6",
        "I have 2 and 3 = 5 apples",
        "Thanks; drop me a line",
        "Update the doc; update the wiki set later",
        "Sleep (8 hours) is enough",
        "Rate it 10/10 -- great",
        "Our hashtag is #launch and the code name is 'orion'",
        "Copy the file from program files",
        # questions about SQL and SQL injection, in words
        "What is a UNION-based SQL injection?",
        "How does boolean blind SQL injection work?",
        "Explain time-based blind SQLi in simple terms",
        "How do I use UNION SELECT in Postgres?",
        "Explain this query: SELECT name FROM a UNION SELECT name FROM b",
        "What does xp_cmdshell do and should I disable it?",
        "What does INTO OUTFILE do in MySQL?",
        "Should I use SELECT @@version to check the server?",
        "What does pg_sleep() do?",
        "How do I write DELETE FROM with a WHERE clause?",
        "Use CAST(price AS int) in SQL Server",
        "SELECT CONVERT(int, price) FROM products",
        "SELECT FLOOR(RAND()*2)",
        "Count sessions: SELECT count(*)::int FROM sessions",
        "CONCAT(first_name, ' ', last_name)",
        # code questions
        "Why does Python time.sleep(5) block my event loop?",
        "await asyncio.sleep(1) inside a loop",
        "int main(){ for(;;){ work(); sleep(1); } }",
        "In C, what does /* comment */ do? int x = 1; /* counter */",
        "Glob src/**/test_*.py in pytest",
        'print("hi")# note',
        "x = 0xFFAA00 for the colour",
        "chr(97) + chr(98) in Python",
        "",
    ],
)
def test_plain_english_and_questions_are_clean(text: str) -> None:
    assert scan_sqli(text) == []
    assert explain_sqli(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A question that quotes a real payload carries the payload: blocked.
        ("What does ' OR '1'='1 do in a login form?", [BOOL]),
        ("What is ' UNION SELECT password FROM staff-- used for?", [UNION]),
        # Asking for a destructive statement is blocked, as AxonFlow does.
        ("Write a SQL query: DROP TABLE users", [DANGER]),
        ("Explain DELETE FROM orders", [DANGER]),
        # Two statements where the first ends in a string literal look stacked; blocked.
        ("SELECT a FROM t WHERE b = 'c'; SELECT d FROM e", [STACKED]),
        # A migration script with a second UPDATE is a stacked query; blocked.
        ("UPDATE t SET a=1; UPDATE t SET b=2", [STACKED]),
    ],
)
def test_ambiguous_cases_documented(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


# --- the findings themselves --------------------------------------------------------------------


def test_finding_fields() -> None:
    text = "Track 12'; DROP TABLE orders; SELECT SLEEP(5)-- x' OR '1'='1"
    findings = scan_sqli(text)
    assert [f.policy_id for f in findings] == [BOOL, TIME, STACKED, DANGER]
    for f in findings:
        assert (f.family, f.action, f.blocks) == ("sqli", "block", True)
        assert f.severity == ("critical" if f.policy_id in (STACKED, DANGER) else "high")
        assert f.reason.startswith("Query contains ") and f.reason.endswith(").")
        assert "orders" not in f.reason and "SLEEP(5)" not in f.reason  # never the query text
    by_id = {f.policy_id: f for f in findings}
    assert "stacked-query" in by_id[STACKED].reason
    assert "(stacked_drop)" in by_id[STACKED].reason
    start, end = by_id[STACKED].span
    assert text[start:end] == "; DROP TABLE"
    start, end = by_id[DANGER].span
    assert text[start:end] == "DROP TABLE"


def test_one_finding_per_category_with_the_earliest_span() -> None:
    text = "a' OR 1=1 and later b' OR '2'='2"
    (finding,) = scan_sqli(text)
    assert finding.policy_id == BOOL
    assert finding.span[0] == 1  # the first payload, not the second
    assert "(quote_or_numeric)" in finding.reason
    matches = explain_sqli(text)
    assert [(m.pattern.name, m.span[0]) for m in matches] == [
        ("quoted_or_tautology", 21), ("quote_or_numeric", 1), ("bare_or_tautology", 3),
    ]  # fmt: skip


def test_spans_are_str_offsets_for_non_ascii_text() -> None:
    text = "Déjà vu ☃ 🙂: look up 5' UNION SELECT pw FROM t--"
    spans = {f.policy_id: f.span for f in scan_sqli(text)}
    assert text[slice(*spans[UNION])] == "' UNION SELECT"
    assert text[slice(*spans[COMMENT])] == "FROM t--"
    assert ids("\ud800 x' OR 1=1--") == [BOOL, COMMENT]  # a lone surrogate does not raise


# --- adversarial input is still decided ---------------------------------------------------------

_TAIL = " and then x' OR '1'='1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'" * 1_000_000, []),
        ("union " * 150_000, []),
        ("/*" * 500_000, []),
        ("/**/" * 250_000, []),
        ("a'--" * 250_000, [COMMENT]),
        ("sleep(" * 160_000, []),
        ("union select " * 80_000, []),
        ("; drop " * 150_000, []),
        ("'" * 1_000_000 + _TAIL, [BOOL]),
        ("sleep(" * 160_000 + _TAIL, [BOOL]),
        ("é" * 500_000 + _TAIL, [BOOL]),
        ("x" * 1_000_000 + "'; DROP TABLE orders", [STACKED, DANGER]),
    ],
    ids=[
        "quotes", "union", "comment-opens", "comment-pairs", "quote-dash", "sleep-calls",
        "union-select", "semicolon-drop", "quotes+payload", "sleep+payload",
        "non-ascii+payload", "long-benign+payload",
    ],
)  # fmt: skip
def test_adversarial_inputs(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


def test_long_input_spans_skip_the_benign_prefix_correctly() -> None:
    text = "x" * 10_000 + "'; DROP TABLE orders"
    assert [m.span for m in explain_sqli(text)] == [(10_001, 10_013), (10_003, 10_013)]
    assert [f.span for f in scan_sqli(text)] == [(10_001, 10_013), (10_003, 10_013)]


def test_huge_inputs_are_decided_without_spans() -> None:
    # Past 64 KiB the scan stays one pass: same ids, no span, reason names the first pattern.
    payload = " x' OR 1=1; DROP TABLE orders; SELECT SLEEP(5)"
    huge = scan_sqli("y" * 70_000 + payload)
    assert [f.policy_id for f in huge] == [BOOL, TIME, STACKED, DANGER]
    assert [f.span for f in huge] == [None] * 4
    assert "(quote_or_numeric)" in huge[0].reason
    assert all(f.span is not None for f in scan_sqli("y" * 60_000 + payload))
    assert [m.span[0] for m in explain_sqli("y" * 70_000 + payload)][:1] == [70_002]


# --- the corpus file ----------------------------------------------------------------------------

_CORPUS = DATA_DIR / "corpus" / "sqli.csv"


def _corpus_rows() -> list[dict[str, str]]:
    with _CORPUS.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_corpus_shape() -> None:
    with _CORPUS.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == [
        "id", "category", "user_token", "query", "expected_approved", "expected_policies",
    ]  # fmt: skip
    rows = _corpus_rows()
    assert len(rows) >= 120
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["id"].startswith("sqli-") for r in rows)
    assert sum(r["expected_approved"] == "true" for r in rows) >= 50
    for category in SQLI_CATEGORIES:
        assert sum(r["category"] == f"sqli_{category}" for r in rows) >= 8, category
    labelled = {p for r in rows for p in r["expected_policies"].split(";") if p}
    assert labelled == {f"sqli_{c}" for c in SQLI_CATEGORIES}


def test_corpus_has_no_pii_lookalikes() -> None:
    pii = re.compile(r"\d{7,}|\d{3}-\d{2}-\d{4}|[\w.+-]+@[\w-]+\.[a-z]{2,}|\+\d")
    assert [r["id"] for r in _corpus_rows() if pii.search(r["query"])] == []


@pytest.mark.parametrize("row", _corpus_rows(), ids=lambda r: r["id"])
def test_corpus_row_agrees_with_scanner(row: dict[str, str]) -> None:
    found = ids(row["query"])
    assert ";".join(found) == row["expected_policies"]
    # Every sqli finding blocks under default settings.
    assert row["expected_approved"] == ("false" if found else "true")
