"""Settings: read from the environment, then ``.env`` at the project root, then defaults.

Secrets are wrapped in :class:`Secret`, whose repr is masked, so printing settings in a
notebook never shows a key. ``NOTEBOOKS_OFFLINE=1`` pins everything to the embedded
defaults: ``.env`` is not read, and provider keys and ``AXONFLOW_AGENT_URL`` are ignored
wherever they come from. ``make test`` sets it, so a user's ``.env`` cannot send a test to a
paid API. Introduced in ``01_gateway_mode_openai.ipynb``.

>>> s = Settings.load(env={"OPENAI_API_KEY": "sk-test"}, dotenv_path=None)
>>> s.openai_api_key
Secret('********')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

from dotenv import dotenv_values

from .errors import ConfigError

__all__ = [
    "COMPAT_MODES",
    "CREWAI_QUIET",
    "LIVE_AGENT_SWITCH",
    "DATA_DIR",
    "DEFAULT_MODELS",
    "LIVE_SWITCHES",
    "OFFLINE_SWITCH",
    "PII_ACTIONS",
    "PROFILES",
    "PROJECT_ROOT",
    "Secret",
    "Settings",
    "read_clients_file",
]

#: Anchored on the package, because a notebook kernel's working directory is ``notebooks/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
#: The one table of default models: what the walkthrough, the load generator, the proxy
#: endpoint and the governed service ask for when no model is given. Both have published
#: latency profiles (``data/latency_profiles.yaml``) and prices (``data/pricing.yaml``).
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
#: Set to a true value, it pins every setting below to the offline, embedded defaults.
OFFLINE_SWITCH = "NOTEBOOKS_OFFLINE"
#: The variables that turn on a live service (and may cost money); ignored when offline.
LIVE_SWITCHES = (
    "AXONFLOW_AGENT_URL",
    "AXONFLOW_CLIENT_SECRET",
    "AXONFLOW_LICENSE_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
)
#: Set to a true value in the process environment (never ``.env``) together with
#: ``NOTEBOOKS_OFFLINE``, it keeps ``AXONFLOW_AGENT_URL`` from the process environment while
#: everything else stays pinned offline: a deliberate run against one agent, providers still
#: the stand-ins (``make test-live``).
LIVE_AGENT_SWITCH = "NOTEBOOKS_LIVE_AGENT"
#: GATEWAY_COMPAT: ``off`` (this project's gateway, extensions on) or ``axonflow`` (a stock
#: AxonFlow agent on the wire; docs/compat.md lists what it turns off).
COMPAT_MODES = ("off", "axonflow")
#: What CrewAI 1.15 reads before it sends anything home: its telemetry (OpenTelemetry spans
#: to its collector), its trace upload, and the PyPI version check. And python-dotenv's own
#: off switch: importing CrewAI calls ``load_dotenv()``, which would copy a user's ``.env``
#: (provider keys included) into the process environment, past :class:`Settings`, into every
#: service the process starts. The Makefile exports them and the root conftest.py sets them;
#: ``13_crewai_crews.ipynb`` refuses to run without.
CREWAI_QUIET = {
    "PYTHON_DOTENV_DISABLED": "true",
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}


class Secret:
    """A string that never shows itself in a repr or str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(allowed)}")
    return value


