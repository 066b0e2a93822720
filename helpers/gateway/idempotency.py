"""Idempotent audits: a retried audit is the same audit, never a second record.

A client that retries an audit (its own retry, or a background queue that redelivers after
a lost reply) sends the same body twice. AxonFlow stores both. This gateway answers the
second copy with the first one's ``audit_id`` and stores nothing new (a documented
deviation, contract Part B):

* **Same body.** An audit of a ``context_id`` whose recorded fields (client, provider,
  model, the three token counts, ``latency_ms``, ``metadata``) equal an audit already
  stored for that context is that audit. ``response_summary`` is never stored, so it does
  not tell two audits apart either.
* **Different body.** A second, different audit of the same context is accepted as
  AxonFlow accepts it (a new ``audit_id``); the trail can count such contexts
  (:func:`helpers.trail.contexts_with_repeated_audits`).
* **Idempotency-Key.** A client may name its intent with the header: the same key with the
  same body is the same audit; the same key with a *different* body is a 409, because the
  client reused a key by mistake. Keys are remembered while their context is alive.
* **Concurrency.** Lookup and reservation happen in one synchronous step on the event loop,
  before any ``await``: of two copies arriving together, the second finds the first and
  waits for *its* commit, so neither is acknowledged before the record is durable.

The index lives in memory for as long as contexts live (their TTL). After a restart, or for
contexts evicted when the index is full, the store is asked instead: slower, still correct.
Introduced in ``10_real_application.ipynb``.

>>> index = AuditIndex(horizon="2000-01-01T00:00:00.000000Z")
>>> fp = fingerprint("community", "openai", "gpt-4o", 1, 2, 3, 40, None)
>>> index.find("ctx-1", "2099-01-01T00:00:00.000000Z", fp, lambda: []) is None
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .store import AuditRecord, AuditStore
from .validation import AuditRequest, Reject

__all__ = [
    "MAX_KEY_LENGTH",
    "AuditIndex",
    "KeyConflict",
    "Known",
    "audit_fingerprint",
    "fingerprint",
    "repeat_of",
    "request_key",
    "stored_audits",
]

MAX_KEY_LENGTH = 255
_MAX_CONTEXTS = 200_000
_PRUNE_EVERY = 4096


def fingerprint(
    client_id: str,
    provider: str,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    total_tokens: int,
    latency_ms: int | None,
    metadata: Mapping[str, Any] | None,
) -> bytes:
    """A digest of what an audit records: equal digests mean the same audit.

    >>> fingerprint("c", "openai", "m", 1, 2, 3, 0, {"a": 1, "b": 2}) == fingerprint(
    ...     "c", "openai", "m", 1, 2, 3, 0, {"b": 2, "a": 1})
    True
    """
    fields = [
        client_id,
        provider,
        model,
        prompt_tokens,
        completion_tokens,
        total_tokens,
        latency_ms or 0,
        metadata or None,
    ]
    return hashlib.blake2b(
        orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


@dataclass(frozen=True, slots=True)
class Known:
    """An audit already accepted: its id and the handle to await its commit (or ``None``
    when it came from the store, so it is durable already)."""

    audit_id: str
    pending: Any = None


class KeyConflict(Exception):
    """The same ``Idempotency-Key`` arrived with a different audit body."""


class _Entry:
    __slots__ = ("audits", "expires_at")

    def __init__(self, expires_at: str, audits: dict[bytes, Known]) -> None:
        self.expires_at = expires_at
        self.audits = audits


class AuditIndex:
    """Accepted audits by context, so a repeat is recognised without a database read.

    ``horizon`` is an ``expires_at`` timestamp: a context expiring at or before it may have
    audits this index never saw (from before a restart, or evicted), so the store is asked.
    """

    def __init__(
        self,
        horizon: str,
        max_contexts: int = _MAX_CONTEXTS,
        now: Callable[[], str] | None = None,
    ) -> None:
        self.horizon = horizon
        self.max_contexts = max_contexts
        self._now = now
        self._contexts: dict[str, _Entry] = {}
        self._keys: dict[tuple[str, str], tuple[str, bytes, str]] = {}
        self._adds = 0

    def __len__(self) -> int:
        return len(self._contexts)

    def find(
        self,
        context_id: str,
        expires_at: str,
        digest: bytes,
        stored: Callable[[], Iterable[tuple[bytes, str]]],
        key: tuple[str, str] | None = None,
    ) -> Known | None:
        """The audit this one repeats, or ``None`` when it is new.

        ``stored()`` lists ``(fingerprint, audit_id)`` of the context's audits in the store;
        it is called only for contexts this index cannot vouch for. A reused ``key`` with a
        different context or body raises :class:`KeyConflict`.
        """
        if key is not None:
            seen = self._keys.get(key)
            if seen is not None and (seen[0], seen[1]) != (context_id, digest):
                raise KeyConflict(key[1])
        entry = self._contexts.get(context_id)
        if entry is None and expires_at <= self.horizon:
            entry = self._load(context_id, expires_at, stored())
        known = None if entry is None else entry.audits.get(digest)
        if known is not None and key is not None:
            self._keys.setdefault(key, (context_id, digest, expires_at))
        return known

    def add(
        self,
        context_id: str,
        expires_at: str,
        digest: bytes,
        known: Known,
        key: tuple[str, str] | None = None,
    ) -> None:
        """Remember an audit just appended (call before the first ``await``)."""
        self._adds += 1
        if self._now is not None and self._adds % _PRUNE_EVERY == 0:
            self.prune(self._now())
        entry = self._contexts.get(context_id)
        if entry is None:
            if len(self._contexts) >= self.max_contexts:
                self._evict()
            entry = self._contexts[context_id] = _Entry(expires_at, {})
        entry.audits[digest] = known
        if key is not None:
            self._keys[key] = (context_id, digest, expires_at)

    def forget(self, context_id: str, digest: bytes) -> None:
        """Drop an audit whose commit failed, so a retry is stored afresh."""
        entry = self._contexts.get(context_id)
        if entry is not None:
            entry.audits.pop(digest, None)
        for key, (ctx, fp, _) in list(self._keys.items()):
            if ctx == context_id and fp == digest:
                del self._keys[key]

    def prune(self, now: str) -> int:
        """Drop contexts that expired before ``now`` (their audits are refused anyway)."""
        gone = [cid for cid, entry in self._contexts.items() if entry.expires_at < now]
        for cid in gone:
            del self._contexts[cid]
        for key in [k for k, v in self._keys.items() if v[2] < now]:
            del self._keys[key]
        return len(gone)

    def _load(
        self, context_id: str, expires_at: str, rows: Iterable[tuple[bytes, str]]
    ) -> _Entry | None:
        audits = {digest: Known(audit_id) for digest, audit_id in rows}
        if not audits:
            return None
        if len(self._contexts) >= self.max_contexts:
            self._evict()
        entry = self._contexts[context_id] = _Entry(expires_at, audits)
        return entry

    def _evict(self) -> None:
        # The oldest tenth goes; contexts expiring up to the newest evicted one are looked
        # up in the store from now on.
        count = max(1, len(self._contexts) // 10)
        for cid in list(self._contexts)[:count]:
            entry = self._contexts.pop(cid)
            self.horizon = max(self.horizon, entry.expires_at)


def audit_fingerprint(audit: AuditRequest | AuditRecord) -> bytes:
    """:func:`fingerprint` of a parsed audit request or of a stored audit (same fields)."""
    return fingerprint(
        audit.client_id,
        audit.provider,
        audit.model,
        audit.prompt_tokens,
        audit.completion_tokens,
        audit.total_tokens,
        audit.latency_ms,
        audit.metadata,
    )


def request_key(header: str, client_id: str) -> tuple[str, str] | None:
    """The ``Idempotency-Key`` header scoped to its client, or ``None`` when not sent."""
    if not header:
        return None
    if len(header) > MAX_KEY_LENGTH or not header.isprintable():
        raise Reject(
            400,
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters, "
            f"got {len(header)} characters",
        )
    return client_id, header


def stored_audits(store: AuditStore, context_id: str) -> list[tuple[bytes, str]]:
    """``(fingerprint, audit_id)`` of every stored audit of ``context_id``."""
    return [
        (audit_fingerprint(a), a.audit_id)
        for a in store.list_audits(context_id=context_id, limit=100_000)
    ]


async def repeat_of(
    index: AuditIndex, store: AuditStore, req: AuditRequest, expires_at: str, key_header: str
) -> tuple[str | None, bytes, tuple[str, str] | None]:
    """``(audit_id it repeats or None, fingerprint, scoped key)`` for an audit request.

    Nothing awaits before the lookup, so two copies on the event loop cannot both miss;
    a repeat of an audit not yet durable waits for that audit's commit.
    """
    digest, key = audit_fingerprint(req), request_key(key_header, req.client_id)
    try:
        known = index.find(
            req.context_id, expires_at, digest, lambda: stored_audits(store, req.context_id), key
        )
    except KeyConflict:
        raise Reject(
            409,
            "Idempotency-Key was already used for a different audit; "
            "send a new key for a new audit",
        ) from None
    if known is None:
        return None, digest, key
    if known.pending is not None:
        await store.committed(known.pending)
    return known.audit_id, digest, key
