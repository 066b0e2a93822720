"""Credentials in a query: vendor API keys, private keys, JWTs, passwords and other secrets.

Each :class:`SecretRule` is data (type, re2 pattern, validator); candidates pass the stages of
the PII rules beside it: *match* (one :class:`re2.Set` pass names the rules with a candidate, so
a query without one costs a single DFA pass), *context* (not a slice of a longer run; a keyword
rule stands down when a specific rule owns its value) and *validate* (no placeholder, a JWT
header that is JSON...). The product owner's rule: *a vendor prefix followed by a token-shaped
run is enough*; a checksum or exact length never lets a prefixed token through, as docs
examples and truncated tokens are pasted too. Formats without a prefix need structure: PEM
armour with a body, a JWT header with ``"alg"``, a keyword before an AWS secret key, a URL's
``user:password@``, a ``password=`` or ``token:`` assignment. Placeholders pass, by the rules of
thumb in ``_placeholder_token`` and ``_placeholder_value``. Introduced in ``05_policies.ipynb``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import re2

from .findings import Finding, char_span, search_set, value_pattern

__all__ = [
    "SECRET_RULES",
    "SECRET_TYPES",
    "SecretMatch",
    "SecretRule",
    "explain_secrets",
    "scan_secrets",
]

# Reasons name the type and never quote the matched text: block reasons end up in logs.
_REASONS = {
    "private_key": "Query contains a private key (PEM block)",
    "aws_access_key": "Query contains an AWS access key id",
    "aws_secret_key": "Query contains an AWS secret access key",
    "github_token": "Query contains a GitHub token",
    "slack_token": "Query contains a Slack token",
    "google_api_key": "Query contains a Google API key",
    "stripe_key": "Query contains a Stripe secret or restricted key",
    "openai_key": "Query contains an OpenAI API key",
    "anthropic_key": "Query contains an Anthropic API key",
    "jwt": "Query contains a JSON Web Token",
    "password": "Query contains a password (assigned, or in a URL)",
    "credential": "Query contains a credential (a token, secret or API key by name)",
}
#: Reporting order; each type is the policy ``sys_secret_<type>`` and the redaction
#: placeholder ``[<TYPE>_n]``. ``password`` and ``credential`` come from keyword rules.
SECRET_TYPES: tuple[str, ...] = tuple(_REASONS)


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One detection rule: where candidates are (``pattern``) and what makes one real.

    ``pattern`` is re2 syntax over ASCII; group 1 is the value (what a redaction replaces).
    A ``generic`` keyword rule stands down when a specific rule matches its text, so
    ``OPENAI_API_KEY=sk-…`` is one OpenAI key, not also a credential; ``not_in_keyword``
    words void its keyword (``next_token`` is a cursor, not a credential).

    >>> SECRET_RULES[0]
    <SecretRule private_key/pem: PEM armour + base64 body>
    """

    name: str
    secret_type: str
    pattern: str
    validator: Callable[[str], bool]
    check: str
    generic: bool = False
    not_in_keyword: frozenset[str] = frozenset()
    regex: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, problem = value_pattern(self.pattern)
        object.__setattr__(self, "regex", regex)
        if self.secret_type not in SECRET_TYPES:
            problem = f"unknown type {self.secret_type!r}; use one of SECRET_TYPES"
        elif not callable(self.validator):
            problem = "validator must be a function of the value"
        if problem:
            raise ValueError(f"secret rule {self.name!r}: {problem}")

    def __repr__(self) -> str:
        return f"<SecretRule {self.secret_type}/{self.name}: {self.check}>"


# ---- validate stage: pure functions of the candidate text ----------------------------------
_X_RUN = re.compile(r"xxxx|XXXX")
_SEPARATORS = re.compile(r"[-_.]+")
_TOKEN_WORDS = "your token secret example placeholder here key redacted dummy fake insert".split()
_PEM_BODY_RUN = re.compile(r"[A-Za-z0-9+/]{16,}")
_FILLER_VALUES = frozenset(
    "password passwd pass pwd passphrase secret secret_key token key apikey api_key none null "
    "nil true false undefined empty hidden masked string str required optional test default".split()
)
_FILLER_PARTS = "your example placeholder redacted changeme change_me dummy xxxx **** ... \u2026"
_CODE_MARKS = ("(", "[", "${", "{{", "%(", "process.env", "os.environ", "getenv")
_CODE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|![A-Za-z]+")  # a.b, YAML !Ref