def _float(name: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _whole(name: str, raw: str, minimum: float) -> int:
    return int(_float(name, raw, minimum))


def _compat(name: str, raw: str) -> str:
    mode = _choice(name, raw, COMPAT_MODES)
    return "" if mode == "off" else mode


def _client_secrets(name: str, raw: str) -> dict[str, Secret]:
    """``GATEWAY_CLIENT_SECRETS="app1:s3cret,app2:other"`` turns on authenticated mode."""
    out: dict[str, Secret] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        client, sep, secret = item.partition(":")
        if not sep or not client or not secret:
            raise ConfigError(f"{name} must look like 'client_id:secret,client_id2:secret2'")
        out[client] = Secret(secret)
    return out


def read_clients_file(path: Path) -> dict[str, Secret]:
    """A clients file: one ``client_id:secret`` a line; blank lines and ``#`` comments skipped.

    The error names the file and the line number, never the line (it holds a secret).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the clients file {path}: {exc.strerror}") from None
    out: dict[str, Secret] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        client, sep, secret = line.partition(":")
        if not sep or not client.strip() or not secret.strip():
            raise ConfigError(
                f"{path}, line {number}: expected 'client_id:secret' (one client a line)"
            )
        out[client.strip()] = Secret(secret.strip())
    return out


PII_ACTIONS = ("block", "redact", "warn", "log")
PROFILES = ("default", "strict")
# What each AXONFLOW_PROFILE sets when the finer switches are not given (AxonFlow v6.2+):
# "default" warns on PII and SQL injection and still blocks dangerous statements; "strict"
# blocks both. Unset: the embedded gateway's own default, which is "strict".
_PROFILE_POSTURE = {
    "default": ("warn", "warn"),
    "strict": ("block", "block"),
    "": ("block", "block"),
}


def _posture(get: Callable[[str], str | None]) -> dict[str, object]:
    """Resolve PII_ACTION, SQLI_BLOCK_MODE, their older aliases and AXONFLOW_PROFILE.

    Precedence: PII_ACTION, then its alias PII_BLOCK_CRITICAL (false = warn), then the
    profile; SQLI_BLOCK_MODE, then the profile. Dangerous statements block unless
    SQLI_BLOCK_MODE=warn says so explicitly (the profiles never unblock them).
    """
    profile = ""
    if (v := get("AXONFLOW_PROFILE")) is not None:
        profile = _choice("AXONFLOW_PROFILE", v, PROFILES)
    pii_action, sqli_mode = _PROFILE_POSTURE[profile]
    dangerous_block: bool | None = True if profile == "default" else None
    if (v := get("PII_BLOCK_CRITICAL")) is not None:
        pii_action = "block" if _bool("PII_BLOCK_CRITICAL", v) else "warn"
    if (v := get("PII_ACTION")) is not None:
        pii_action = _choice("PII_ACTION", v, PII_ACTIONS)
    if (v := get("SQLI_BLOCK_MODE")) is not None:
        sqli_mode = _choice("SQLI_BLOCK_MODE", v, ("block", "warn"))
        dangerous_block = None
    return {
        "profile": profile,
        "pii_action": pii_action,
        "pii_block_critical": pii_action == "block",
        "sqli_block_mode": sqli_mode,
        "dangerous_block": dangerous_block,
    }


# Each variable read by :meth:`Settings.load` after the posture switches (:func:`_posture`):
# (variable, setting, parse(variable, raw value)); a parser's error names the variable.
_VARIABLES: tuple[tuple[str, str, Callable[[str, str], object]], ...] = (
    ("AXONFLOW_AGENT_URL", "agent_url", lambda _, v: v.rstrip("/")),
    ("AXONFLOW_CLIENT_ID", "client_id", lambda _, v: v),
    ("AXONFLOW_USER_TOKEN", "user_token", lambda _, v: v),
    ("AXONFLOW_CLIENT_SECRET", "client_secret", lambda _, v: Secret(v)),
    ("AXONFLOW_LICENSE_KEY", "license_key", lambda _, v: Secret(v)),
    ("OPENAI_API_KEY", "openai_api_key", lambda _, v: Secret(v)),
    ("ANTHROPIC_API_KEY", "anthropic_api_key", lambda _, v: Secret(v)),
    ("GATEWAY_HMAC_SECRET", "hmac_secret", lambda _, v: Secret(v)),
    ("GATEWAY_ADMIN_TOKEN", "admin_token", lambda _, v: Secret(v)),
    ("SECRET_ACTION", "secret_action", partial(_choice, allowed=PII_ACTIONS)),
    ("PII_SSN_RULES", "ssn_rules", partial(_choice, allowed=("ssa", "layout"))),
    ("GATEWAY_INSPECT_REPLIES", "inspect_replies", _bool),
    ("SQLI_SCANNER_MODE", "sqli_scanner_mode", partial(_choice, allowed=("off", "basic"))),
    ("GATEWAY_USERS_FILE", "users_file", lambda _, v: Path(v)),
    ("GATEWAY_POLICIES_FILE", "policies_file", lambda _, v: Path(v)),
    ("GATEWAY_PRICING_FILE", "pricing_file", lambda _, v: Path(v)),
    ("GATEWAY_FSYNC", "fsync", _bool),
    ("GATEWAY_CONTEXT_TTL_S", "context_ttl_s", partial(_float, minimum=1.0)),
    ("GATEWAY_TRAFFIC_SAMPLE", "traffic_sample", partial(_whole, minimum=0)),
    ("GATEWAY_TRAFFIC_SAMPLE_MAX_AGE_S", "traffic_sample_max_age_s", partial(_float, minimum=1)),
    ("GATEWAY_MAX_BODY_BYTES", "max_body_bytes", partial(_whole, minimum=1024)),
    ("GATEWAY_CLIENT_SECRETS", "client_secrets", _client_secrets),
    ("GATEWAY_CLIENTS_FILE", "clients_file", lambda _, v: Path(v)),
    ("GATEWAY_COMPAT", "compat", _compat),
    ("ALLOW_PAID_RUNS", "allow_paid_runs", _bool),
    ("STANDIN_TIME_SCALE", "standin_time_scale", _float),
)


@dataclass(frozen=True)
class Settings:
    """Everything the helpers and the embedded gateway read from the environment.

    Build with :meth:`load`; tests pass ``env=`` and ``dotenv_path=None`` to stay hermetic.
    """

    # Where to find a real AxonFlow agent; empty means "start the embedded gateway".
    agent_url: str = ""
    client_id: str = "community"
    client_secret: Secret = field(default_factory=lambda: Secret(""))
    license_key: Secret = field(default_factory=lambda: Secret(""))
    user_token: str = "user-123"
    # Provider keys; empty means "use the local stand-in".
    openai_api_key: Secret = field(default_factory=lambda: Secret(""))
    anthropic_api_key: Secret = field(default_factory=lambda: Secret(""))
    # Embedded gateway: AxonFlow's own switches, honoured the same way. The embedded default
    # (no switch set) is the tutorials' posture: SQL injection and critical PII blocked.
    # ``profile`` is AXONFLOW_PROFILE ("" when unset); ``pii_action`` and ``sqli_block_mode``
    # are resolved from PII_ACTION / SQLI_BLOCK_MODE, their aliases and the profile.
    pii_block_critical: bool = True
    sqli_block_mode: str = "block"
    sqli_scanner_mode: str = "basic"
    pii_action: str = "block"
    # SECRET_ACTION: the credentials family (block | redact | warn | log), "block" whatever
    # the profile.
    secret_action: str = "block"
    # PII_SSN_RULES: "ssa" (an unlabelled number must pass the SSA's rules to be an SSN) or
    # "layout" (any number printed in an SSN's layout but areas 000 and 666).
    ssn_rules: str = "ssa"
    # GATEWAY_INSPECT_REPLIES: proxy mode inspects the model's answers with the same switches.
    inspect_replies: bool = True
    profile: str = ""
    dangerous_block: bool | None = None  # None: follow sqli_block_mode
    # Embedded gateway: this project's options.
    users_file: Path = DATA_DIR / "users.yaml"
    policies_file: Path = DATA_DIR / "policies.yaml"
    pricing_file: Path = DATA_DIR / "pricing.yaml"
    hmac_secret: Secret = field(default_factory=lambda: Secret(""))
    fsync: bool = False
    context_ttl_s: float = 300.0
    max_body_bytes: int = 4 * 1024 * 1024
    # GATEWAY_TRAFFIC_SAMPLE: keep up to this many recent queries, masked, for replaying a
    # candidate policy (0, the default: keep none); GATEWAY_TRAFFIC_SAMPLE_MAX_AGE_S: how long.
    traffic_sample: int = 0
    traffic_sample_max_age_s: float = 7 * 24 * 3600.0
    # Client credentials (GATEWAY_CLIENT_SECRETS, then GATEWAY_CLIENTS_FILE's lines): when
    # any is configured, clients must authenticate. Empty: community mode.
    client_secrets: dict[str, Secret] = field(default_factory=dict)
    clients_file: Path | None = None
    # GATEWAY_ADMIN_TOKEN: the operator's bearer token for the trail, reload and metrics.
    admin_token: Secret = field(default_factory=lambda: Secret(""))
    # Provider stand-ins: multiply simulated latency by this (1.0 = published figures).
    standin_time_scale: float = 1.0
    # ALLOW_PAID_RUNS: opt in to runs that send more than a handful of billed LLM calls.
    allow_paid_runs: bool = False
    # NOTEBOOKS_OFFLINE: .env, provider keys and the agent URL were ignored.
    offline_forced: bool = False
    # GATEWAY_COMPAT: "" (off) or "axonflow": the embedded gateway answers only AxonFlow's
    # endpoints, fields and metric names (docs/compat.md).
    compat: str = ""

    @property
    def authenticated(self) -> bool:
        """True when client secrets are configured (opt-in authenticated mode)."""
        return bool(self.client_secrets)

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        dotenv_path: str | os.PathLike[str] | None = PROJECT_ROOT / ".env",
        **overrides: object,
    ) -> Settings:
        """Environment first, then ``.env``, then defaults; ``overrides`` win over all.

        With ``NOTEBOOKS_OFFLINE`` true in the environment, ``.env`` is not read and the
        :data:`LIVE_SWITCHES` are dropped, so only the embedded defaults can be used.
        """
        environ = os.environ if env is None else env
        # Set in the environment (make test), it keeps .env out entirely; set in .env, it
        # still drops the live switches.
        pinned = _bool(OFFLINE_SWITCH, environ.get(OFFLINE_SWITCH) or "false")
        source: dict[str, str] = {}
        if not pinned and dotenv_path is not None and Path(dotenv_path).is_file():
            source.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        source.update(environ)
        offline = _bool(OFFLINE_SWITCH, source.get(OFFLINE_SWITCH) or "false")
        if offline:
            for name in LIVE_SWITCHES:
                source.pop(name, None)
            # Only the process environment can keep the agent (a .env was not read, or its
            # switch is not trusted): one deliberate agent, providers still offline.
            if pinned and _bool(LIVE_AGENT_SWITCH, environ.get(LIVE_AGENT_SWITCH) or "false"):
                if url := environ.get("AXONFLOW_AGENT_URL"):
                    source["AXONFLOW_AGENT_URL"] = url

        def get(name: str) -> str | None:
            value = source.get(name)
            return value if value not in (None, "") else None

        kw: dict[str, object] = {"offline_forced": offline, **_posture(get)}
        for env_name, attr, parse in _VARIABLES:
            if (v := get(env_name)) is not None:
                kw[attr] = parse(env_name, v)
        kw.update(overrides)
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        clients_file = kw.get("clients_file")
        if isinstance(clients_file, Path):
            merged = read_clients_file(clients_file)
            from_env = kw.get("client_secrets")
            if isinstance(from_env, dict):  # the variable's secrets win over the file's
                merged.update(from_env)
            kw["client_secrets"] = merged
        return cls(**kw)  # type: ignore[arg-type]
