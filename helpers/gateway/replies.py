"""Replies are governed too: the model's answer is inspected before the caller sees it.

A model can repeat a card number from a retrieved document or a key from a tool result; a
gateway that checks only what goes *to* the model hands that straight to the end user. The
proxy paths (``/api/request``, ``/v1/chat/completions``) therefore pass every answer through
a :class:`ReplyInspector`, with the same detectors and the same switches as the prompt:

* ``PII_ACTION`` / ``SECRET_ACTION`` = ``redact``: a value the caller never sent is replaced
  by a typed placeholder that is never restored (``[SSN_2]``), while the caller's own values,
  redacted on the way in, come back restored ("echo fidelity");
* ``block``: a critical value (a card, an SSN, any credential) stops the answer: a refusal in
  the API's error shape, or, in a stream, an error event in place of the rest;
* ``warn`` / ``log``: forwarded and reported in the audit.

Streams are inspected with a bounded hold-back. Everything that can no longer be part of a
value is relayed at once; only a tail of :data:`HOLD_BACK` characters, which could still be
the start of one, waits for the next chunk, whatever the splits. A value that is still
growing when a chunk ends (a token longer than the window: ``ghp_…``, ``sk-proj-…``) is held
from its start until it ends, up to :data:`MAX_HELD` characters (past that the held text is
redacted whole, failing closed). So no part of a value is emitted before it is redacted.
The limit: a value longer than the window that nothing recognises until its end (a very long
e-mail address) can be emitted in part. Time to first token grows by the time the first
:data:`HOLD_BACK` characters take to arrive. Introduced in ``11_proxy_mode.ipynb``.

>>> inspector = ReplyInspector(actions={"pii": "redact", "secret": "block"})
>>> inspector.feed("The card on file is 4111 1111 11") + inspector.feed("11 1111, as you asked.")
''
>>> inspector.finish()
'The card on file is [CREDIT_CARD_1], as you asked.'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .policies.obfuscation import Sensitive, sensitive_matches
from .policies.pii import CRITICAL_PII
from .policies.redaction import Placeholders, Redaction, key_of

__all__ = ["HOLD_BACK", "MAX_HELD", "ReplyInspector", "ReplyVerdict"]

#: Characters held back at the end of a stream: longer than any value the detectors know of
#: fixed length (an IBAN printed in groups is 42, a card 23, an SSN 11), so a value that
#: starts before the held tail has ended inside what has arrived.
HOLD_BACK = 64
#: Left context kept from what was already released, for labels ("SSN: …") before a value.
CONTEXT = 48
#: The most a growing value may hold the stream back before it is redacted whole.
MAX_HELD = 16 * 1024
_WHY = {"pii": "a personal-data value", "secret": "a credential"}


@dataclass(frozen=True, slots=True)
class ReplyVerdict:
    """What the inspection of one answer found and did (types and counts, never a value)."""

    policies: tuple[str, ...]
    blocked_by: str | None
    redacted: Mapping[str, int]
    cut: bool = False

    @property
    def note(self) -> dict[str, object]:
        """The audit's ``metadata.reply``."""
        note: dict[str, object] = {"policies": list(self.policies)}
        if self.redacted:
            note["redacted"] = {"types": list(self.redacted), "count": sum(self.redacted.values())}
        if self.blocked_by:
            note["blocked_by"] = self.blocked_by
        if self.cut:
            note["cut"] = True
        return note

    def __repr__(self) -> str:
        state = f"blocked by {self.blocked_by}" if self.blocked_by else "passed"
        return f"<ReplyVerdict {state} policies={list(self.policies)}>"


