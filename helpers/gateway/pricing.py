"""LLM pricing: split input/output prices per model, and AxonFlow's single-price estimate.

The table lives in ``data/pricing.yaml``: USD per 1,000 tokens, input and output priced
separately, one entry per exact model name with its provider, source and date. Dated ids
(``gpt-4o-2024-08-06``, ``claude-3-haiku-20240307``, ``claude-3-5-sonnet-latest``) price as
their family; an unknown model or provider falls back to AxonFlow's rule (0.01 per 1K on total
tokens). Each entry also keeps AxonFlow's own per-model price, so the two estimates can be
compared. Introduced in ``08_audit_trail.ipynb``.

>>> table = PricingTable.load()
>>> table.price("openai", "gpt-4o-2024-08-06")
<ModelPrice openai/gpt-4o-2024-08-06 as gpt-4o: in $0.0025 out $0.01 per 1K>
>>> round(table.cost("openai", "gpt-4o", 1000, 500), 6)
0.0075
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from helpers.errors import ConfigError, PolicyFileError
from helpers.settings import DATA_DIR
from helpers.yamlcheck import load_yaml

__all__ = ["FALLBACK_PER_1K", "ModelPrice", "PricingTable"]

#: AxonFlow's price for an unknown model or provider, per 1K total tokens.
FALLBACK_PER_1K = 0.01
_FALLBACK_SOURCE = "AxonFlow fallback rule for an unknown model or provider"

# A snapshot suffix: -2024-08-06, -20240307, -latest, or OpenAI's older -0613 style.
_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest|(?:0[1-9]|1[0-2])\d{2})$")

_ENTRY_KEYS = {"provider", "input_per_1k", "output_per_1k", "axonflow_per_1k", "source", "as_of"}
_REQUIRED_KEYS = _ENTRY_KEYS - {"axonflow_per_1k"}
_FALLBACK_KEYS = {"per_1k", "source", "as_of"}


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price applied to one (provider, model) pair.

    ``matched_as`` is the table entry that priced it (the model itself, or its family for a
    dated id), or ``None`` when the fallback rule applied.
    """

    model: str
    provider: str
    input_per_1k: float
    output_per_1k: float
    source: str
    as_of: str
    matched_as: str | None
    axonflow_per_1k: float | None = None

    @property
    def is_fallback(self) -> bool:
        return self.matched_as is None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for one call: prompt tokens at the input price, completion at the output price."""
        return (prompt_tokens * self.input_per_1k + completion_tokens * self.output_per_1k) / 1000

    def __repr__(self) -> str:
        how = "fallback" if self.matched_as is None else f"as {self.matched_as}"
        if self.matched_as == self.model:
            how = "exact"
        return (
            f"<ModelPrice {self.provider}/{self.model} {how}: "
            f"in ${self.input_per_1k:g} out ${self.output_per_1k:g} per 1K>"
        )


def _family(model: str) -> str:
    return _DATED_SUFFIX.sub("", model)


class PricingTable:
    """Model prices loaded from a YAML file and validated at load.

    >>> table = PricingTable.load()
    >>> table.price("anthropic", "claude-3-haiku-20240307").matched_as
    'claude-3-haiku'
    >>> table.price("acme", "mystery-1").is_fallback
    True
    """

    def __init__(
        self,
        entries: Mapping[str, ModelPrice],
        fallback_per_1k: float = FALLBACK_PER_1K,
        fallback_source: str = _FALLBACK_SOURCE,
        fallback_as_of: str = "",
        path: Path | None = None,
    ) -> None:
        # Keys are lower-case model names; providers are compared lower-case too.
        self._entries = {name.lower(): price for name, price in entries.items()}
        self.fallback_per_1k = fallback_per_1k
        self.fallback_source = fallback_source
        self.fallback_as_of = fallback_as_of
        self.path = path

    @classmethod
    def load(cls, path: str | Path | None = None) -> PricingTable:
        """Read and validate a pricing file (default ``data/pricing.yaml``)."""
        path = Path(path) if path is not None else DATA_DIR / "pricing.yaml"
        if not path.is_file():
            raise ConfigError(f"{path}: pricing file not found")
        try:
            raw = load_yaml(path)  # a mapping, duplicate keys refused
        except PolicyFileError as exc:
            raise ConfigError(
                f"{path}: not valid YAML, or not a mapping with a 'models:' mapping at the top "
                f"({exc.problem})"
            ) from None
        if not isinstance(raw.get("models"), dict):
            raise ConfigError(f"{path}: expected a mapping with a 'models:' mapping at the top")
        unknown_top = set(raw) - {"models", "fallback"}
        if unknown_top:
            raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown_top)}")
        if not raw["models"]:
            raise ConfigError(f"{path}: 'models:' is empty")

        fb_per_1k, fb_source, fb_as_of = FALLBACK_PER_1K, _FALLBACK_SOURCE, ""
        if "fallback" in raw:
            fb = raw["fallback"]
            where = f"{path}, entry 'fallback'"
            if not isinstance(fb, dict):
                raise ConfigError(f"{where}: expected a mapping with per_1k, source, as_of")
            _check_keys(where, fb, _FALLBACK_KEYS, {"per_1k"})
            fb_per_1k = _price(where, fb, "per_1k")
            fb_source = _text(where, fb, "source") if "source" in fb else fb_source
            fb_as_of = _date(where, fb, "as_of") if "as_of" in fb else ""

        entries: dict[str, ModelPrice] = {}
        for name, body in raw["models"].items():
            where = f"{path}, entry {name!r}"
            if not isinstance(name, str) or not name.strip() or name != name.strip():
                raise ConfigError(f"{where}: a model name must be a non-empty string")
            if name.lower() in entries:
                raise ConfigError(f"{where}: duplicate model name (names are case-insensitive)")
            if not isinstance(body, dict):
                raise ConfigError(f"{where}: expected a mapping of {sorted(_REQUIRED_KEYS)}")
            _check_keys(where, body, _ENTRY_KEYS, _REQUIRED_KEYS)
            axonflow = body.get("axonflow_per_1k")
            entries[name.lower()] = ModelPrice(
                model=name,
                provider=_text(where, body, "provider").lower(),
                input_per_1k=_price(where, body, "input_per_1k"),
                output_per_1k=_price(where, body, "output_per_1k"),
                source=_text(where, body, "source"),
                as_of=_date(where, body, "as_of"),
                matched_as=name,
                axonflow_per_1k=None
                if axonflow is None
                else _price(where, body, "axonflow_per_1k"),
            )
        return cls(entries, fb_per_1k, fb_source, fb_as_of, path)

    # -- lookups --------------------------------------------------------------------------

    def _entry(self, model: str) -> ModelPrice | None:
        key = model.strip().lower()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries.get(_family(key))
        return entry

    def price(self, provider: str, model: str) -> ModelPrice:
        """Price of ``model`` from ``provider``: exact name, then its family, then fallback."""
        entry = self._entry(model)
        if entry is not None and entry.provider == provider.strip().lower():
            # A family's entry prices a dated id: the same entry, named as asked (its
            # matched_as stays the family's name).
            return entry if entry.model == model else replace(entry, model=model)
        return ModelPrice(
            model=model,
            provider=provider,
            input_per_1k=self.fallback_per_1k,
            output_per_1k=self.fallback_per_1k,
            source=self.fallback_source,
            as_of=self.fallback_as_of,
            matched_as=None,
        )

    def cost(self, provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """Estimated USD for one call, input and output priced separately."""
        return self.price(provider, model).cost(prompt_tokens, completion_tokens)

    def axonflow_cost(self, model: str, total_tokens: int) -> float:
        """AxonFlow's estimate: total tokens at one price per *exact* model name, else 0.01/1K."""
        entry = self._entries.get(model.lower())
        per_1k = self.fallback_per_1k
        if entry is not None and entry.model == model and entry.axonflow_per_1k is not None:
            per_1k = entry.axonflow_per_1k
        return total_tokens * per_1k / 1000

    # -- the table as data ------------------------------------------------------------------

    def __iter__(self) -> Iterator[ModelPrice]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and model.lower() in self._entries

    def __repr__(self) -> str:
        return f"<PricingTable {len(self)} models, fallback ${self.fallback_per_1k:g}/1K>"


# -- validation helpers: each error names the file, the entry and the problem --------------


def _check_keys(where: str, body: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(map(str, unknown))}; allowed: {sorted(allowed)}"
        )
    missing = required - set(body)
    if missing:
        raise ConfigError(f"{where}: missing {sorted(missing)}")


def _price(where: str, body: dict[str, Any], key: str) -> float:
    value = body[key]
    # bool is an int subclass; "yes" must not become a price of 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {key} must be a number of USD per 1K tokens, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: {key} must be a finite number >= 0, got {value!r}")
    return float(value)


def _text(where: str, body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def _date(where: str, body: dict[str, Any], key: str) -> str:
    value = body[key]
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ConfigError(f"{where}: {key} must be a date like 2025-06-03, got {value!r}")
