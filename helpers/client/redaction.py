"""Placeholders back to values: the app's side of ``PII_ACTION=redact``.

The gateway answers a redacting pre-check with ``redacted_query`` (``"My SSN is [SSN_1]"``).
The app sends that to the LLM instead of the original. When it wants the model's answer in its
own terms, :func:`placeholder_map` recovers which original text each placeholder stands for,
by lining the redacted query up against the original, and :func:`restore_placeholders` puts
the values back. Both run in the app's process: the mapping is never sent anywhere and never
stored. Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> mapping = placeholder_map("My SSN is 123-45-6789.", "My SSN is [SSN_1].")
>>> restore_placeholders("Noted: [SSN_1] is on file.", mapping)
'Noted: 123-45-6789 is on file.'
"""

from __future__ import annotations

import re

__all__ = ["PLACEHOLDER", "placeholder_map", "restore_placeholders"]

#: A typed, numbered placeholder as the gateway writes it: ``[SSN_1]``, ``[CREDIT_CARD_2]``.
PLACEHOLDER = re.compile(r"\[([A-Z][A-Z_]*)_([0-9]+)\]")


def placeholder_map(original: str, redacted: str) -> dict[str, str]:
    """``{"[SSN_1]": "123-45-6789", ...}``: the original text behind each placeholder.

    The text between placeholders is copied unchanged by redaction, so each literal piece is
    found in the original in order; what lies between two pieces is the value. Raises
    ``ValueError`` when ``redacted`` is not a redaction of ``original``.
    """
    pieces = PLACEHOLDER.split(redacted)
    literals, names = (
        pieces[0::3],
        [f"[{t}_{n}]" for t, n in zip(pieces[1::3], pieces[2::3], strict=True)],
    )
    if not original.startswith(literals[0]) or not original.endswith(literals[-1]):
        raise ValueError("the redacted query does not match the original text")
    mapping: dict[str, str] = {}
    pos = len(literals[0])
    last_end = len(original) - len(literals[-1])
    for i, name in enumerate(names):
        following = literals[i + 1]
        if i == len(names) - 1:
            end = last_end
        elif following:
            end = original.find(following, pos + 1)
        else:  # two placeholders side by side cannot be told apart
            raise ValueError(f"placeholders {name} and {names[i + 1]} are adjacent")
        if end < pos + 1 or end > last_end:
            raise ValueError("the redacted query does not match the original text")
        mapping.setdefault(name, original[pos:end])
        pos = end + len(following)
    return mapping


def restore_placeholders(text: str, mapping: dict[str, str]) -> str:
    """Replace every known placeholder in ``text`` (e.g. the LLM's answer); others stay."""
    return PLACEHOLDER.sub(lambda m: mapping.get(m.group(), m.group()), text)