class ReplyInspector:
    """Inspects one answer, whole (:meth:`check`) or chunk by chunk (:meth:`feed`,
    :meth:`finish`), and restores the caller's placeholders in what it releases.

    ``actions`` maps ``"pii"`` and ``"secret"`` to the switch in force; ``redaction`` is the
    request's, whose values are the caller's own: they are restored, never reported.
    ``actions=None`` inspects nothing and only restores (``GATEWAY_INSPECT_REPLIES=false``).
    ``prefix`` marks the placeholders of leaked values (gateway mode uses ``REDACTED_``, so
    they never meet the numbering the app restores).
    """

    def __init__(
        self,
        actions: Mapping[str, str] | None,
        redaction: Redaction | None = None,
        *,
        caller_values: Iterable[str] = (),
        ssn_layout: bool = False,
        prefix: str = "",
    ) -> None:
        self.ssn_layout = ssn_layout
        self.inspects = actions is not None  # None: restore the placeholders, inspect nothing
        self.actions = actions or {}
        self.restorer = redaction.restorer() if redaction is not None else None
        values = dict(redaction.values) if redaction is not None else {}
        self.names = Placeholders.following(values)
        self.names.prefix = prefix
        self.own = {key_of(v) for v in values.values()} | {key_of(v) for v in caller_values}
        self.released_tail = ""  # what was released last, kept as left context
        self.pending = ""
        # Scan when pending reaches this length; with nothing to inspect, at every chunk.
        self.next_scan = HOLD_BACK + 1 if self.inspects else 0
        self.found: dict[str, None] = {}  # policy ids, in the order found
        self.redacted: dict[str, int] = {}
        self.blocked_by: str | None = None
        self.reason: str | None = None
        self.cut = False

    # -- results -------------------------------------------------------------------------------
    @property
    def verdict(self) -> ReplyVerdict:
        return ReplyVerdict(tuple(self.found), self.blocked_by, dict(self.redacted), self.cut)

    @property
    def blocked(self) -> bool:
        return self.blocked_by is not None

    @property
    def idle(self) -> bool:
        """True when it neither inspects nor restores: the answer may be relayed untouched."""
        return not self.inspects and self.restorer is None

    # -- whole answers ----------------------------------------------------------------------
    def check(self, text: str) -> str:
        """The whole answer as the caller may see it ("" when it is blocked)."""
        return self.feed(text) + self.finish()

    # -- streams ---------------------------------------------------------------------------------
    def feed(self, chunk: str) -> str:
        """Take one chunk; return what may be released now (maybe "")."""
        if self.blocked:
            return ""
        self.pending += chunk
        if len(self.pending) < self.next_scan:
            return ""
        return self._release(final=False)

    def finish(self) -> str:
        """The end of the answer: release everything that is left, inspected."""
        if self.blocked:
            return ""
        out = self._release(final=True)
        if self.restorer is not None:
            out += self.restorer.flush()
        return out

    def window(self, text: str, context: str = "", *, final: bool) -> str:
        """One stateless step, for a caller that keeps the stream itself (gateway mode's
        ``POST /api/reply/check``): ``text`` is what it holds back, ``context`` what it has
        already shown. Returns what may be shown now; :attr:`pending` keeps the rest, which
        the caller sends again with the next chunk (or with ``final=True`` at the end)."""
        self.released_tail = context[-CONTEXT:]
        self.pending = text
        return self._release(final=final)

    def stop(self) -> None:
        """The stream ended early (the caller left, the provider failed): nothing more."""
        self.cut = self.cut or bool(self.pending)
        self.pending = ""

    def _release(self, *, final: bool) -> str:
        if not self.inspects:
            released, self.pending = self.pending, ""
            return self.restorer.feed(released) if self.restorer is not None else released
        window = self.released_tail + self.pending
        offset = len(self.released_tail)
        size = len(self.pending)
        cut = size if final else max(0, size - HOLD_BACK)
        keep: list[tuple[Sensitive, str]] = []
        for m in sensitive_matches(window, layout=self.ssn_layout):
            start, end = max(m.span[0] - offset, 0), m.span[1] - offset
            if end <= 0:
                continue  # inside what was released before: already decided
            if not final and end >= size - 1 and size - start <= MAX_HELD:
                cut = min(cut, start)  # may still grow: hold it from its start
                continue
            if start < cut:
                cut = max(cut, end)  # a value leaves whole, never in part
                value = self.pending[start:end]
                if key_of(value) not in self.own:  # the caller's own value is no leak
                    keep.append((Sensitive(m.kind, m.family, (start, end)), value))
        if self._blocked_by(keep):
            self.pending = ""
            self.cut = True
            return ""
        released = self._redact(self.pending[:cut], keep)
        self.released_tail = (self.released_tail + self.pending[:cut])[-CONTEXT:]
        self.pending = self.pending[cut:]
        self.next_scan = len(self.pending) + HOLD_BACK + 1
        if self.restorer is not None:
            released = self.restorer.feed(released)
        return released

    def _blocked_by(self, matches: list[tuple[Sensitive, str]]) -> bool:
        for m, _ in matches:
            if m.family == "pii" and m.kind not in CRITICAL_PII and self.actions["pii"] == "block":
                continue  # non-critical personal data warns under block, as on the prompt
            if self.actions[m.family] == "block":
                self.blocked_by = f"sys_{m.family}_{m.kind}"
                self.found.setdefault(self.blocked_by)
                self.reason = (
                    f"Reply blocked by policy {self.blocked_by}: the model's answer contains "
                    f"{_WHY[m.family]} ({m.kind.replace('_', ' ')}) the caller did not send."
                )
                return True
        return False

    def _redact(self, text: str, matches: list[tuple[Sensitive, str]]) -> str:
        out: list[str] = []
        pos = 0
        for m, value in matches:
            self.found.setdefault(f"sys_{m.family}_{m.kind}")
            if self.actions[m.family] != "redact":
                continue
            start, end = m.span
            out.append(text[pos:start])
            out.append(self.names.name(m.kind, value))
            self.redacted[m.kind] = self.redacted.get(m.kind, 0) + 1
            pos = end
        out.append(text[pos:])
        return "".join(out)