def _placeholder_token(body: str) -> bool:
    """Whether the run after a vendor prefix is a placeholder: one repeated character
    (``ghp_xxxx…``), an ``xxxx``/``XXXX`` run, or no digit and written as words
    (``xoxb-your-token``, ``sk-YOUR_API_KEY_HERE``). "EXAMPLE" beside digits is a token."""
    if len(set(_SEPARATORS.sub("", body))) <= 1 or _X_RUN.search(body):
        return True
    if any(c.isdigit() for c in body):
        return False  # random runs have digits
    words = [w for w in _SEPARATORS.split(body) if w]
    written = all(w.islower() or w.isupper() or w.istitle() for w in words)
    return written or any(word in body.lower() for word in _TOKEN_WORDS)


def _after_prefix(prefix: str, unless: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """A validator for a vendor-prefixed token: the run after ``prefix`` is no placeholder,
    and the value does not start with one of ``unless`` (other rules' longer prefixes)."""
    strip = re.compile(prefix)
    return lambda v: not v.startswith(unless) and not _placeholder_token(strip.sub("", v, 1))


def _aws_key_id_ok(value: str) -> bool:
    # Upper case by design, so only a repeated character or an XXXX run voids a key id;
    # ASIA/ABIA/ACCA are also words and acronyms, so those need all 16 characters.
    body = value[4:]
    full = value.startswith("AKIA") or len(body) == 16
    return full and len(set(body)) > 1 and "XXXX" not in body


def _aws_secret_ok(value: str) -> bool:
    # 40 characters of base64's alphabet in both cases: a 40-digit hex run is a SHA-1.
    has_both = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return len(value) == 40 and has_both and not _X_RUN.search(value)


def _jwt_ok(value: str) -> bool:
    header = value.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):  # JSONDecodeError and UnicodeDecodeError included
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("alg"), str)


def _pem_ok(value: str) -> bool:
    # Armour alone is a mention ("convert BEGIN RSA PRIVATE KEY to ..."); a key has a body.
    runs = _PEM_BODY_RUN.findall(value)
    return any(len(set(run)) > 1 and not _X_RUN.search(run) for run in runs)


def _placeholder_value(value: str) -> bool:
    """Whether an assigned value or URL password is a stand-in: empty or one repeated
    character (``****``, ``...``), a template or variable (``<password>``, ``${DB_PASS}``,
    ``$DB_PASS``, ``%PASS%``), code (``getpass()``, ``settings.DB_PASS``, ``!Ref``), a path,
    a URL, a filler word (``none``, ``string``) or a part such as ``your`` or ``changeme``."""
    value = value.strip()
    lowered = value.lower()
    if len(set(value)) <= 1 or value[0] in "<{$%" or lowered in _FILLER_VALUES:
        return True
    if any(part in lowered for part in _FILLER_PARTS.split()) or _CODE_NAME.fullmatch(value):
        return True
    code = any(mark in value for mark in _CODE_MARKS)
    return code or lowered.startswith(("/", "~/", "./", "../", "http://", "https://"))


def _password_ok(value: str) -> bool:
    return len(value) >= 4 and not _placeholder_value(value)


def _bare_password_ok(value: str) -> bool:
    # Unquoted letters after "password:" are mostly prose or code ("Password: required",
    # "password=new_password"): a bare value needs a digit or a symbol.
    return _password_ok(value) and any(not (c.isalpha() or c == "_") for c in value)


def _credential_ok(value: str) -> bool:
    # Tokens and API keys are long random runs of letters and digits, never a number alone
    # ("max_token: 4096") or a phrase ("secret: the sauce").
    letters_and_digits = any(c.isalpha() for c in value) and any(c.isdigit() for c in value)
    return len(value) >= 8 and letters_and_digits and not _placeholder_value(value)


