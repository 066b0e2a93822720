"""Who is calling: the one place the gateway reads credentials.

Two kinds of caller, each optional:

* **Clients** (applications). Community mode (no client secrets configured, the default)
  accepts everyone, as AxonFlow's community agent does. With client secrets
  (``GATEWAY_CLIENT_SECRETS`` or a clients file), the pre-check, the audit and the proxy
  endpoints need HTTP Basic ``client_id:secret`` (what the official SDK and this project's
  client send); ``/v1/chat/completions`` also takes the OpenAI SDK's bearer API key, written
  ``client_id:secret``, with ``X-Client-ID`` naming the same client. A ``client_id`` in the
  body (or ``X-Client-ID``) that is not the authenticated client is a 403 ``Tenant
  mismatch``, as on AxonFlow.
* **The operator** (``GATEWAY_ADMIN_TOKEN``): when set, the trail (records, export, verify),
  the policy reload and the metrics need ``Authorization: Bearer <token>``: none or a wrong
  one is 401, a client's Basic credential is 403. Unset, those endpoints ask what they asked
  before: a client credential when client secrets are configured, nothing otherwise.

Every secret is compared by :func:`same_secret` alone (SHA-256 digests compared with
:func:`hmac.compare_digest`: constant time, and the length is not revealed either), and an
unknown client id is compared against a decoy, so the answer takes as long as for a known
one. Credentials are read from the ``Authorization`` header only, never from the URL, and a
header over :data:`MAX_AUTHORIZATION` bytes is refused before it is decoded. Community mode
costs nothing per request: :meth:`Authenticator.check` returns at once.

The tenant of a community-mode proxy request follows AxonFlow v6.2+: the Basic username,
else the body's ``client_id``, else ``community``. Introduced in ``10_real_application.ipynb``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

from helpers.settings import Secret

from .validation import Call, Reject

__all__ = ["MAX_AUTHORIZATION", "Authenticator", "same_secret"]

#: The longest ``Authorization`` header read (bytes); a longer one is refused undecoded.
MAX_AUTHORIZATION = 4096


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def same_secret(given: str, expected_digest: bytes) -> bool:
    """Whether ``given`` is the secret whose SHA-256 is ``expected_digest``, in constant time.

    The one comparison of a credential in the gateway: both sides are 32-byte digests, so
    neither the content nor the length of the secret shows in the time it takes.
    """
    return hmac.compare_digest(_digest(given), expected_digest)


def _authorization(call: Call) -> tuple[str, str]:
    """``(scheme in lower case, credentials)`` of the Authorization header ("" when absent)."""
    raw = call.header(b"authorization")
    if len(raw) > MAX_AUTHORIZATION:
        raise Reject(
            401, f"Authorization header too large: {len(raw)} bytes, limit {MAX_AUTHORIZATION}"
        )
    scheme, _, credentials = raw.partition(" ")
    return scheme.lower(), credentials.strip()


def _basic(call: Call) -> tuple[str, str] | None:
    """``(client_id, secret)`` of a Basic credential; None when none was sent."""
    scheme, encoded = _authorization(call)
    if scheme != "basic" or not encoded:
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Reject(401, "Malformed Basic credentials") from None
    return client_id, secret


class Authenticator:
    """Checks a request's credential against the configured client secrets and operator token.

    >>> auth = Authenticator({"app1": Secret("s3cret")}, admin_token=Secret("t0ken"))
    >>> auth
    <Authenticator clients=['app1'] operator_token=set>
    """

    def __init__(self, secrets_: Mapping[str, Secret], admin_token: Secret | None = None) -> None:
        # Only digests are kept: nothing here can print or compare a secret the slow way.
        self._clients = {client: _digest(s.get()) for client, s in secrets_.items()}
        self._decoy = _digest(secrets.token_hex(32))
        token = admin_token.get() if admin_token else ""
        self._operator = _digest(token) if token else None

    @property
    def community(self) -> bool:
        """True when no client secrets are configured: every client is accepted."""
        return not self._clients

    @property
    def operator_token(self) -> bool:
        """True when ``GATEWAY_ADMIN_TOKEN`` guards the trail, the reload and the metrics."""
        return self._operator is not None

    def __repr__(self) -> str:
        token = "set" if self.operator_token else "unset"
        return f"<Authenticator clients={sorted(self._clients)} operator_token={token}>"

    def _matches(self, client_id: str, secret: str) -> bool:
        # One comparison whether or not the client exists: an unknown id meets a decoy.
        expected = self._clients.get(client_id, self._decoy)
        return same_secret(secret, expected) and client_id in self._clients

    # -- clients -----------------------------------------------------------------------------
    def check(self, call: Call) -> str | None:
        """The authenticated client id; None in community mode. 401 without a valid Basic
        ``client_id:secret``."""
        if not self._clients:
            return None
        credential = _basic(call)
        if credential is None:
            raise Reject(401, "Authentication required: send Basic auth with client_id:secret")
        if not self._matches(*credential):
            raise Reject(401, "Invalid client credentials")
        return credential[0]

    @staticmethod
    def same_tenant(client: str | None, claimed: str, what: str = "client_id") -> None:
        """403 ``Tenant mismatch`` when the request names (``claimed``) another client than
        the authenticated ``client``. Nothing to check in community mode (``client`` None) or
        when the request names nobody."""
        if client is not None and claimed and claimed != client:
            raise Reject(
                403,
                f"Tenant mismatch: {what} {claimed!r} is not the authenticated client {client!r}",
            )

    def check_api_key(self, call: Call, client_id: str) -> str | None:
        """The authenticated client (None in community mode) from Basic or the OpenAI SDK's
        ``Bearer client_id:secret``; ``client_id`` (``X-Client-ID``, "" when not sent) must
        be that client."""
        if not self._clients:
            return None
        scheme, token = _authorization(call)
        if scheme == "basic":
            client = self.check(call)
        else:
            client, _, secret = token.partition(":")
            if scheme != "bearer" or not self._matches(client, secret):
                raise Reject(
                    401,
                    "Invalid client credentials: use the API key 'client_id:secret' and send "
                    "X-Client-ID",
                )
        self.same_tenant(client, client_id, "X-Client-ID")
        return client

    # -- the operator ------------------------------------------------------------------------
    def check_operator(self, call: Call) -> None:
        """``Bearer <GATEWAY_ADMIN_TOKEN>`` when the token is set (401 without or wrong, 403
        for a client's credential); without the token, the client check of :meth:`check`."""
        if self._operator is None:
            self.check(call)
            return
        scheme, token = _authorization(call)
        if scheme == "bearer" and token:
            if same_secret(token, self._operator):
                return
            raise Reject(401, "Invalid operator token")
        if scheme == "basic":
            self.check(call)  # a wrong client credential is a 401, a right one a 403
            raise Reject(
                403,
                "Forbidden: client credentials cannot read the trail, reload policies or "
                "read metrics; send Authorization: Bearer <GATEWAY_ADMIN_TOKEN>",
            )
        raise Reject(
            401, "Operator token required: send Authorization: Bearer <GATEWAY_ADMIN_TOKEN>"
        )

    @staticmethod
    def tenant(call: Call, client: str | None, body_client_id: str) -> str:
        """A proxy request's tenant: the authenticated ``client`` (from :meth:`check`; the body
        must name it or nobody, see :meth:`same_tenant`); in community mode the Basic
        username, else the body's ``client_id``, else ``community`` (AxonFlow v6.2+; SDK 9.5
        always sends Basic ``community:``)."""
        if client is not None:
            Authenticator.same_tenant(client, body_client_id)
            return client
        try:
            credential = _basic(call)
        except Reject:
            credential = None
        if credential is not None and credential[0]:
            return credential[0]
        return body_client_id or "community"
