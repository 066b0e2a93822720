"""Running against a live AxonFlow agent: the lessons that need an extension, and CI's agent.

* :func:`extension_gateway`: a lesson that needs an extension of the embedded gateway gets
  the gateway at hand when it offers it (the embedded gateway does; a live agent does not),
  else an embedded gateway started for that purpose, announced in one printed line, else a
  printed reason to skip. Introduced in ``10_real_application.ipynb``.
* :func:`comparison_gateway`: the default side of a comparison between postures (switches,
  profiles, PII actions). The other sides are embedded gateways started under other
  switches, so when the gateway at hand is a live agent (another detector) the default side
  is an embedded gateway too, announced in one printed line: like is compared with like.
  Introduced in ``06_detection_quality.ipynb``.
* ``python -m helpers.live CMD ...``: runs ``CMD`` against the embedded gateway in
  compatibility mode (``--compat axonflow``: a stock AxonFlow agent on the wire,
  docs/compat.md) on loopback, with ``AXONFLOW_AGENT_URL`` pointing at it, and exits with the
  command's code. The run is live for the agent and nothing else: ``NOTEBOOKS_OFFLINE=1``
  keeps ``.env`` and every provider key out, ``NOTEBOOKS_LIVE_AGENT=1`` lets this one agent
  URL through (:class:`helpers.settings.Settings`). ``make test-live`` runs every notebook so.

>>> with extension_gateway("audit_records", stack.gateway.url) as ext:   # doctest: +SKIP
...     if ext.ready:
...         rows = httpx.get(ext.url + "/api/audit/records").json()["records"]
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from .client.capabilities import probe
from .errors import GatewayError
from .server import RunningService, start_gateway
from .settings import LIVE_AGENT_SWITCH, OFFLINE_SWITCH

__all__ = ["ExtensionGateway", "agent_env", "comparison_gateway", "extension_gateway", "main"]


@dataclass
class ExtensionGateway:
    """Where a lesson that needs ``extensions`` runs (none, for the default side of a
    comparison): ``url`` (``None`` when it is skipped, and then ``reason`` says why).
    ``embedded`` is true when the gateway was started here; :meth:`close` (or leaving the
    ``with`` block) stops it."""

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
                print(
                    f"{lesson}: on an embedded gateway started for this purpose ({service.url}), "
                    f"since {why}"
                )
            return ExtensionGateway(names, service.url, service=service)
    else:
        reason = why
    if not quiet:
        print(f"{lesson}: skipped, since {reason}")
    return ExtensionGateway(names, None, reason=reason)


def comparison_gateway(
    url: str, *, live: bool, lesson: str = "Comparing postures", quiet: bool = False
) -> ExtensionGateway:
    """The gateway the default side of a comparison between postures runs on.

    The other sides of such a comparison are embedded gateways started under other switches.
    The gateway at ``url`` serves as the default side when it is embedded too (``live``
    false); a live agent decides with its own detector, so its findings would differ for
    reasons no switch explains. Then an embedded gateway under the default switches is
    started here, and one printed line says so (unless ``quiet``).

    >>> base = comparison_gateway(stack.gateway.url, live=stack.gateway.live)  # doctest: +SKIP
    """
    if not live:
        return ExtensionGateway((), url)
    service = start_gateway()
    if not quiet:
        print(
            f"{lesson}: both sides run on embedded gateways (the default one started at "
            f"{service.url}), since the live agent at {url} decides with another detector"
        )
    return ExtensionGateway((), service.url, service=service)


def agent_env(url: str) -> dict[str, str]:
    """The variables that point a notebook (anything built on :mod:`helpers.stack`) at the
    agent at ``url`` while every provider stays offline."""
    return {OFFLINE_SWITCH: "1", LIVE_AGENT_SWITCH: "1", "AXONFLOW_AGENT_URL": url}


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.live CMD ...``: ``CMD`` against a stand-in AxonFlow agent."""
    command = list(sys.argv[1:] if argv is None else argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("usage: python -m helpers.live CMD [ARG ...]", file=sys.stderr)
        return 2
    with start_gateway(compat="axonflow") as agent:
        print(f"AxonFlow agent stand-in (embedded gateway, --compat axonflow) at {agent.url}")
        env = {**os.environ, **agent_env(agent.url)}
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