# ---- the patterns ---------------------------------------------------------------------------
# Left edge of a prefixed token: not inside a longer run of token or base64 characters
# ("task-…", a data: URI), but right after a JSON-escaped line break ("\nghp_…") is fine.
_EDGE = r"(?:^|[^0-9A-Za-z_+/-]|\\[nrt])"
_PEM_ARMOUR = r" (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PEM_BREAK = r"(?:\s|\\[rn])"  # a line break: real, JSON-escaped, or collapsed to a space
# Body lines are base64, headers ("Proc-Type: 4,ENCRYPTED") or a PGP checksum ("=Xq3f"), then
# a short last line and END when it is there. Each part stops at its own characters, so a
# flood of armour stays linear: no "anything up to END" that runs to the end of the text.
_PEM_LINE = r"(?:[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z-]+: [A-Za-z0-9 ,.-]+|=[A-Za-z0-9+/]{4})"
_PEM = (
    rf"(-----BEGIN{_PEM_ARMOUR}(?:{_PEM_BREAK}+{_PEM_LINE})*"
    rf"(?:{_PEM_BREAK}+[A-Za-z0-9+/]{{1,15}}={{0,2}})?(?:{_PEM_BREAK}*-----END{_PEM_ARMOUR})?)"
)
_AWS_SECRET = (
    r"(?i:aws[_ .-]?secret(?:[_ .-]?access)?(?:[_ .-]?key)?|secret[_ .-]?access[_ .-]?key)"
    r"""[ \t"'\\:=>,]{0,8}(?:(?i:is)[ \t:]+)?([A-Za-z0-9+/]{40,})"""
)
_SLACK = r"((?:xoxe\.)?(?:xox[abeprs]|xapp)-[0-9A-Za-z][0-9A-Za-z-]{8,}[0-9A-Za-z])"
# user:password@ in a URL, user maybe empty (redis://:pw@host); "<" and quotes end a part,
# so mongodb+srv://<user>:<password>@… is a template, not a match.
_URL_PASSWORD = r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/?#@\"'<>]*:([^\s/?#@\"'<>]+)@[^\s@]"
# A keyword, maybe prefixed (DB_PASSWORD, x-api-key, config.password, --password), but not
# a path (/etc/passwd) nor part of a longer word ("passwords:", "tokens:").
_KEY = r"(?i)(?:^|[^/A-Za-z0-9_.-])(?:[a-z0-9]*[_.-])*[a-z0-9]*"
_PASSWORD = _KEY + r"(?:passw(?:or)?d|passphrase|pwd)"
_CREDENTIAL = _KEY + r"(?:secret(?:[_.-]?key)?|api[ _.-]?key|(?:access|private)[_.-]?key|token)"
_IS = r"""\\?["']?[ \t]*(?::=|=>|[:=])[ \t]*"""
_QUOTED = r"""\\?["'`]([^"'`\\\r\n]+)"""
# Bare: up to a space, quote or separator (";" in an ADO string, "&" before the next query
# parameter; "&" before a digit or symbol stays, as in Tr0ub4dor&3); never "==", and not the
# sentence's closing punctuation, but "!" (Summer2024!) ends many a password.
_BARE_MID = r"""(?:[^\s"'`,;&\\]|&[^\sA-Za-z"'`,;&\\])"""
_BARE_END = r"""(?:[^\s"'`,;&\\.?:)\]}]|&[^\sA-Za-z"'`,;&\\.?:)\]}])"""
_BARE = rf"""([^\s"'`,;&\\=](?:{_BARE_MID}*{_BARE_END})?)"""
_CURSORS = frozenset("next page continuation cursor sync csrf xsrf max min num".split())

