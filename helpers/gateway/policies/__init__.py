"""The policies the pre-check runs, each a module of its own.

* :mod:`.sqli` (patterns in :mod:`.sqli_patterns`): SQL injection and dangerous statements.
* :mod:`.pii` (validators in :mod:`.pii_checks`): SSNs, cards, IBANs and other identifiers.
* :mod:`.rbac`: the user directory, roles and the admin-access policy.
* :mod:`.ratelimit`: token buckets per user.
* :mod:`.custom_policies`: rules loaded from ``data/policies.yaml`` and reloaded on edit.
* :mod:`.views`: canonical and decoded views of a query, with offset maps back to it;
  :mod:`.obfuscation` runs the SQL-injection and PII scanners on them; :mod:`.redaction`
  replaces PII values with typed placeholders; :mod:`.onepass` makes the one set pass per
  text that tells every scanner which of its rules could match.
* :mod:`.findings`: the frozen :class:`Finding` every detector returns.

Each detector is a pure function of the text (and the user): it never touches the audit
store or the HTTP layer, so it can be called, tested and timed in process. May import:
:mod:`helpers.errors`, :mod:`helpers.settings`, :mod:`helpers.yamlcheck` and each other.
The rule is an import-linter contract in ``pyproject.toml``.
"""
