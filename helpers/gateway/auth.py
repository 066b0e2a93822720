"""Who is calling: the one place the gateway reads credentials.

Community mode (no client secrets configured, the default) accepts everyone, as AxonFlow's
community agent does. With ``GATEWAY_CLIENT_SECRETS`` set, every governed endpoint needs a
credential:

* the gateway-mode endpoints, ``/api/request`` and the read endpoints take HTTP Basic
  ``client_id:secret`` (what the official SDK and this project's client send);
* ``/v1/chat/completions`` also takes the OpenAI SDK's bearer API key, written
  ``client_id:secret``, with ``X-Client-ID`` naming the same client.

Secrets are compared in constant time. The tenant of a proxy request follows AxonFlow v6.2+:
the Basic username, else the body's ``client_id``, else ``community``.
Introduced in ``10_real_application.ipynb``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from helpers.settings import Secret

from .validation import Call, Reject

__all__ = ["Authenticator"]


def _basic(call: Call) -> tuple[str, str] | None:
    """``(client_id, secret)`` of a Basic credential; None when none was sent."""
    scheme, _, encoded = call.header(b"authorization").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Reject(401, "Malformed Basic credentials") from None
    return client_id, secret


class Authenticator:
    """Checks a request's credential against the configured client secrets."""

    def __init__(self, secrets: Mapping[str, Secret]) -> None:
        self.secrets = secrets

    def _matches(self, client_id: str, secret: str) -> bool:
        expected = self.secrets.get(client_id)
        return expected is not None and hmac.compare_digest(expected.get(), secret)

    def check(self, call: Call) -> None:
        """Basic ``client_id:secret`` when secrets are configured; 401 otherwise."""
        if not self.secrets:
            return
        credential = _basic(call)
        if credential is None:
            raise Reject(401, "Authentication required: send Basic auth with client_id:secret")
        if not self._matches(*credential):
            raise Reject(401, "Invalid client credentials")

    def check_api_key(self, call: Call, client_id: str) -> None:
        """Basic, or the OpenAI SDK's ``Bearer client_id:secret`` for ``client_id``."""
        if not self.secrets:
            return
        scheme, _, token = call.header(b"authorization").partition(" ")
        if scheme.lower() == "basic":
            self.check(call)
            return
        claimed, _, secret = token.partition(":")
        if scheme.lower() != "bearer" or claimed != client_id or not self._matches(claimed, secret):
            raise Reject(
                401,
                "Invalid client credentials: use the API key 'client_id:secret' and send "
                "X-Client-ID",
            )

    @staticmethod
    def tenant(call: Call, body_client_id: str) -> str:
        """Community mode's tenant: the Basic username, else the body's ``client_id``, else
        ``community`` (AxonFlow v6.2+; SDK 9.5 always sends Basic ``community:``)."""
        try:
            credential = _basic(call)
        except Reject:
            credential = None
        if credential is not None and credential[0]:
            return credential[0]
        return body_client_id or "community"
