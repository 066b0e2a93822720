"""Tests for helpers.gateway.policies.secrets: credentials found as users paste them, and
placeholders, hashes and prose left alone.

Every key-shaped value is built here at run time from a seeded generator and concatenation,
so no literal token sits in the repository for a secret scanner (or the notebook hygiene
check) to flag.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from pathlib import Path

import pytest

from helpers.gateway.policies import secrets
from helpers.gateway.policies.secrets import (
    SECRET_RULES,
    SECRET_TYPES,
    SecretRule,
    explain_secrets,
    scan_secrets,
)

ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
URLSAFE = ALNUM + "-_"
BASE64 = ALNUM + "+/"
_RNG = random.Random(20240611)  # one seeded stream: the same fake tokens on every run


def run(n: int, alphabet: str = ALNUM) -> str:
    """A fresh random run of ``n`` characters, with at least one digit and letter."""
    while True:
        value = "".join(_RNG.choice(alphabet) for _ in range(n))
        if n < 4 or (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
            return value


def digits(n: int) -> str:
    return "".join(_RNG.choice(string.digits) for _ in range(n))


def b64url(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def pem(label: str, lines: int = 6, end: bool = True, newline: str = "\n") -> str:
    body = [run(64, BASE64) for _ in range(lines)] + [run(22, BASE64) + "=="]
    block = f"-----BEGIN {label}-----" + newline + newline.join(body)
    return block + (f"{newline}-----END {label}-----" if end else "")


# ---- fake credentials of every type ---------------------------------------------------------
AWS_ID = "AKIA" + run(16, UPPER)
AWS_DOC_ID = "AKIA" + "IOSFODNN7" + "EXAMPLE"  # AWS's documented example: still a key id
AWS_STS_ID = "ASIA" + run(16, UPPER)
AWS_SECRET = run(40, BASE64)
AWS_DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY" + "EXAMPLEKEY"
GITHUB = {prefix: prefix + run(36) for prefix in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")}
GITHUB_FINE = "github_" + "pat_" + run(22) + "_" + run(59)
SLACK_BOT = "xoxb-" + digits(12) + "-" + digits(13) + "-" + run(24)
SLACK_USER = "xoxp-" + digits(12) + "-" + digits(12) + "-" + digits(13) + "-" + run(32).lower()
SLACK_REFRESH = "xoxe." + "xoxp-1-" + run(40)
SLACK_APP = "xapp-1-" + "A0" + digits(8) + "-" + digits(13) + "-" + run(64).lower()
GOOGLE = "AIza" + "Sy" + run(33, URLSAFE)
STRIPE_LIVE = "sk_" + "live_" + run(24)
STRIPE_TEST = "sk_" + "test_" + run(24)
STRIPE_RESTRICTED = "rk_" + "live_" + run(24)
OPENAI_PROJECT = "sk-" + "proj-" + run(64, URLSAFE)
OPENAI_LEGACY = "sk-" + run(48)
OPENAI_SERVICE = "sk-" + "svcacct-" + run(48, URLSAFE)
OPENAI_ADMIN = "sk-" + "admin-" + run(48, URLSAFE)
ANTHROPIC = "sk-" + "ant-" + "api03-" + run(93, URLSAFE) + "AA"
ANTHROPIC_ADMIN = "sk-" + "ant-" + "admin01-" + run(93, URLSAFE) + "AA"
JWT = (
    b64url({"alg": "HS256", "typ": "JWT"})
    + "."
    + b64url({"sub": "1234567890", "name": "Jo", "iat": 1716000000})
    + "."
    + run(43, URLSAFE)
)
JWT_RS = b64url({"alg": "RS256", "kid": run(8)}) + "." + b64url({"scope": "admin"}) + "." + run(86)
RSA_KEY = pem("RSA PRIVATE KEY")
PKCS8_KEY = pem("PRIVATE KEY")
OPENSSH_KEY = pem("OPENSSH PRIVATE KEY")
ENCRYPTED_KEY = pem("ENCRYPTED PRIVATE KEY")
TRUNCATED_KEY = pem("EC PRIVATE KEY", lines=2, end=False)
JSON_ESCAPED_KEY = pem("PRIVATE KEY", newline="\\n")
ONE_LINE_KEY = pem("RSA PRIVATE KEY", newline=" ")
PASSWORD = "Tr0ub4dor&3" + run(4)
HEX40 = "".join(_RNG.choice("0123456789abcdef") for _ in range(40))

ALL_IDS = [f"sys_secret_{kind}" for kind in SECRET_TYPES]


def ids(text: str) -> list[str]:
    return [f.policy_id for f in scan_secrets(text)]


def sid(kind: str) -> str:
    assert kind in SECRET_TYPES
    return f"sys_secret_{kind}"


# (text, expected policy ids, the value the first finding's span must cut). Realistic
# wording, and the places values really sit: JSON, quotes, code blocks, exports, URLs.
POSITIVES: list[tuple[str, list[str], str | None]] = [
    # aws_access_key
    (f"my access key id is {AWS_ID}", [sid("aws_access_key")], AWS_ID),
    (f"The docs use {AWS_DOC_ID} as the key id", [sid("aws_access_key")], AWS_DOC_ID),
    (
        f'{{"AccessKeyId": "{AWS_STS_ID}", "Expiration": "soon"}}',
        [sid("aws_access_key")],
        AWS_STS_ID,
    ),
    # aws_secret_key: only next to its keyword
    (f"aws_secret_access_key = {AWS_SECRET}", [sid("aws_secret_key")], AWS_SECRET),
    (f'"SecretAccessKey": "{AWS_SECRET}",', [sid("aws_secret_key")], AWS_SECRET),
    (f"my AWS secret is {AWS_DOC_SECRET}", [sid("aws_secret_key")], AWS_DOC_SECRET),
    (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", [sid("aws_secret_key")], AWS_SECRET),
    (
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
        [sid("aws_access_key"), sid("aws_secret_key")],
        AWS_ID,
    ),
    # github_token: every classic prefix and fine-grained
    *[(f"token {value} expired?", [sid("github_token")], value) for value in GITHUB.values()],
    (f"GH_TOKEN={GITHUB_FINE}", [sid("github_token")], GITHUB_FINE),
    (
        f"git clone https://x-access-token:{GITHUB['ghs_']}@github.com/o/r.git",
        [sid("github_token")],
        GITHUB["ghs_"],
    ),
    # slack_token
    (f"SLACK_BOT_TOKEN={SLACK_BOT}", [sid("slack_token")], SLACK_BOT),
    (f"user token: {SLACK_USER}", [sid("slack_token")], SLACK_USER),
    (f"refresh with {SLACK_REFRESH}", [sid("slack_token")], SLACK_REFRESH),
    (f"socket mode needs {SLACK_APP}", [sid("slack_token")], SLACK_APP),
    # google_api_key
    (
        f"https://maps.googleapis.com/maps/api/geocode/json?address=x&key={GOOGLE}",
        [sid("google_api_key")],
        GOOGLE,
    ),
    (f"const firebaseConfig = {{ apiKey: '{GOOGLE}' }};", [sid("google_api_key")], GOOGLE),
    # stripe_key
    (f"stripe.api_key = '{STRIPE_LIVE}'", [sid("stripe_key")], STRIPE_LIVE),
    (f"test mode: {STRIPE_TEST}", [sid("stripe_key")], STRIPE_TEST),
    (f"restricted {STRIPE_RESTRICTED}", [sid("stripe_key")], STRIPE_RESTRICTED),
    # openai_key
    (f"OPENAI_API_KEY={OPENAI_PROJECT}", [sid("openai_key")], OPENAI_PROJECT),
    (f'client = OpenAI(api_key="{OPENAI_LEGACY}")', [sid("openai_key")], OPENAI_LEGACY),
    (f"service account {OPENAI_SERVICE}", [sid("openai_key")], OPENAI_SERVICE),
    (f"admin key {OPENAI_ADMIN}", [sid("openai_key")], OPENAI_ADMIN),
    # anthropic_key
    (f"ANTHROPIC_API_KEY={ANTHROPIC}", [sid("anthropic_key")], ANTHROPIC),
    (f"x-api-key: {ANTHROPIC_ADMIN}", [sid("anthropic_key")], ANTHROPIC_ADMIN),
    # jwt
    (f"Authorization: Bearer {JWT}", [sid("jwt")], JWT),
    (f'{{"id_token": "{JWT_RS}"}}', [sid("jwt")], JWT_RS),
    # private_key
    (f"here is my key:\n{RSA_KEY}\nwhy does ssh reject it?", [sid("private_key")], RSA_KEY),
    (PKCS8_KEY, [sid("private_key")], PKCS8_KEY),
    (f"~/.ssh/id_ed25519:\n{OPENSSH_KEY}", [sid("private_key")], OPENSSH_KEY),
    (f"{ENCRYPTED_KEY}\n", [sid("private_key")], ENCRYPTED_KEY),
    (f"it got cut off:\n{TRUNCATED_KEY}", [sid("private_key")], TRUNCATED_KEY),
    (
        f'{{"private_key": "{JSON_ESCAPED_KEY}\\n", "type": "x"}}',
        [sid("private_key")],
        JSON_ESCAPED_KEY,
    ),
    (f"pasted on one line: {ONE_LINE_KEY} done", [sid("private_key")], ONE_LINE_KEY),
    # password: a URL's user:password, and password assignments
    (
        "DATABASE_URL=postgres://app:" + PASSWORD + "@db.internal:5432/app",
        [sid("password")],
        PASSWORD,
    ),
    ("mysql://root:hunter22@127.0.0.1:3306/shop", [sid("password")], "hunter22"),
    (
        "mongodb+srv://svc:Qw3rty" + "Uiop@cluster0.abc.mongodb.net/db",
        [sid("password")],
        "Qw3rtyUiop",
    ),
    ("redis://:s3cr3tpass@cache:6379/0", [sid("password")], "s3cr3tpass"),
    ("amqp://worker:rabbit-" + "9f2@mq:5672/", [sid("password")], "rabbit-9f2"),
    ("curl https://bob:plain-text-pw1@example.com/api", [sid("password")], "plain-text-pw1"),
    (f"DB_PASSWORD={PASSWORD}", [sid("password")], PASSWORD),
    ('{"user": "bob", "password": "sunshine"}', [sid("password")], "sunshine"),
    ("password: 'correct horse battery'", [sid("password")], "correct horse battery"),
    ("mysql -u root --password=S3cr3t! shop", [sid("password")], "S3cr3t!"),
    ("Server=db;Database=shop;User Id=sa;Password=myPassw0rd;", [sid("password")], "myPassw0rd"),
    ("GET /login?user=bob&password=hunter22&next=/home", [sid("password")], "hunter22"),
    ("Password: Summer2024!", [sid("password")], "Summer2024!"),
    ("pwd=Abc12345.", [sid("password")], "Abc12345"),
    # credential: a token, secret or API key name with a random value
    ("api_key=" + HEX40, [sid("credential")], HEX40),
    ('{"client_secret": "' + run(32) + '"}', [sid("credential")], None),
    ("HF_TOKEN=hf_" + run(34), [sid("credential")], None),
    ("curl -H 'X-Api-Key: " + run(40) + "' https://api.example.com", [sid("credential")], None),
    (
        'curl -H "Authorization: Bearer ' + HEX40 + '" https://api.example.com',
        [sid("credential")],
        HEX40,
    ),
    (
        "https://api.example.com/v2/data?access_token=" + run(30) + "&page=2",
        [sid("credential")],
        None,
    ),
]

# Truncated tokens: a vendor prefix and a token-shaped run count even when short.
TRUNCATED = [
    ("ghp_" + run(20), "github_token"),
    ("github_" + "pat_" + run(22), "github_token"),
    ("sk-" + "proj-" + run(16), "openai_key"),
    ("sk-" + run(20), "openai_key"),
    ("sk-" + "ant-" + "api03-" + run(14), "anthropic_key"),
    ("AKIA" + run(12, UPPER), "aws_access_key"),
    ("xoxb-" + digits(10), "slack_token"),
    ("AIza" + run(16), "google_api_key"),
    ("sk_" + "live_" + run(16), "stripe_key"),
]


@pytest.mark.parametrize(("text", "expected", "value"), POSITIVES)
def test_detects(text: str, expected: list[str], value: str | None) -> None:
    assert ids(text) == expected


@pytest.mark.parametrize(("text", "expected", "value"), POSITIVES)
def test_span_cuts_exactly_the_value(text: str, expected: list[str], value: str | None) -> None:
    first = scan_secrets(text)[0]
    shown = explain_secrets(text)[0]
    assert first.span == shown.span
    cut = text[slice(*first.span)]
    if value is not None:
        assert cut == value
    assert cut == cut.strip() and cut[-1] not in ".,;)'\"" and len(cut) >= 6


@pytest.mark.parametrize(("token", "kind"), TRUNCATED)
def test_truncated_prefixed_tokens_still_count(token: str, kind: str) -> None:
    text = f"the key starts with {token}... (rest cut off)"
    (finding,) = scan_secrets(text)
    assert finding.policy_id == sid(kind)
    assert text[slice(*finding.span)] == token


# Where a user's key actually sits: the same token in every wrapping must be found, once,
# with its span on the token alone.
WRAPPINGS = [
    "{}",
    "{}\n",
    "\n{}",
    "key: {}",
    '"{}"',
    "'{}'",
    "`{}`",
    '{{"token": "{}"}}',
    '{{"config": {{"auth": {{"key": "{}"}}}}}}',
    "```bash\nexport OPENAI_API_KEY={}\n```",
    "export TOKEN='{}'",
    "set KEY={} && run",
    "https://api.example.com/v1/chat?api_key={}&model=x",
    "https://api.example.com/v1/chat?q=hi&token={}",
    "Is {} still valid?",
    "use {}.",
    "use {}, then retry",
    "({})",
    "[{}]",
    "<{}>",
    "key={};other=1",
    "line one\n{}\nline three",
    "env:\\n{}\\n",
    "Clé secrète 🔑 pour l'équipe: {} — merci",
    "鍵は{}です",
]
TOKENS = [
    ("github_token", GITHUB["ghp_"]),
    ("openai_key", OPENAI_PROJECT),
    ("anthropic_key", ANTHROPIC),
    ("aws_access_key", AWS_ID),
    ("slack_token", SLACK_BOT),
    ("google_api_key", GOOGLE),
    ("stripe_key", STRIPE_LIVE),
    ("jwt", JWT),
]


@pytest.mark.parametrize("wrapping", WRAPPINGS)
@pytest.mark.parametrize(("kind", "token"), TOKENS, ids=[kind for kind, _ in TOKENS])
def test_found_in_every_wrapping(kind: str, token: str, wrapping: str) -> None:
    text = wrapping.format(token)
    findings = scan_secrets(text)
    assert [f.policy_id for f in findings] == [sid(kind)]
    assert text[slice(*findings[0].span)] == token
    assert [text[slice(*m.span)] for m in explain_secrets(text)] == [token]


def test_env_paste_reports_one_finding_per_type_in_canonical_order() -> None:
    env = "\n".join(
        [
            "# .env",
            "DEBUG=true",
            f"OPENAI_API_KEY={OPENAI_PROJECT}",
            f"ANTHROPIC_API_KEY={ANTHROPIC}",
            f"STRIPE_SECRET_KEY={STRIPE_LIVE}",
            f"GITHUB_TOKEN={GITHUB['ghp_']}",
            f"GH_FINE={GITHUB_FINE}",
            f"AWS_ACCESS_KEY_ID={AWS_ID}",
            f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
            f"SLACK_BOT_TOKEN={SLACK_BOT}",
            f"DATABASE_URL=postgres://app:{PASSWORD}@db:5432/app",
            "LOG_LEVEL=info",
        ]
    )
    assert ids(env) == [
        sid("aws_access_key"),
        sid("aws_secret_key"),
        sid("github_token"),
        sid("slack_token"),
        sid("stripe_key"),
        sid("openai_key"),
        sid("anthropic_key"),
        sid("password"),
    ]
    github = [m for m in explain_secrets(env) if m.secret_type == "github_token"]
    assert [env[slice(*m.span)] for m in github] == [GITHUB["ghp_"], GITHUB_FINE]


def test_every_type_at_once_in_canonical_order() -> None:
    text = " | ".join(
        [
            "api_key=" + HEX40,
            "password: " + PASSWORD,
            JWT,
            ANTHROPIC,
            OPENAI_LEGACY,
            STRIPE_TEST,
            GOOGLE,
            SLACK_USER,
            GITHUB["gho_"],
            "aws_secret_access_key=" + AWS_SECRET,
            AWS_ID,
            RSA_KEY,
        ]
    )
    assert ids(text) == ALL_IDS


def test_several_of_one_type_give_one_finding_and_explain_lists_each() -> None:
    second = "ghp_" + run(36)
    text = f"old {GITHUB['ghp_']}, new {second}, bot {GITHUB['ghs_']}"
    (finding,) = scan_secrets(text)
    assert text[slice(*finding.span)] == GITHUB["ghp_"]
    shown = explain_secrets(text)
    assert [text[slice(*m.span)] for m in shown] == [GITHUB["ghp_"], second, GITHUB["ghs_"]]
    assert [m.rule for m in shown] == ["github_classic"] * 3


def test_non_ascii_before_and_between_values() -> None:
    text = f"Schlüssel «{OPENAI_PROJECT}» und 🔐 Passwort: postgres://u:{PASSWORD}@höst/db"
    found = {f.policy_id: text[slice(*f.span)] for f in scan_secrets(text)}
    assert found == {sid("openai_key"): OPENAI_PROJECT, sid("password"): PASSWORD}


def test_the_caller_may_pass_the_bytes_and_the_rules() -> None:
    text = f"naïve {GITHUB['ghp_']}"
    data = text.encode("utf-8", "surrogatepass")
    index = [r.name for r in SECRET_RULES].index("github_classic")
    assert scan_secrets(text, data=data) == scan_secrets(text)
    assert scan_secrets(text, data=data, rules=[index]) == scan_secrets(text)
    assert scan_secrets(text, data=data, rules=[]) == []


def test_explain_shows_one_match_where_two_rules_of_a_type_overlap() -> None:
    text = "DB_PASSWORD=postgres://app:S3cret9@db/app"
    shown = explain_secrets(text)
    assert [(m.rule, text[slice(*m.span)]) for m in shown] == [
        ("password_bare", "postgres://app:S3cret9@db/app")
    ]


def test_a_hex_value_under_an_aws_secret_name_is_still_a_credential() -> None:
    # Not an AWS secret key (those mix cases), but a 40-character value assigned to a secret.
    assert ids("aws_secret_access_key=" + HEX40) == [sid("credential")]


def test_lone_surrogates_do_not_raise() -> None:
    assert ids("\ud800 " + GITHUB["ghp_"]) == [sid("github_token")]


# ---- what must stay quiet -------------------------------------------------------------------
PNG_URI = "data:image/png;base64," + base64.b64encode(random.Random(7).randbytes(6000)).decode()
NEGATIVES = [
    # hashes, ids, encoded data
    "md5 " + "".join(random.Random(1).choices("0123456789abcdef", k=32)),
    "sha1 " + HEX40,
    "sha256: " + "".join(random.Random(2).choices("0123456789abcdef", k=64)),
    "fixed in commit " + HEX40 + " (see PR #12)",
    "request id 123e4567-e89b-12d3-a456-426614174000 failed",
    f'<img src="{PNG_URI}">',
    f"![chart]({PNG_URI})",
    "base64: " + base64.b64encode(random.Random(3).randbytes(3000)).decode(),
    # vendor placeholders
    "set OPENAI_API_KEY=sk-... in your shell",
    "sk-xxxx",
    "api key: <your-key>",
    "OPENAI_API_KEY=YOUR_API_KEY",
    "export OPENAI_API_KEY=sk-" + "your-openai-api-key-here",
    "OPENAI_API_KEY=sk-" + "proj-" + "x" * 40,
    "key = 'sk-" + "X" * 48 + "'",
    "ANTHROPIC_API_KEY=sk-" + "ant-" + "api03-" + "x" * 40,
    "SLACK_TOKEN=xoxb-XXXX",
    "token: xoxb-your-token",
    "xoxb-" + "X" * 12 + "-" + "X" * 13,
    "GITHUB_TOKEN=ghp_" + "x" * 36,
    "ghp_" + "0" * 36,
    "ghp_" + "YourPersonalAccessToken",
    "AKIA" + "X" * 16,
    "AIza" + "-YOUR-GOOGLE-API-KEY",
    "sk_" + "live_" + "x" * 24,
    # password placeholders and code
    "password=<password>",
    "password=***",
    "password: ********",
    "password=${PASSWORD}",
    "PASSWORD=$DB_PASS",
    "password=%DB_PASS%",
    "password=xxx",
    "password=...",
    "password=your_password",
    "password=",
    'password=""',
    "password=changeme",
    "password: required",
    "password=None",
    '"password": "string"',
    "password = getpass()",
    'password = os.environ["DB_PASSWORD"]',
    "password = settings.DB_PASSWORD",
    "password = new_password",
    "conn = connect(host=h, password=db_pass)",
    "if password == confirm:",
    "password: {{ .Values.db.password }}",
    "MasterUserPassword: !Ref DbPassword",
    "password: !vault |",
    "postgres://user:password@localhost/db",
    "postgresql://<user>:<password>@host:5432/db",
    "mongodb+srv://<username>:<password>@cluster0.example.net/",
    "postgres://${DB_USER}:${DB_PASS}@db/app",
    "cat /etc/passwd: root:x:0:0:root:/root:/bin/bash",
    "PWD=/home/dev/project",
    "basic authentication and bearer tokens are both supported",
    'headers = {"Authorization": f"Bearer {token}"}',
    "Authorization: Bearer <token>",
    # URLs without userinfo
    "postgres://localhost:5432/db",
    "redis://cache:6379/0",
    "https://example.com:8443/path?x=1&y=2#frag",
    "see https://docs.github.com/en/authentication for tokens",
    # prose
    "Use a password manager and never share your API key with anyone.",
    "The API key: you get it from the dashboard under Settings.",
    "Password: at least 12 characters, one digit.",
    "Reset password: click the link we sent.",
    "secret: the sauce is patience",
    "Which tokens count toward the context window?",
    "max_tokens: 4096",
    "token: 123456789",
    "next_token=" + run(40),
    '{"nextPageToken": "' + run(40) + '"}',
    "a task-oriented dialogue system",
    "sk-learn is what people call scikit-learn",
    "risk-assessment-framework-for-enterprise-grade-systems",
    "ASIAPACIFICREGION sales grew",
    # armour without a key
    "How do I convert -----BEGIN RSA PRIVATE KEY----- to -----BEGIN PRIVATE KEY-----?",
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\n" + "x" * 64 + "\n-----END PRIVATE KEY-----",
    "-----BEGIN PUBLIC KEY-----\n" + run(64, BASE64) + "\n-----END PUBLIC KEY-----",
    # JWT-shaped but not a JWT
    "eyJ" + run(20, URLSAFE) + "." + run(20, URLSAFE) + "." + run(20, URLSAFE),
    b64url({"typ": "JWT"}) + "." + b64url({"sub": "x"}) + "." + run(20),
    # an AWS secret-shaped run without its keyword
    "checksum " + AWS_SECRET,
    "",
    "What are best practices for AI model deployment?",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_stay_quiet(text: str) -> None:
    assert scan_secrets(text) == []
    assert explain_secrets(text) == []


# ---- results explain themselves and never leak ----------------------------------------------
@pytest.mark.parametrize(("text", "expected", "value"), POSITIVES)
def test_findings_block_and_never_quote_the_value(
    text: str, expected: list[str], value: str | None
) -> None:
    for finding in scan_secrets(text):
        cut = text[slice(*finding.span)]
        assert finding.policy_id.startswith("sys_secret_")
        assert finding.policy_id.removeprefix("sys_secret_") in SECRET_TYPES
        assert (finding.family, finding.severity, finding.action) == ("secret", "critical", "block")
        assert finding.blocks and finding.reason.startswith("Query contains")
        assert cut not in finding.reason and cut not in repr(finding)
    for match in explain_secrets(text):
        cut = text[slice(*match.span)]
        assert cut not in repr(match) and cut[-8:] not in repr(match)


def test_reprs_are_useful_and_hold_no_value() -> None:
    assert repr(SECRET_RULES[0]) == "<SecretRule private_key/pem: PEM armour + base64 body>"
    text = "token " + GITHUB["ghp_"]
    assert repr(explain_secrets(text)) == (
        "[<SecretMatch github_token [6:46] github_classic: ghp_/gho_/ghs_/ghu_/ghr_ prefix"
        " + token run>]"
    )
    assert repr(scan_secrets(text)) == "[<Finding sys_secret_github_token block critical>]"
    assert GITHUB["ghp_"][4:] not in repr(explain_secrets(text))


def test_public_surface() -> None:
    assert sorted(secrets.__all__) == sorted(
        [
            "SECRET_TYPES",
            "SECRET_RULES",
            "SecretRule",
            "SecretMatch",
            "explain_secrets",
            "scan_secrets",
        ]
    )
    assert {rule.secret_type for rule in SECRET_RULES} == set(SECRET_TYPES)
    assert len({rule.name for rule in SECRET_RULES}) == len(SECRET_RULES)
    assert all(kind == kind.lower() and kind.isidentifier() for kind in SECRET_TYPES)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"secret_type": "shoe_size"}, "unknown type 'shoe_size'"),
        ({"pattern": r"ghp_[a-z]+"}, "needs a group"),
        ({"pattern": r"(ghp_[a-z+)"}, "bad pattern"),
        ({"pattern": "(clé_[a-z]+)"}, "ASCII"),
        ({"validator": "not callable"}, "validator"),
    ],
)
def test_rules_are_validated_when_built(fields: dict[str, object], problem: str) -> None:
    arguments = {
        "name": "my_rule",
        "secret_type": "github_token",
        "pattern": r"(ghp_[a-z]+)",
        "validator": lambda value: True,
        "check": "c",
    }
    with pytest.raises(ValueError, match=f"secret rule 'my_rule': .*{problem}"):
        SecretRule(**(arguments | fields))


def test_a_rule_is_frozen() -> None:
    with pytest.raises(AttributeError):
        SECRET_RULES[0].pattern = "(x)"  # type: ignore[misc]


# ---- cost and adversarial input -------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,
        "sk-" * 333_333,
        "ghp_" * 250_000,
        "eyJ." * 250_000,
        "://:@" * 200_000,
        "password " * 100_000,
        "x-" * 500_000,
        "é" * 500_000,
    ],
    ids=["letters", "sk-dash", "ghp", "eyj-dot", "url-bits", "password-words", "x-dash", "accents"],
)
def test_adversarial_megabyte_inputs(text: str) -> None:
    assert scan_secrets(text) == []
    tail = " then " + GITHUB["ghp_"]
    found = scan_secrets(text + tail)
    assert [f.policy_id for f in found] == [sid("github_token")]
    assert found[0].span == (len(text) + 6, len(text) + len(tail))


def test_a_clean_prompt_costs_one_set_pass_and_no_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = (
        "Summarise the incident: the gateway timed out calling the provider, retries "
        "doubled the token usage, and the dashboard showed the key metrics late. "
    ) * 14
    assert len(prompt) > 2000

    def no_rule_may_run(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("a rule ran on a prompt with no candidate")

    monkeypatch.setattr(secrets, "_find", no_rule_may_run)
    assert scan_secrets(prompt) == [] and explain_secrets(prompt) == []


def test_no_key_shaped_literal_in_the_module_or_its_tests() -> None:
    # The repository's hygiene grep, and the shapes GitHub's secret scanning looks for.
    shaped = re.compile(
        r"sk-[A-Za-z0-9]{20,}|sk-ant-[A-Za-z0-9-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}"
        r"|xox[abprs]-[0-9]{6,}|AIza[0-9A-Za-z_-]{20,}|[sr]k_live_[0-9A-Za-z]{10,}"
    )
    for path in (Path(secrets.__file__), Path(__file__)):
        assert not shaped.search(path.read_text()), path


def test_a_flood_of_armour_fails_closed() -> None:
    text = "-----BEGIN PRIVATE KEY-----\n" * (secrets.VALIDATION_BUDGET + 50)
    (finding,) = scan_secrets(text)
    assert finding.policy_id == sid("private_key") and "not all validated" in finding.reason
