"""Detection that survives obfuscation: the SQL-injection, PII and credential scanners run on
every view.

:func:`scan_views` runs :func:`~.sqli.scan_sqli`, :func:`~.pii.scan_pii` and
:func:`~.secrets.scan_secrets` on the query and on each :class:`~.views.View` that differs
from it (canonical, percent-, JSON-, HTML-, quoted-printable- and base64-decoded, SQL without
comments, spelled-out digits, mixed separators, labels glued to numbers; credentials are not
looked for in the digit-only views). Each view is built once and searched once, and the
same search can keep every value's span for redaction (``collect=True``). A policy found
only in a view keeps its own reason plus the view's name, and its span is mapped back to
the user's characters.
:func:`pii_matches` lists every PII value (not only the first per type) across the views, for
redaction, and :func:`sensitive_matches` does the same for PII and credentials together.
Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> [f.policy_id for f in scan_views("SSN ５５５\u200b-12-3456").pii]
['sys_pii_ssn']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .findings import Finding
from .onepass import Candidates, candidates
from .pii import PII_TYPES, PiiMatch, explain_pii, scan_pii
from .secrets import SECRET_TYPES, SecretMatch, explain_secrets, scan_secrets
from .sqli import SQLI_CATEGORIES, scan_sqli
from .views import View, build_views, canonical_view, decoded_views

__all__ = ["Sensitive", "ViewFindings", "pii_matches", "scan_views", "sensitive_matches"]

_SQLI_ORDER = {f"sqli_{c}": i for i, c in enumerate(SQLI_CATEGORIES)}
_PII_ORDER = {f"sys_pii_{t}": i for i, t in enumerate(PII_TYPES)}
_SECRET_ORDER = {f"sys_secret_{t}": i for i, t in enumerate(SECRET_TYPES)}
_READABLE = {
    "canonical": "after Unicode folding",
    "percent": "after percent-decoding",
    "json": "after decoding JSON escapes",
    "html": "after decoding HTML entities",
    "sql": "with SQL comments removed",
    "spelled": "with spelled-out digits read as digits",
    "separators": "with mixed separators read as spaces",
    "glued": "with letters glued to digits set apart",
    "qp": "after decoding quoted-printable",
    "base64": "after decoding base64",
}
# Views that only rewrite digits and their separators: SQL injection cannot hide there.
_PII_ONLY = frozenset({"separators", "spelled", "glued"})
#: Views of inputs longer than this report findings without a span (as :mod:`.sqli` does):
#: the decision does not need one, and mapping a 1 MiB flood back costs more than deciding.
SPAN_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class ViewFindings:
    """What the scanners found on the query and its views, spans in the original text."""

    sqli: list[Finding]
    pii: list[Finding]
    secrets: list[Finding]
    views: tuple[str, ...]  # names of the views that were built (empty for plain ASCII)
    #: For an ASCII query, whether an admin-access family may fire on it (the same set pass
    #: answered that); None for other text, whose pass was over its canonical view.
    admin: bool | None = None
    #: With ``collect=True``: every PII value and credential, spans in the original text,
    #: reading order, no overlaps (what :func:`sensitive_matches` returns), from the same
    #: searches that made the findings; None otherwise.
    sensitive: tuple[Sensitive, ...] | None = None


def _view_name(view: View) -> str:
    names = []
    while view is not None:
        names.append(view.name)
        view = view.parent
    return next((n for n in names if n != "canonical"), "canonical")


def _merge(
    found: list[Finding], view: View, extra: list[Finding], order: dict[str, int]
) -> list[Finding]:
    known = {f.policy_id for f in found}
    added = False
    for f in extra:
        if f.policy_id in known:
            continue
        span = None
        if f.span is not None and len(view.text) <= SPAN_LIMIT:
            span = view.to_original(f.span)
        reason = f.reason.rstrip(".") + f" ({_READABLE[_view_name(view)]})."
        found.append(replace(f, span=span, reason=reason))
        known.add(f.policy_id)
        added = True
    return sorted(found, key=lambda f: order[f.policy_id]) if added else found


def _mapped(view: View, found: list[Finding]) -> list[Finding]:
    if len(view.text) > SPAN_LIMIT:
        return [replace(f, span=None) for f in found]
    return [f if f.span is None else replace(f, span=view.to_original(f.span)) for f in found]


def scan_views(
    text: str,
    *,
    sqli: bool = True,
    data: bytes | None = None,
    layout: bool = False,
    collect: bool = False,
) -> ViewFindings:
    """SQL-injection (unless ``sqli=False``) and PII findings on ``text`` and all its views.

    Text that is not ASCII is scanned in its canonical view only (the text as a reader sees
    it; every ASCII pattern that matches the original matches there too), so a non-ASCII
    prompt pays for one scan, not two. Each text scanned gets one set pass
    (:func:`~.onepass.candidates`) that serves both scanners and also says which decoded
    views it needs, its own and those of the next decoding round. ``data`` is ``text`` as
    UTF-8, when the caller has it. Findings from the decoded views name the view.
    ``collect=True`` also keeps every PII value and credential found on the way
    (:attr:`ViewFindings.sensitive`), so redaction needs no second pass.
    """
    base = None if text.isascii() else canonical_view(text)
    scan = text if base is None else base.text
    first = candidates(scan, data if base is None else None)
    found_sqli = scan_sqli(scan, data=first.data, hits=first.sqli) if sqli else []
    every_pii: list[PiiMatch] | None = [] if collect else None
    every_secret: list[SecretMatch] | None = [] if collect else None
    found_pii = scan_pii(scan, data=first.data, rules=first.pii, layout=layout, every=every_pii)
    found_secrets = (
        scan_secrets(scan, data=first.data, rules=first.secrets, every=every_secret)
        if first.secrets
        else []
    )
    sensitive: list[Sensitive] = []

    def keep(view: View | None) -> None:  # every value found so far, mapped to the original
        if every_pii is None or every_secret is None:
            return
        to_original = (lambda span: span) if view is None else view.to_original
        sensitive.extend(Sensitive(m.pii_type, "pii", to_original(m.span)) for m in every_pii)
        sensitive.extend(
            Sensitive(m.secret_type, "secret", to_original(m.span)) for m in every_secret
        )
        every_pii.clear()
        every_secret.clear()

    keep(base)
    if base is not None:
        found_sqli, found_pii = _mapped(base, found_sqli), _mapped(base, found_pii)
        found_secrets = _mapped(base, found_secrets)
    # A view decoded again (double encoding) has its pass made when its own views are
    # chosen; the pass is kept for scanning it below, keyed by the view's text (whose hash
    # the decoder's "seen" table has computed already).
    passes: dict[str, Candidates] = {}

    def triggers_of(view_text: str) -> tuple[str, ...]:
        passes[view_text] = found = candidates(view_text)
        return found.views

    views = decoded_views(scan, base, probe=triggers_of, triggers=first.views)
    for view in views:
        name = _view_name(view)
        seen = passes.get(view.text) or candidates(view.text)
        if sqli and name not in _PII_ONLY:
            found = scan_sqli(view.text, data=seen.data, hits=seen.sqli)
            found_sqli = _merge(found_sqli, view, found, _SQLI_ORDER)
        if name != "sql":
            found = scan_pii(
                view.text, data=seen.data, rules=seen.pii, layout=layout, every=every_pii
            )
            found_pii = _merge(found_pii, view, found, _PII_ORDER)
        if seen.secrets and name != "sql" and name not in _PII_ONLY:
            found = scan_secrets(view.text, data=seen.data, rules=seen.secrets, every=every_secret)
            found_secrets = _merge(found_secrets, view, found, _SECRET_ORDER)
        keep(view)
    names = (["canonical"] if base is not None else []) + [_view_name(v) for v in views]
    admin = first.admin if base is None else None
    kept = tuple(_first_wins(sensitive)) if collect else None
    return ViewFindings(found_sqli, found_pii, found_secrets, tuple(names), admin, kept)


@dataclass(frozen=True, slots=True)
class Sensitive:
    """A value to redact: its type (``ssn``, ``aws_access_key``), family and span."""

    kind: str
    family: str  # "pii" or "secret"
    span: tuple[int, int]

    def __repr__(self) -> str:
        return f"<Sensitive {self.kind} [{self.span[0]}:{self.span[1]}]>"


def sensitive_matches(
    text: str, *, pii: bool = True, secrets: bool = True, layout: bool = False
) -> list[Sensitive]:
    """Every PII value (``pii``) and credential (``secrets``) in ``text`` or its views, spans
    in ``text``, reading order, no overlaps: what redaction replaces.

    Where two values overlap, the earlier (then longer) one wins, so each character of the
    original belongs to at most one value. ``layout`` as in :func:`~.pii.explain_pii`.
    """
    if text.isascii():  # one set pass answers "nothing here" for most text
        first = candidates(text)
        if not (first.pii or first.secrets or first.views):
            return []
    views = [v for v in build_views(text) if v.name != "sql"]
    found: list[Sensitive] = []
    if pii:
        found += [Sensitive(m.pii_type, "pii", m.span) for m in explain_pii(text, layout=layout)]
        for view in views:
            for m in explain_pii(view.text, layout=layout):
                found.append(Sensitive(m.pii_type, "pii", view.to_original(m.span)))
    if secrets:
        found += [Sensitive(m.secret_type, "secret", m.span) for m in explain_secrets(text)]
        for view in views:
            if view.name in _PII_ONLY:
                continue
            for m in explain_secrets(view.text):
                found.append(Sensitive(m.secret_type, "secret", view.to_original(m.span)))
    return _first_wins(found)


def _first_wins(found: list[Any]) -> list[Any]:
    found.sort(key=lambda m: (m.span[0], -m.span[1]))
    kept: list[Any] = []
    for m in found:
        if m.span[1] > m.span[0] and not (kept and m.span[0] < kept[-1].span[1]):
            kept.append(m)
    return kept


def pii_matches(text: str) -> list[PiiMatch]:
    """Every validated PII value in ``text`` or its views, spans in ``text``, no overlaps.

    Where two matches overlap, the earlier (then longer) one wins, so each character of the
    original belongs to at most one value: what :func:`~.redaction.redact` needs.
    """
    matches = explain_pii(text)
    for view in build_views(text):
        if view.name == "sql":
            continue
        for m in explain_pii(view.text):
            matches.append(replace(m, span=view.to_original(m.span)))
    return _first_wins(matches)
