"""Custom policies: an organisation's own rules, kept as data in ``data/policies.yaml``.

Each rule has an ``id``, either a ``pattern`` (RE2 syntax; add ``(?i)`` for case-insensitive)
or a list of ``keywords`` (matched case-insensitively on word boundaries), an optional scope
(``roles`` and/or ``departments``: the rule applies only to users in all given scopes), an
``action`` (``block``, ``require_approval``, ``warn`` or ``log``), a ``severity`` and the
``reason`` shown to the caller. Files are validated when loaded; a bad file raises
:class:`~helpers.errors.PolicyFileError` naming the file, the rule and the problem.
:class:`PolicyWatcher` reloads a changed file without a restart and keeps the last good rules
if the new file is invalid (contract Part B.5). Introduced in ``05_policies.ipynb``.

>>> policies = CustomPolicySet.load()
>>> from helpers.gateway.policies.rbac import UserDirectory
>>> engineer = UserDirectory.load().lookup("user-123")
>>> [f.policy_id for f in policies.evaluate("Status of Project Nightjar?", engineer)]
['unreleased_code_names']
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2

from helpers.errors import PolicyFileError
from helpers.settings import DATA_DIR
from helpers.yamlcheck import Checker, line_of, load_yaml

from .findings import ACTIONS, SEVERITIES, Finding, char_span
from .rbac import User

__all__ = ["CustomPolicySet", "CustomRule", "PolicyWatcher"]

_RULE_KEYS = {
    "id": True,
    "description": False,
    "pattern": False,
    "keywords": False,
    "roles": False,
    "departments": False,
    "action": True,
    "severity": True,
    "reason": True,
    "enabled": False,
    "examples": False,
}
# A rule's own tests: texts it must stop (``block``, for block and require_approval rules),
# must fire on without stopping (``flag``, for warn and log rules), and must let pass.
_EXAMPLE_KEYS = {"block": False, "flag": False, "allow": False}
_EXAMPLE_MAX_CHARS = 2_000
#: RE2 program size above which a pattern is refused as too costly to run on every query
#: (the shipped rules are all under 400; RE2's memory budget fails far above this).
MAX_PROGRAM_SIZE = 5_000
_ID_RE = re2.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
# Ids the built-in families report; a custom rule must not be mistaken for one of them.
_RESERVED_PREFIXES = ("sys_", "sqli_")
_RESERVED_IDS = frozenset({"rate_limit"})


def _options() -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False  # the error goes into PolicyFileError, not onto stderr
    return opts


def _keyword_regex(keyword: str) -> str:
    """A case-insensitive word-bounded regex for one keyword; inner whitespace may vary."""
    body = r"\s+".join(re2.escape(part) for part in keyword.split())
    first, last = keyword.strip()[0], keyword.strip()[-1]

    def edge(ch: str, before: bool) -> str:
        if not (ch.isalnum() or ch == "_"):
            return ""  # "customer name:" ends in punctuation: no word boundary to ask for
        if ch.isascii():
            return r"\b"
        # RE2's \b is ASCII-only; for other letters, require a non-letter (or the text's edge).
        return r"(?:^|[^\pL\pN_])" if before else r"(?:[^\pL\pN_]|$)"

    return edge(first, True) + body + edge(last, False)


class _Always:
    """Stands in for the combined gate when it cannot be built: every query is checked."""

    @staticmethod
    def search(text: str | bytes) -> object:
        return text  # anything but None: "may match, check the rules"


_ALWAYS = _Always()


def _compile(source: str) -> tuple[Any, str]:
    """Compile with RE2; on failure return (None, RE2's own message)."""
    try:
        return re2.compile(source, _options()), ""
    except re2.error as exc:
        msg = exc.args[0] if exc.args else exc
        return None, msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def _combine(patterns: tuple[str, ...]) -> Any:
    """One alternation of ``patterns`` (None for none); flags such as (?i) inside a pattern
    stay local to its (?:...) group. When they cannot be combined (e.g. two patterns use the
    same group name) the gate lets every text through and each rule is checked."""
    if not patterns:
        return None
    gate, _ = _compile("|".join(f"(?:{p})" for p in patterns))
    return _ALWAYS if gate is None else gate


@dataclass(frozen=True, slots=True)
class CustomRule:
    """One validated rule. ``roles``/``departments`` of ``None`` mean "everyone"."""

    id: str
    action: str
    severity: str
    reason: str
    description: str = ""
    pattern: str | None = None
    keywords: tuple[str, ...] = ()
    roles: frozenset[str] | None = None
    departments: frozenset[str] | None = None
    enabled: bool = True
    regex: Any = field(default=None, repr=False, compare=False)
    #: ``(kind, text)`` pairs, kind ``block``, ``flag`` or ``allow``: the rule's own tests,
    #: checked when the file is loaded.
    examples: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def applies_to(self, user: User) -> bool:
        """True when the user is inside every scope the rule names (scopes compare caseless)."""
        if not self.enabled:
            return False
        if self.roles is not None and user.role.casefold() not in self.roles:
            return False
        return self.departments is None or user.department.casefold() in self.departments

    def __repr__(self) -> str:
        scope = []
        if self.roles is not None:
            scope.append(f"roles={sorted(self.roles)}")
        if self.departments is not None:
            scope.append(f"departments={sorted(self.departments)}")
        kind = f"{len(self.keywords)} keywords" if self.keywords else "pattern"
        parts = [self.id, self.action, self.severity, kind, *scope]
        if not self.enabled:
            parts.append("disabled")
        return f"<CustomRule {' '.join(parts)}>"


class CustomPolicySet:
    """An immutable, ordered set of custom rules; evaluate it with :meth:`evaluate`.

    Every enabled rule (keywords and patterns alike) is compiled into one RE2 alternation, so
    a query that no rule could match costs a single linear pass whoever asks; only on a hit
    do the rules in the user's scope run one by one, to tell which fired and where.
    """

    def __init__(self, rules: Iterable[CustomRule] = (), path: str | Path | None = None) -> None:
        self._rules = tuple(rules)
        self.path = Path(path) if path is not None else None
        # One pass over the query answers "could any rule fire?"; almost every query stops
        # there. Only when it hits do the individual rules (those in the user's scope) run.
        self._live = tuple(r.regex.pattern for r in self._rules if r.enabled)
        self._gate = _combine(self._live)
        self._joint: dict[tuple[str, ...], Any] = {}

    @property
    def rules(self) -> tuple[CustomRule, ...]:
        return self._rules

    def gate_with(self, patterns: tuple[str, ...]) -> Any:
        """One regex that matches wherever an enabled rule or one of ``patterns`` may match.

        A caller with a check of its own over the same text (the engine's admin-access
        families) shares one pass with these rules: when the joint gate finds nothing,
        neither can fire. Built once per set and per ``patterns``.
        """
        joint = self._joint.get(patterns)
        if joint is None:
            joint = self._joint[patterns] = _combine(self._live + patterns)
        return joint

    @classmethod
    def load(
        cls,
        path: str | Path = DATA_DIR / "policies.yaml",
        known_roles: Collection[str] | None = None,
    ) -> CustomPolicySet:
        """Read and validate a policy file; ``known_roles``, if given, must hold all scope roles."""
        path = Path(path)
        check = Checker(path)
        doc = load_yaml(path)
        check.keys(doc, {"rules": True}, None, what="the policy file")
        raw = doc["rules"]
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            kind = type(raw).__name__
            check.fail(f"'rules' must be a list of rules, not {kind}", None, line_of(doc, "rules"))
        rules: list[CustomRule] = []
        seen: set[str] = set()
        for index, spec in enumerate(raw, start=1):
            rule = _parse_rule(check, spec, index, known_roles)
            if rule.id in seen:
                check.fail(f"duplicate id {rule.id!r} (rule #{index}); ids must be unique", rule.id)
            seen.add(rule.id)
            rules.append(rule)
        return cls(rules, path)

    def evaluate(self, text: str, user: User, *, data: bytes | None = None) -> list[Finding]:
        """Findings (family ``custom``) for every rule that applies to ``user`` and matches.

        ``data`` is ``text`` as UTF-8 when the caller has it already (the engine encodes each
        query once for every check that searches it).
        """
        if not text or self._gate is None:
            return []
        # Every search runs on the bytes: re2's str interface re-encodes the whole text and
        # maps offsets on every call, which costs more than the search itself.
        if data is None:
            data = text.encode("utf-8", "surrogatepass")
        if self._gate.search(data) is None:
            return []
        ascii = len(data) == len(text)
        out: list[Finding] = []
        for rule in self._rules:
            if not rule.applies_to(user):
                continue
            m = rule.regex.search(data)
            if m is not None:
                out.append(
                    Finding(
                        rule.id,
                        "custom",
                        rule.severity,
                        rule.action,
                        rule.reason,
                        char_span(data, m.span(), ascii),
                    )
                )
        return out

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[CustomRule]:
        return iter(self._rules)

    def __repr__(self) -> str:
        where = f" from {self.path.name}" if self.path else ""
        return f"<CustomPolicySet {len(self._rules)} rules{where}: {[r.id for r in self._rules]}>"


def _parse_rule(
    check: Checker, spec: Any, index: int, known_roles: Collection[str] | None
) -> CustomRule:
    # Until the id is known to be good, errors name the rule by its position.
    label = f"#{index}"
    if isinstance(spec, dict) and isinstance(spec.get("id"), str) and spec["id"].strip():
        label = spec["id"]
    check.line = line_of(spec)
    check.keys(spec, _RULE_KEYS, label, what="the rule")
    rule_id = check.string(spec["id"], "id", label).strip()
    if _ID_RE.fullmatch(rule_id) is None:
        check.fail(
            "'id' must start with a letter and use only letters, digits, '_', '.', '-' "
            "(at most 64 characters)",
            label,
        )
    if rule_id in _RESERVED_IDS or rule_id.startswith(_RESERVED_PREFIXES):
        check.fail(
            f"id {rule_id!r} is reserved for built-in policies "
            "(ids starting with sys_ or sqli_, and rate_limit)",
            label,
        )
    action = check.string(spec["action"], "action", label)
    if action not in ACTIONS:
        check.fail(f"'action' must be one of {', '.join(ACTIONS)}, not {action!r}", label)
    severity = check.string(spec["severity"], "severity", label)
    if severity not in SEVERITIES:
        check.fail(f"'severity' must be one of {', '.join(SEVERITIES)}, not {severity!r}", label)
    reason = check.string(spec["reason"], "reason", label).strip()
    description = check.string(spec.get("description", ""), "description", label, empty=True)
    enabled = check.boolean(spec.get("enabled", True), "enabled", label)

    has_pattern, has_keywords = "pattern" in spec, "keywords" in spec
    if has_pattern == has_keywords:
        which = "both are set" if has_pattern else "neither is set"
        check.fail(f"give exactly one of 'pattern' or 'keywords' ({which})", label)
    pattern: str | None = None
    keywords: tuple[str, ...] = ()
    if has_pattern:
        pattern = check.string(spec["pattern"], "pattern", label)
        source = pattern
    else:
        keywords = tuple(
            k.strip() for k in check.strings(spec["keywords"], "keywords", label, empty=False)
        )
        source = "(?i)(?:" + "|".join(_keyword_regex(k) for k in keywords) + ")"
    where = line_of(spec, "pattern" if has_pattern else "keywords")
    regex, error = _compile(source)
    if regex is None:
        hint = ""
        if "too large" in error:
            hint = "; the pattern is too costly for RE2: shorten bounded repeats such as {1000}"
        check.fail(f"'pattern' is not a valid RE2 regular expression: {error}{hint}", label, where)
    if regex.search("") is not None:
        check.fail(
            "'pattern' matches the empty string, so it would fire on every query", label, where
        )
    if regex.programsize <= 1:
        check.fail(
            "'pattern' can never match any text (RE2 reduces it to no match; look for "
            r"an empty class such as [^\s\S])",
            label,
            where,
        )
    if regex.programsize > MAX_PROGRAM_SIZE:
        check.fail(
            f"'pattern' is too costly: its RE2 program has {regex.programsize} "
            f"instructions, above the limit of {MAX_PROGRAM_SIZE}; shorten bounded "
            "repeats such as {1000} or split the rule",
            label,
            where,
        )
    examples = _examples(check, spec, label, action, regex)

    return CustomRule(
        id=rule_id,
        action=action,
        severity=severity,
        reason=reason,
        description=description,
        pattern=pattern,
        keywords=keywords,
        enabled=enabled,
        regex=regex,
        roles=_scope(check, spec, "roles", label, known_roles),
        departments=_scope(check, spec, "departments", label, None),
        examples=examples,
    )


def _examples(
    check: Checker, spec: dict, label: str, action: str, regex: Any
) -> tuple[tuple[str, str], ...]:
    """Validate a rule's ``examples`` and run them against its pattern (scope aside: an
    example stands for a user the rule applies to). Any failure refuses the whole file."""
    if "examples" not in spec:
        return ()
    raw = spec["examples"]
    line = line_of(spec, "examples")
    if not isinstance(raw, dict):
        kind = type(raw).__name__ if raw is not None else "nothing"
        check.fail(
            f"'examples' must be a mapping like {{block: [...], allow: [...]}}, not {kind}",
            label,
            line,
        )
    check.line = line
    check.keys(raw, _EXAMPLE_KEYS, label, what="'examples'")
    if not raw:
        check.fail("'examples' is empty; list texts under block, flag or allow", label, line)
    stops = action in ("block", "require_approval")
    if stops and "flag" in raw:
        check.fail(
            f"the rule's action is {action}: list the texts it must stop under 'block', not 'flag'",
            label,
            line_of(raw, "flag"),
        )
    if not stops and "block" in raw:
        check.fail(
            f"the rule's action is {action}: it never blocks; list the texts it must "
            "fire on under 'flag'",
            label,
            line_of(raw, "block"),
        )
    out: list[tuple[str, str]] = []
    for kind in _EXAMPLE_KEYS:
        if kind not in raw:
            continue
        items = raw[kind]
        check.line = line_of(raw, kind) or line
        texts = check.strings(items, f"examples.{kind}", label, empty=False)
        for i, text in enumerate(texts):
            where = line_of(items, i) or check.line
            name = f"examples.{kind}[{i}] {_short(text)!r}"
            if len(text) > _EXAMPLE_MAX_CHARS:
                check.fail(
                    f"{name} is {len(text)} characters; keep examples under {_EXAMPLE_MAX_CHARS}",
                    label,
                    where,
                )
            m = regex.search(text.encode("utf-8", "surrogatepass"))
            if kind != "allow" and m is None:
                verb = "stop" if kind == "block" else "flag"
                check.fail(
                    f"{name} is not matched by the rule's pattern: the rule would not "
                    f"{verb} it. Fix the pattern or the example",
                    label,
                    where,
                )
            if kind == "allow" and m is not None:
                start, end = char_span(text.encode("utf-8", "surrogatepass"), m.span())
                check.fail(
                    f"{name} must pass but the pattern matches it at characters "
                    f"{start}-{end} ({_short(text[start:end])!r}); the rule would "
                    f"{'stop' if stops else 'flag'} it. Narrow the pattern or fix the "
                    "example",
                    label,
                    where,
                )
            out.append((kind, text))
    check.line = line_of(spec)
    return tuple(out)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scope(
    check: Checker, spec: dict, key: str, label: str, known: Collection[str] | None
) -> frozenset[str] | None:
    if key not in spec:
        return None
    values = check.strings(spec[key], key, label, empty=False)
    if known is not None:
        for value in values:
            if value not in known:
                near = difflib.get_close_matches(value, list(known), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                check.fail(
                    f"unknown role {value!r} in 'roles' (known: {', '.join(sorted(known))}){hint}",
                    label,
                )
    return frozenset(v.strip().casefold() for v in values)


class PolicyWatcher:
    """Holds the current :class:`CustomPolicySet` and reloads it when its file changes.

    :meth:`reload_if_changed` is cheap enough to call on every request: it looks at the file's
    modification time at most once per ``min_interval_s`` (by ``clock``). A new file that
    fails validation is not used: the previous rules stay in force and the error is kept in
    :attr:`last_error` until a good file replaces it. The swap is one attribute assignment,
    so requests in flight finish with the set they started with.

    >>> watcher = PolicyWatcher(DATA_DIR / "policies.yaml")
    >>> watcher.reload_if_changed()   # unchanged (and checked less than a second ago)
    False
    """

    def __init__(
        self,
        path: str | Path = DATA_DIR / "policies.yaml",
        *,
        known_roles: Collection[str] | None = None,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.known_roles = known_roles
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._stamp = self._file_stamp()  # before reading: a write in between is seen next time
        self.current = CustomPolicySet.load(self.path, known_roles)  # a bad file fails at start
        self.last_error: PolicyFileError | None = None
        self.reloads = 0
        self._next_check = clock() + min_interval_s
        self._lock = threading.Lock()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def reload_if_changed(self, force: bool = False) -> bool:
        """Reload if the file changed; True when a new set was swapped in.

        ``force=True`` skips the once-per-interval throttle (still only reloads on a change).
        """
        now = self._clock()
        if not force and now < self._next_check:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is already reloading
        try:
            self._next_check = now + self.min_interval_s
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                new = CustomPolicySet.load(self.path, self.known_roles)
            except PolicyFileError as exc:
                self.last_error = exc
                return False
            self.current = new
            self.last_error = None
            self.reloads += 1
            return True
        finally:
            self._lock.release()

    def evaluate(self, text: str, user: User, *, data: bytes | None = None) -> list[Finding]:
        """Evaluate with the current set (no reload check; call :meth:`reload_if_changed`)."""
        return self.current.evaluate(text, user, data=data)

    def __repr__(self) -> str:
        state = f"error: {self.last_error}" if self.last_error else "ok"
        return f"<PolicyWatcher {self.path.name} {len(self.current)} rules, {state}>"
