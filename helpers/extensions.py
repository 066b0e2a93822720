"""A lesson that needs an extension of the embedded gateway, whatever gateway the reader has.

Against the embedded gateway nothing changes: the lesson runs where the notebook's other
cells run. Against a live AxonFlow agent (which offers no extension) it runs on an embedded
gateway started for that purpose, and one printed line says so; when it may not start one,
or starting fails, it gets a printed reason to skip instead. Introduced in
``10_real_application.ipynb``.

>>> with extension_gateway("audit_records", stack.gateway.url) as ext:   # doctest: +SKIP
...     if ext.ready:
...         records = SyncGatewayClient(url=ext.url).records()
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .client.capabilities import probe
from .errors import GatewayError
from .server import RunningService, start_gateway

__all__ = ["ExtensionGateway", "extension_gateway"]


@dataclass
class ExtensionGateway:
    """Where a lesson that needs ``extensions`` runs: ``url`` (``None`` when it is skipped,
    and then ``reason`` says why). ``embedded`` is true when the gateway was started here;
    :meth:`close` (or leaving the ``with`` block) stops it."""

    extensions: tuple[str, ...]
    url: str | None
    reason: str | None = None
    service: RunningService | None = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self.url is not None

    @property
    def embedded(self) -> bool:
        return self.service is not None

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()

    def __enter__(self) -> ExtensionGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def extension_gateway(
    extensions: str | Iterable[str],
    url: str,
    *,
    lesson: str = "this section",
    start: bool = True,
    quiet: bool = False,
) -> ExtensionGateway:
    """A gateway for a lesson that needs ``extensions`` (names from ``/health``).

    The gateway at ``url`` when it offers them all; else an embedded gateway started now
    (``start``), with every extension on whatever ``GATEWAY_COMPAT`` says; else a skip with
    its reason. Prints one line unless the gateway at ``url`` serves, or ``quiet``.
    """
    names = (extensions,) if isinstance(extensions, str) else tuple(extensions)
    try:
        missing = probe(url).missing(*names)
    except GatewayError as exc:
        why = f"the gateway at {url} did not answer ({exc})"
    else:
        if not missing:
            return ExtensionGateway(names, url)
        why = f"the gateway at {url} does not offer {', '.join(missing)}"
    if start:
        try:
            service = start_gateway(compat="off")
        except GatewayError as exc:
            reason = f"{why}, and an embedded gateway could not start: {exc}"
        else:
            if not quiet:
                print(f"{lesson} runs on an embedded gateway started for it ({service.url}): {why}")
            return ExtensionGateway(names, service.url, service=service)
    else:
        reason = why
    if not quiet:
        print(f"skipped {lesson}: {reason}")
    return ExtensionGateway(names, None, reason=reason)
