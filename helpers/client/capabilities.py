"""What a gateway supports beyond AxonFlow's API: asked once per base URL, then cached.

The embedded gateway lists its extensions in ``GET /health`` under ``"extensions"``
(``audit_records``, ``reply_check``, ``idempotent_audits``, ...). A stock AxonFlow agent, or
the embedded gateway in compatibility mode, sends no such field: it supports none of them,
and its extension endpoints answer a plain-text 404. So a lesson that needs an extension
asks first, and runs elsewhere or skips instead of failing on a 404 or a missing field.
Introduced in ``10_real_application.ipynb``.

>>> caps = probe("http://127.0.0.1:8080")                    # doctest: +SKIP
>>> caps.supports("audit_records")                            # doctest: +SKIP
True
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx

from helpers.errors import GatewayUnavailable

__all__ = ["HEALTH_FIELD", "Capabilities", "forget", "probe"]

#: The ``/health`` field the embedded gateway lists its extensions under.
HEALTH_FIELD = "extensions"
_cache: dict[str, Capabilities] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A gateway's answer: its ``service`` and ``version``, and the extensions it offers
    (empty for a stock AxonFlow agent)."""

    url: str
    service: str
    version: str
    extensions: frozenset[str]

    @property
    def stock(self) -> bool:
        """True when the gateway offers no extension (a stock agent, or compatibility mode)."""
        return not self.extensions

    def supports(self, *names: str) -> bool:
        """Whether every extension in ``names`` is offered."""
        return set(names) <= self.extensions

    def missing(self, *names: str) -> tuple[str, ...]:
        """The extensions in ``names`` that are not offered, in the order given."""
        return tuple(name for name in names if name not in self.extensions)

    @classmethod
    def from_health(cls, url: str, body: Any) -> Capabilities:
        """Read a ``/health`` body; anything but a list of names means no extensions."""
        body = body if isinstance(body, dict) else {}
        listed = body.get(HEALTH_FIELD)
        names = listed if isinstance(listed, list) else []
        return cls(
            url=url,
            service=str(body.get("service", "")),
            version=str(body.get("version", "")),
            extensions=frozenset(n for n in names if isinstance(n, str)),
        )

    def __repr__(self) -> str:
        what = f"{len(self.extensions)} extension(s)" if self.extensions else "no extensions"
        return f"<Capabilities {self.url} {self.service or '?'} {self.version or '?'}: {what}>"


def _key(url: str) -> str:
    return url.rstrip("/")


def _read(url: str, response: httpx.Response) -> Capabilities:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 500 and not isinstance(body, dict):
        raise GatewayUnavailable(
            f"GET {url}/health answered {response.status_code}; is the gateway running?"
        )
    return Capabilities.from_health(url, body)


def _remember(caps: Capabilities) -> Capabilities:
    with _lock:
        return _cache.setdefault(caps.url, caps)


def probe(
    url: str, *, http: httpx.Client | None = None, refresh: bool = False, timeout: float = 3.0
) -> Capabilities:
    """The capabilities of the gateway at ``url``, from the cache unless ``refresh``.

    Raises :class:`~helpers.errors.GatewayUnavailable` when nothing answers.
    """
    key = _key(url)
    if not refresh and (known := _cache.get(key)) is not None:
        return known
    get = httpx.get if http is None else http.get
    try:
        response = get(key + "/health", timeout=timeout)
    except httpx.HTTPError as exc:
        raise GatewayUnavailable(
            f"GET {key}/health failed ({type(exc).__name__}); is the gateway running?"
        ) from None
    caps = _read(key, response)
    if refresh:
        forget(key)
    return _remember(caps)


def forget(url: str | None = None) -> None:
    """Drop the cached answer for ``url``, or every cached answer."""
    with _lock:
        if url is None:
            _cache.clear()
        else:
            _cache.pop(_key(url), None)
