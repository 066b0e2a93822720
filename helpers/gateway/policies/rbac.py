"""Who is asking: the user directory (``data/users.yaml``) and the admin-access policy family.

A ``user_token`` maps to a :class:`User` with a role, a department and permissions, read from
a YAML directory; the request's own ``context`` is never trusted for authorization (contract
Part B.3). Unknown or empty tokens get the directory's documented ``default_role``.

:func:`scan_admin_access` is the admin-access family: for non-admin users it reports
references to user and credential tables, audit logs, system/configuration tables and the
database catalogs. Policy ids follow AxonFlow's seeded system policies
(``migrations/core/031_seed_system_policies.sql``). Unlike AxonFlow, which fires on any
occurrence of the word "users", a reference must look like a table: SQL context
(``SELECT ... FROM users WHERE``, ``JOIN``, ``INSERT INTO``, ``UPDATE ... SET``, DDL), a
schema-qualified name (``auth.users``), an explicit phrase ("dump the users table") or a
name that only exists as a table (``audit_logs``, ``information_schema``). Introduced in
``05_policies.ipynb``.

>>> directory = UserDirectory.load()
>>> user = directory.lookup("user-123")
>>> user
<User user-123 engineer/platform>
>>> [f.policy_id for f in scan_admin_access("SELECT name FROM users WHERE id = 5", user)]
['sys_admin_users_table']
>>> scan_admin_access("How many users signed up last week?", user)
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import re2

from helpers.settings import DATA_DIR
from helpers.yamlcheck import Checker, load_yaml

from .findings import Finding, char_span

__all__ = [
    "ADMIN_PATTERNS",
    "ADMIN_POLICIES",
    "Role",
    "User",
    "UserDirectory",
    "scan_admin_access",
]


@dataclass(frozen=True, slots=True)
class Role:
    """A role from the directory: permissions, rate limit, and whether admin checks are waived."""

    name: str
    description: str
    permissions: frozenset[str]
    requests: int
    per_seconds: float
    admin: bool = False

    def __repr__(self) -> str:
        kind = " admin" if self.admin else ""
        return f"<Role {self.name}{kind} {self.requests}/{self.per_seconds:g}s>"


@dataclass(frozen=True, slots=True)
class User:
    """The person behind a ``user_token``; ``known=False`` when the directory lacks the token."""

    token: str
    name: str
    role: str
    department: str
    permissions: frozenset[str]
    is_admin: bool
    known: bool

    def __repr__(self) -> str:
        unknown = "" if self.known else " unknown"
        return f"<User {self.token or '(empty)'} {self.role}/{self.department or '-'}{unknown}>"


_TOP_KEYS = {"default_role": False, "roles": True, "users": True}
_ROLE_KEYS = {"description": False, "permissions": True, "rate_limit": True, "admin": False}
_USER_KEYS = {"name": True, "role": True, "department": True, "permissions": False}
_LIMIT_KEYS = {"requests": True, "per_seconds": True}


class UserDirectory:
    """Users and roles from a YAML file, validated when loaded.

    >>> d = UserDirectory.load()
    >>> d.lookup("no-such-token").role == d.default_role
    True
    >>> d.role_limit("guest")
    (10, 60.0)
    """

    def __init__(
        self, roles: Mapping[str, Role], users: Mapping[str, User], default_role: str
    ) -> None:
        self._roles = MappingProxyType(dict(roles))
        self._users = MappingProxyType(dict(users))
        self.default_role = default_role
        default = self._roles[default_role]
        # Built once: lookups of unknown tokens only copy the token in.
        self._default_permissions = default.permissions
        self._default_admin = default.admin or "admin" in default.permissions

    @classmethod
    def load(cls, path: str | Path = DATA_DIR / "users.yaml") -> UserDirectory:
        """Read and validate a directory; PolicyFileError names the file, entry and problem."""
        path = Path(path)
        doc = load_yaml(path)
        check = Checker(path)
        check.keys(doc, _TOP_KEYS, None, what="the directory")
        default_role = doc.get("default_role", "guest")
        check.string(default_role, "default_role", None)

        roles: dict[str, Role] = {}
        for name, spec in check.mapping(doc["roles"], "roles", None).items():
            check.string(name, "role name", str(name))
            check.keys(spec, _ROLE_KEYS, name, what=f"role {name!r}")
            limit = check.keys(spec["rate_limit"], _LIMIT_KEYS, name, what="rate_limit")
            roles[name] = Role(
                name=name,
                description=check.string(
                    spec.get("description", ""), "description", name, empty=True
                ),
                permissions=frozenset(check.strings(spec["permissions"], "permissions", name)),
                requests=check.positive_int(limit["requests"], "rate_limit.requests", name),
                per_seconds=check.positive_number(
                    limit["per_seconds"], "rate_limit.per_seconds", name
                ),
                admin=check.boolean(spec.get("admin", False), "admin", name),
            )
        if not roles:
            check.fail("'roles' is empty; define at least the default role", None)
        if default_role not in roles:
            check.fail(
                f"default_role {default_role!r} is not a defined role ({', '.join(sorted(roles))})",
                "default_role",
            )

        users: dict[str, User] = {}
        for token, spec in check.mapping(doc["users"], "users", None).items():
            check.string(token, "user token", str(token))
            check.keys(spec, _USER_KEYS, token, what=f"user {token!r}")
            role_name = check.string(spec["role"], "role", token)
            if role_name not in roles:
                check.fail(
                    f"role {role_name!r} is not defined under 'roles' ({', '.join(sorted(roles))})",
                    token,
                )
            role = roles[role_name]
            perms = role.permissions | frozenset(
                check.strings(spec.get("permissions", []), "permissions", token)
            )
            users[token] = User(
                token=token,
                name=check.string(spec["name"], "name", token),
                role=role_name,
                department=check.string(spec["department"], "department", token),
                permissions=perms,
                # AxonFlow waives the admin-access family for holders of the "admin" permission.
                is_admin=role.admin or "admin" in perms,
                known=True,
            )
        return cls(roles, users, default_role)

    @property
    def roles(self) -> Mapping[str, Role]:
        """Role name to :class:`Role`, read-only."""
        return self._roles

    @property
    def users(self) -> Mapping[str, User]:
        """User token to :class:`User`, read-only."""
        return self._users

    def role_limit(self, role: str) -> tuple[int, float]:
        """``(requests, per_seconds)`` for a role: the shape :class:`RateLimiter` takes."""
        r = self._roles[role]
        return r.requests, r.per_seconds

    def lookup(self, token: str | None) -> User:
        """The user for a token; unknown or empty tokens get the default role (``known=False``)."""
        user = self._users.get(token or "")
        if user is not None:
            return user
        return User(
            token or "",
            "unknown",
            self.default_role,
            "",
            self._default_permissions,
            self._default_admin,
            False,
        )

    def __len__(self) -> int:
        return len(self._users)

    def __repr__(self) -> str:
        return (
            f"<UserDirectory {len(self._users)} users, roles={sorted(self._roles)}, "
            f"default={self.default_role!r}>"
        )


# ---------------------------------------------------------------------------------------------
# Admin-access family
# ---------------------------------------------------------------------------------------------

#: Policy id -> (what it protects, for the reason sentence). Ids are AxonFlow's.
ADMIN_POLICIES: Mapping[str, str] = MappingProxyType(
    {
        "sys_admin_users_table": "the users and credentials tables",
        "sys_admin_audit_log": "the audit logs",
        "sys_admin_config_table": "the system configuration tables",
        "sys_admin_info_schema": "the database's system catalog",
    }
)

_QO, _QC = r'[`"\[]?', r'[`"\]]?'  # optional identifier quotes: `users`, "users", [users]
_ALIAS = r"(?:\s+(?:as\s+)?[a-z]\w{0,2})?"  # "FROM users u", "FROM users AS usr"
# What may follow a table name in a FROM clause; English ("feedback from users who ...") stops.
_FROM_END = (
    r"(?:\s*(?:;|\)|$)|\s+(?:where|limit|order|group|having|join|inner|left|right|"
    r"full|cross|natural|union|offset|fetch|window|for|on|using)\b)"
)

# Per family: names that need table context, extra phrases for "<phrase> table", and names that
# exist only as tables (fire anywhere). Listed longest first so spans cover the whole name.
_FAMILIES: dict[str, tuple[str, str, str]] = {
    "sys_admin_users_table": (
        r"user_accounts|user_credentials|user_passwords|password_hashes|admin_users|app_users|"
        r"auth_users|auth_user|credentials|passwords|accounts|api_keys|secrets|logins|passwd|"
        r"users|user",
        r"user\s+accounts|api\s+keys",
        r"user_accounts|user_credentials|user_passwords|password_hashes|admin_users",
    ),
    "sys_admin_audit_log": (
        r"audit_(?:logs?|trails?|events|entries|records|history)|auditlogs?|audits?",
        r"audit\s+(?:logs?|trails?|events)",
        r"audit_(?:logs?|trails?|events|entries|records|history)|auditlogs?",
    ),
    "sys_admin_config_table": (
        r"system_(?:config(?:uration)?s?|settings)|sys_config|app_config|app_settings|"
        r"admin_settings|global_settings|pg_settings|configurations?|configs?|settings",
        r"(?:system|app|admin|global)\s+(?:config(?:uration)?|settings)",
        r"system_(?:config(?:uration)?s?|settings)|sys_config|admin_settings|global_settings|"
        r"pg_settings",
    ),
    "sys_admin_info_schema": (
        "",
        "",
        r"information_schema|pg_catalog|pg_shadow|pg_authid|pg_roles|pg_user|sqlite_master|"
        r"sqlite_schema|sqlite_temp_master|mysql\s*\.\s*(?:user|db|global_priv)|"
        r"sys\.(?:sql_logins|server_principals|database_principals|objects|tables|columns)",
    ),
}


def _family_pattern(names: str, phrases: str, anywhere: str) -> str:
    alts: list[str] = []
    if names:
        n = f"(?:{names})"
        table = rf"{_QO}(?:\w+{_QC}\.{_QO})?{n}\b{_QC}"  # optional schema prefix
        alts += [
            rf"\b(?:select|delete)\b[^;]*?\bfrom\s+{table}{_ALIAS}{_FROM_END}",
            rf"\binsert\s+(?:ignore\s+)?into\s+{table}(?:\s*\(|\s+(?:values|select|default|set)\b)",
            rf"\bupdate\s+{table}{_ALIAS}\s+set\b",
            rf"\bjoin\s+{table}{_ALIAS}\s+(?:on\s+[\w.`\"]+\s*=|using\s*\()",
            rf"\b(?:truncate|drop|alter|create|lock)\s+table\s+(?:if\s+(?:not\s+)?exists\s+)?{table}",
            rf"\b(?:describe|desc)\s+{table}\s*(?:;|$)",
            rf"\b(?:public|auth|dbo|iam)[`\"\]]?\.{_QO}{n}\b",
            rf"\btables?\s+(?:named\s+|called\s+)?[`\"\[]{n}\b",
            rf"\btables?\s+(?:named|called)\s+{n}\b",
            rf"{_QO}\b(?:{names}|{phrases})\b{_QC}\s+(?:(?:db|database|sql)\s+)?tables?\b",
        ]
    alts.append(rf"\b(?:{anywhere})\b")
    return "(?i)(?:" + "|".join(alts) + ")"


_FAMILY_RES = {pid: re2.compile(_family_pattern(*spec)) for pid, spec in _FAMILIES.items()}
#: The families' patterns, in :data:`ADMIN_POLICIES` order, for a caller's own set pass
#: (:mod:`.onepass`): when none of them matches, :func:`scan_admin_access` finds nothing.
ADMIN_PATTERNS: tuple[str, ...] = tuple(r.pattern for r in _FAMILY_RES.values())
# One pass decides the common case (nothing admin-like); only a hit pays for per-family searches.
_ANY_RE = re2.compile("|".join(f"(?:{p})" for p in ADMIN_PATTERNS))


def scan_admin_access(
    text: str, user: User, *, data: bytes | None = None, gate: bool | None = None
) -> list[Finding]:
    """Admin-access findings for a non-admin user (``[]`` for admins), one per family that fires.

    Every finding is ``family="admin"``, ``action="block"``, ``severity="high"``; ``span`` is
    the first table-like reference of that family. ``data`` is ``text`` as UTF-8 when the
    caller has it already (the engine encodes each query once); ``gate`` is the answer of a
    set pass over ``text`` with :data:`ADMIN_PATTERNS` in it, when the caller made one.
    """
    # Every search runs on UTF-8 bytes: re2's str interface re-encodes the whole text and
    # maps offsets on every call, which costs more than the search itself.
    if user.is_admin or not text or gate is False:
        return []
    if data is None:
        data = text.encode("utf-8", "surrogatepass")
    if gate is None and _ANY_RE.search(data) is None:
        return []
    ascii = len(data) == len(text)
    out: list[Finding] = []
    for policy_id, regex in _FAMILY_RES.items():
        m = regex.search(data)
        if m is not None:
            reason = (
                f"Administrative access required: access to {ADMIN_POLICIES[policy_id]} "
                f"requires admin privileges (role {user.role!r})"
            )
            out.append(
                Finding(
                    policy_id, "admin", "high", "block", reason, char_span(data, m.span(), ascii)
                )
            )
    return out
