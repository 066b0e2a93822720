"""A streamed answer checked by the gateway as it arrives: the app's side of the hold-back.

Gateway mode's app holds the stream itself, so it holds back too. :class:`ReplyStream`
takes the model's pieces and gives back what may be shown: every ``every`` new characters it
sends what it has not shown yet to ``POST /api/reply/check`` (an extension of the embedded
gateway) with ``final=False`` and what was shown as context; the gateway answers with the
inspected text it can decide now and the number of characters it ``held``, which go again
with the next window. :meth:`finish` sends the rest with ``final=True``. A value is never
shown in part, and an answer the gateway refuses stops with :attr:`refused` set.
Described in ``docs/gateway.md`` (replies); used like this:

>>> check = ReplyStream(gw, pre.context_id)                # doctest: +SKIP
>>> async for piece in model_stream:                       # doctest: +SKIP
...     show(await check.feed(piece))
>>> show(await check.finish())                             # doctest: +SKIP
"""

from __future__ import annotations

from .gateway_client import GatewayClient
from .results import ReplyCheck

__all__ = ["ReplyStream"]


class ReplyStream:
    """Checks one streamed answer window by window (see the module docstring)."""

    def __init__(self, gw: GatewayClient, context_id: str, *, every: int = 64) -> None:
        self.gw = gw
        self.context_id = context_id
        self.every = every
        self.pending = ""  # received, not shown yet
        self.shown = ""  # what the app has shown (the left context of the next window)
        self.next = every + 1  # check when this much waits: the first token comes early
        self.checks: list[ReplyCheck] = []
        self.refused: ReplyCheck | None = None

    async def feed(self, piece: str) -> str:
        """Take one piece of the answer; return what may be shown now (maybe "")."""
        if self.refused is not None:
            return ""
        self.pending += piece
        if len(self.pending) < self.next:
            return ""
        return await self._check(final=False)

    async def finish(self) -> str:
        """The answer is complete: check and return the rest."""
        if self.refused is not None or not self.pending:
            return ""
        return await self._check(final=True)

    async def _check(self, *, final: bool) -> str:
        check = await self.gw.check_reply(
            self.context_id, self.pending, context=self.shown[-self.every :], final=final
        )
        self.checks.append(check)
        if not check.approved:
            self.refused, self.pending = check, ""
            return ""
        self.pending = self.pending[len(self.pending) - check.held :] if check.held else ""
        self.shown += check.text
        self.next = len(self.pending) + self.every
        return check.text