# A table: `# fmt: skip` keeps each rule on two or three lines, not one line per argument.
SECRET_RULES: tuple[SecretRule, ...] = (
    SecretRule("pem", "private_key", _PEM, _pem_ok, "PEM armour + base64 body"),
    SecretRule("aws_key_id", "aws_access_key", _EDGE + r"((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{12,})",
               _aws_key_id_ok, "AKIA/ASIA/ABIA/ACCA prefix + key-id run"),
    SecretRule("aws_secret", "aws_secret_key", _AWS_SECRET, _aws_secret_ok,
               "AWS secret keyword + 40-character key"),
    SecretRule("github_classic", "github_token", _EDGE + r"(gh[opsru]_[0-9A-Za-z]{16,})",
               _after_prefix(r"^gh._"), "ghp_/gho_/ghs_/ghu_/ghr_ prefix + token run"),
    SecretRule("github_fine_grained", "github_token", _EDGE + r"(github_pat_[0-9A-Za-z_]{16,})",
               _after_prefix(r"^github_pat_"), "github_pat_ prefix + token run"),
    SecretRule("slack", "slack_token", _EDGE + _SLACK, _after_prefix(r"^(?:xoxe\.)?[a-z]+-"),
               "xoxb-/xoxp-/xoxa-/... prefix + token groups"),
    SecretRule("google_api_key", "google_api_key", _EDGE + r"(AIza[0-9A-Za-z_-]{16,})",
               _after_prefix(r"^AIza"), "AIza prefix + key run"),
    SecretRule("stripe", "stripe_key", _EDGE + r"((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,})",
               _after_prefix(r"^[sr]k_[a-z]+_"), "sk_/rk_ live/test prefix + key run"),
    # re2 has no lookahead, so "sk-" also matches Anthropic keys: those are the next rule's.
    SecretRule("openai", "openai_key", _EDGE + r"(sk-[0-9A-Za-z_-]{20,})",
               _after_prefix(r"^sk-(?:proj-|svcacct-|admin-|None-)?", unless=("sk-ant-",)),
               "sk- prefix (not sk-ant-) + key run"),
    SecretRule("anthropic", "anthropic_key", _EDGE + r"(sk-ant-[0-9A-Za-z_-]{20,})",
               _after_prefix(r"^sk-ant-(?:[a-z]+[0-9]+-)?"), "sk-ant- prefix + key run"),
    SecretRule("jwt", "jwt", _EDGE + r"(eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)",
               _jwt_ok, "three base64url segments, header is JSON with alg"),
    SecretRule("url_password", "password", _URL_PASSWORD, _password_ok,
               "scheme://user:password@host", generic=True),
    SecretRule("password_quoted", "password", _PASSWORD + _IS + _QUOTED, _password_ok,
               "password keyword + quoted value", generic=True),
    SecretRule("password_bare", "password", _PASSWORD + _IS + _BARE, _bare_password_ok,
               "password keyword + value with a digit or symbol", generic=True),
    SecretRule("credential_quoted", "credential", _CREDENTIAL + _IS + _QUOTED, _credential_ok,
               "token/secret/API-key keyword + letters and digits", generic=True,
               not_in_keyword=_CURSORS),
    SecretRule("credential_bare", "credential", _CREDENTIAL + _IS + _BARE, _credential_ok,
               "token/secret/API-key keyword + letters and digits", generic=True,
               not_in_keyword=_CURSORS),
    SecretRule("bearer", "credential", r"(?i)\bbearer[ \t]+([A-Za-z0-9._~+/-]{16,}=*)",
               _credential_ok, "Bearer + letters and digits", generic=True),
)  # fmt: skip


# ---- match and context stages --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SecretMatch:
    """One validated match. Only the span is kept, never the value, so a repr cannot leak it.

    >>> explain_secrets("key AIza" + "Sy" + "A1b2" * 9)
    [<SecretMatch google_api_key [4:46] google_api_key: AIza prefix + key run>]
    """

    secret_type: str
    span: tuple[int, int]
    rule: str
    check: str

    def __repr__(self) -> str:
        start, end = self.span
        return f"<SecretMatch {self.secret_type} [{start}:{end}] {self.rule}: {self.check}>"


@functools.cache
def _which() -> re2.Set:
    # Built on first use, like the set in .onepass.
    return search_set(rule.pattern for rule in SECRET_RULES)


