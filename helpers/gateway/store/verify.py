"""Verifying the hash chain a segment at a time, so a long trail can report progress.

:func:`verify_segment` checks up to ``limit`` rows after a :class:`ChainCursor` (the last row
already checked) and returns the report when the chain is done or broken, else the cursor
to go on from. Walking a whole chain segment by segment finds exactly what
:func:`.chain.verify_chain` finds in one pass; a test checks that on intact and tampered
trails, with the tampering on a segment boundary too. Each segment is its own short read,
which is what lets the gateway verify in its reader process between other reads.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .chain import GENESIS, ChainHead, ChainReport, chain_end, chain_rows, check_link

__all__ = ["ChainCursor", "verify_segment"]


@dataclass(frozen=True, slots=True)
class ChainCursor:
    """Where a segmented verification stands: the last row checked and how many so far."""

    seq: int = 0
    row_hash: str = GENESIS
    table: str | None = None
    checked: int = 0

    def __repr__(self) -> str:
        return f"<ChainCursor seq={self.seq} checked={self.checked}>"


def verify_segment(
    conn: sqlite3.Connection,
    tables: Mapping[str, Sequence[str]],
    cursor: ChainCursor,
    limit: int,
    head: ChainHead | None = None,
) -> tuple[ChainReport | None, ChainCursor]:
    """Check up to ``limit`` rows after ``cursor``: ``(report, cursor)``.

    ``report`` is ``None`` while rows remain (go on from the returned cursor), else the
    final :class:`ChainReport`. The row at the cursor is read again and must be the one
    checked last; anything else at or before its seq is a repeated or inserted row.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    n = limit + 1  # room for the cursor's own row, read again
    start = cursor.seq if cursor.checked else -(1 << 63)  # a tampered seq may be negative
    fetched = [list(chain_rows(conn, table, cols, start, n)) for table, cols in tables.items()]
    exhausted = all(len(rows) < n for rows in fetched)
    expected_prev, last_seq, checked = cursor.row_hash, cursor.seq, cursor.checked
    last_table, seen_boundary, done_here = cursor.table, not cursor.checked, 0
    rows = list(heapq.merge(*fetched, key=lambda r: r[0]))
    for seq, table, values, prev, stored in rows:
        if done_here == limit:
            return None, ChainCursor(last_seq, expected_prev, last_table, checked)
        if not seen_boundary and seq == cursor.seq and table == cursor.table:
            if stored == cursor.row_hash:
                seen_boundary = True  # the last row of the previous segment
                continue
        broken = check_link(table, values, prev, stored, expected_prev, last_seq, checked)
        if broken is not None:
            return broken, cursor
        expected_prev, last_seq, last_table = stored, seq, table
        checked, done_here = checked + 1, done_here + 1
    if not exhausted:
        return None, ChainCursor(last_seq, expected_prev, last_table, checked)
    if cursor.checked and not seen_boundary:
        # The row the previous segment ended on is gone (or changed) since.
        return ChainReport(
            False,
            checked,
            (str(cursor.table), "?", cursor.seq),
            f"the row at seq {cursor.seq} changed or vanished during verification",
        ), cursor
    return chain_end(head, last_seq, checked), cursor
