"""Asking the gateway why it decided as it did: ``GET /api/v1/decisions/{id}/explain``.

Every pre-check reply carries a ``decision_id`` (AxonFlow v11; the embedded gateway sends the
same value as ``context_id``). The gateway keeps each decision for a while and explains it
on request: the posture in force, every policy family and whether it ran, each finding with
the action it asked for and where it was found (offsets, never the value), and the steps
from the findings to the verdict. :class:`Explanation` is that reply, read.
Introduced in ``14_change_a_policy.ipynb``.

>>> print(gw.explain(ctx.decision_id).summary())                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = ["Explanation", "explain_path"]


def explain_path(decision_id: str) -> str:
    """The explain path for ``decision_id`` (quoted, so any id stays one path segment)."""
    if not decision_id:
        raise ValueError("decision_id is empty; pass the decision_id of a pre-check reply")
    return f"/api/v1/decisions/{quote(decision_id, safe='')}/explain"


@dataclass(frozen=True, slots=True)
class Explanation:
    """One decision, explained. ``findings`` and ``families`` are the gateway's own rows
    (dicts); :meth:`summary` prints them as a short text."""

    decision_id: str
    verdict: str
    approved: bool
    block_reason: str | None
    findings: tuple[Mapping[str, Any], ...]
    families: tuple[Mapping[str, Any], ...]
    posture: Mapping[str, Any]
    steps: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> Explanation:
        return cls(
            decision_id=str(data.get("decision_id", "")),
            verdict=str(data.get("verdict", "")),
            approved=bool(data.get("approved")),
            block_reason=data.get("block_reason"),
            findings=tuple(data.get("findings") or ()),
            families=tuple(data.get("families") or ()),
            posture=dict(data.get("posture") or {}),
            steps=tuple(data.get("steps") or ()),
            raw=dict(data),
        )

    @property
    def policies(self) -> list[str]:
        return [str(f.get("policy_id")) for f in self.findings]

    def summary(self) -> str:
        """A few lines: the verdict, each finding (action, what set it, where), the steps."""
        lines = [f"decision {self.decision_id}: {self.verdict}"]
        for f in self.findings:
            where = f" at {f['span'][0]}-{f['span'][1]}" if f.get("span") else ""
            view = f" ({f['view']} view)" if f.get("view") else ""
            lines.append(
                f"  {f.get('policy_id')}: {f.get('action')} [{f.get('action_set_by')}]{where}{view}"
            )
        lines += [f"  - {step}" for step in self.steps]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Explanation {self.decision_id} {self.verdict} policies={self.policies}>"