_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")  # "nextPageToken" -> next, Page, Token
#: Candidates one rule may validate in one scan. Validation runs in Python; past the budget
#: the type is reported as present, unverified: failing closed, as the PII rules do.
VALIDATION_BUDGET = 1000
UNVERIFIED = "unverified: over the validation budget"
_OVER_BUDGET = f" (over {VALIDATION_BUDGET:,} candidates: not all validated, treated as present)"


def _find(data: bytes, rules: Iterable[int], first_only: bool) -> list[SecretMatch]:
    """Validated matches of the given rules, as byte spans of ``data``."""
    found: list[SecretMatch] = []
    for index in sorted(rules):
        rule = SECRET_RULES[index]
        budget = VALIDATION_BUDGET
        for m in rule.regex.finditer(data):
            start, end = m.span(1)
            budget -= 1
            if budget < 0:
                found.append(SecretMatch(rule.secret_type, (start, end), rule.name, UNVERIFIED))
                break
            if end < len(data) and data[end] in _ALNUM:
                continue  # the run goes on: a slice of something longer
            if rule.not_in_keyword:
                words = _WORDS.findall(data[m.start() : start].decode("ascii", "replace"))
                if any(word.lower() in rule.not_in_keyword for word in words):
                    continue
            if not rule.validator(data[start:end].decode("utf-8", "replace")):
                continue
            if rule.generic and _owned_by_specific(data[m.start() : end]):
                continue
            found.append(SecretMatch(rule.secret_type, (start, end), rule.name, rule.check))
            if first_only:
                break
    return found


def _owned_by_specific(keyword_and_value: bytes) -> bool:
    # A specific rule reports "token=ghp_…" or "aws_secret_access_key=…" under its own type.
    specific = [i for i in _which().Match(keyword_and_value) or () if not SECRET_RULES[i].generic]
    return bool(specific) and bool(_find(keyword_and_value, specific, first_only=True))


def _matches(
    text: str, first_only: bool, data: bytes | None = None, rules: Iterable[int] | None = None
) -> list[SecretMatch]:
    data = text.encode("utf-8", "surrogatepass") if data is None else data
    if rules is None:
        rules = _which().Match(data) if data else None
    if not rules:
        return []
    found = _find(data, rules, first_only)
    if found and len(data) != len(text):  # non-ASCII text: byte offsets -> str offsets
        found = [replace(m, span=char_span(data, m.span)) for m in found]
    return found


def explain_secrets(text: str) -> list[SecretMatch]:
    """Every validated match in reading order, with the rule and check that accepted it.

    Overlapping matches of one type (a quoted and a bare reading of one value) are shown once.
    """
    shown: list[SecretMatch] = []
    last_end: dict[str, int] = {}
    for m in sorted(_matches(text, first_only=False), key=lambda m: (m.span[0], -m.span[1])):
        if m.span[0] >= last_end.get(m.secret_type, 0):
            shown.append(m)
            last_end[m.secret_type] = m.span[1]
    return shown


def scan_secrets(
    text: str,
    *,
    data: bytes | None = None,
    rules: Iterable[int] | None = None,
    every: list[SecretMatch] | None = None,
) -> list[Finding]:
    """At most one finding per secret type, in :data:`SECRET_TYPES` order; span = first match.

    ``data`` is the text's UTF-8 bytes (lone surrogates passed through) and ``rules`` the
    indices into :data:`SECRET_RULES` that a set pass over them found, when the caller made
    that pass already (as :mod:`.onepass` does for the other families). ``every``, when
    given, receives every validated match from the same search (for redaction).

    >>> scan_secrets("my key is AIza" + "Sy" + "A1b2" * 9)
    [<Finding sys_secret_google_api_key block critical>]
    """
    first: dict[str, SecretMatch] = {}
    found = _matches(text, every is None, data, rules)
    if every is not None:
        every += found
    for m in found:
        if m.secret_type not in first or m.span < first[m.secret_type].span:
            first[m.secret_type] = m
    findings = []
    for kind in (kind for kind in SECRET_TYPES if kind in first):
        reason = _REASONS[kind] + (_OVER_BUDGET if first[kind].check == UNVERIFIED else "")
        span = first[kind].span
        findings.append(Finding(f"sys_secret_{kind}", "secret", "critical", "block", reason, span))
    return findings
