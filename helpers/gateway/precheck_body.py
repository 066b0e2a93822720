"""The pre-check's reply.

Part A of the contract fixes ``context_id``, ``approved``, ``policies``, ``expires_at`` and
the optional ``block_reason``, ``rate_limit`` and ``requires_redaction``. Current AxonFlow
agents (v11) add ``decision_id`` (the same value as ``context_id``) and ``verdict``
(``allow`` | ``deny`` | ``needs_approval``); this gateway sends both on every reply
(``needs_approval`` when only ``require_approval`` rules stop the request). ``log`` findings
are stored in the trail but not listed in ``policies``. When
``PII_ACTION=redact`` it also sends ``redacted_query``, a documented extension: the query with
each PII value replaced by a typed placeholder (``[SSN_1]``), so the app does not have to find
the values itself. Introduced in ``07_obfuscation_and_redaction.ipynb``.
"""

from __future__ import annotations

from typing import Any

from .engine import Decision

__all__ = ["response_body"]


def response_body(context_id: str, expires_at: str, decision: Decision) -> dict[str, Any]:
    """The JSON body of a pre-check reply (``block_reason`` and ``rate_limit`` added later)."""
    body: dict[str, Any] = {
        "context_id": context_id,
        "decision_id": context_id,
        "approved": decision.approved,
        "verdict": decision.verdict,
        "policies": decision.reported_policies,
        "expires_at": expires_at,
        "requires_redaction": decision.requires_redaction,
    }
    if decision.redaction is not None:
        body["redacted_query"] = decision.redaction.text
    return body
