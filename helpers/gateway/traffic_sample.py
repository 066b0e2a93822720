"""An opt-in sample of recent traffic, kept masked, for replaying a candidate policy.

Off by default. With ``GATEWAY_TRAFFIC_SAMPLE=N`` the gateway keeps the last ``N`` queries
it decided, each masked with typed placeholders (``[SSN_1]``, ``[CREDIT_CARD_1]``: the same
:func:`~.policies.redaction.mask` the trail uses) before it is kept, so no raw value is ever
held; with it, the role and department of the user who sent it (a rule may be scoped to
them), never the user token. Queries older than ``GATEWAY_TRAFFIC_SAMPLE_MAX_AGE_S`` (a week
by default) are dropped. Masking runs after the reply has gone out, so a pre-check pays
only for scheduling it.

The operator exports the sample from ``GET /api/policies/traffic-sample`` (guarded like
reload and the trail) for ``python -m helpers.gateway.policy_check --sample FILE``.
Introduced in ``14_change_a_policy.ipynb``.

>>> sample = TrafficSample(capacity=2)
>>> sample.add("My SSN is 123-45-6789", "engineer", "platform")
>>> [row.text for row in sample.rows()]
['My SSN is [SSN_1]']
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .policies.redaction import mask
from .validation import Call

__all__ = ["SAMPLE_PATH", "SampleRow", "TrafficSample", "TrafficSampleEndpoint"]

SAMPLE_PATH = "/api/policies/traffic-sample"


@dataclass(frozen=True, slots=True)
class SampleRow:
    """One kept query: masked text, who sent it (role and department only), and when."""

    text: str
    role: str
    department: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "role": self.role, "department": self.department, "at": self.at}


class TrafficSample:
    """The last ``capacity`` masked queries, none older than ``max_age_s``."""

    def __init__(
        self,
        capacity: int = 10_000,
        max_age_s: float = 7 * 24 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.capacity = capacity
        self.max_age_s = max_age_s
        self.clock = clock
        self._rows: deque[SampleRow] = deque(maxlen=capacity)

    def add(self, query: str, role: str, department: str) -> None:
        """Mask ``query`` and keep it (the oldest goes when the sample is full)."""
        self._rows.append(SampleRow(mask(query), role, department, self.clock()))

    def rows(self) -> list[SampleRow]:
        """The kept rows, oldest first, after dropping those past the age limit."""
        limit = self.clock() - self.max_age_s
        while self._rows and self._rows[0].at < limit:
            self._rows.popleft()
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"<TrafficSample {len(self)}/{self.capacity} masked queries>"


class TrafficSampleEndpoint:
    """``GET /api/policies/traffic-sample``: the operator's export of the sample."""

    def __init__(self, governance: Any, auth: Any) -> None:
        self.governance = governance
        self.auth = auth

    async def export(self, call: Call) -> tuple[int, dict[str, Any]]:
        self.auth.check_operator(call)
        sample: TrafficSample | None = self.governance.sample
        if sample is None:
            return 200, {
                "success": True,
                "enabled": False,
                "rows": [],
                "hint": "The sample is off; start the gateway with GATEWAY_TRAFFIC_SAMPLE=10000",
            }
        rows = sample.rows()
        return 200, {
            "success": True,
            "enabled": True,
            "capacity": sample.capacity,
            "max_age_s": sample.max_age_s,
            "rows": [row.as_dict() for row in rows],
        }
