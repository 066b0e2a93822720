"""Pricing: split input/output prices, dated ids priced as their family, AxonFlow's fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.errors import ConfigError
from helpers.gateway.pricing import FALLBACK_PER_1K, ModelPrice, PricingTable


@pytest.fixture(scope="module")
def table() -> PricingTable:
    return PricingTable.load()


@pytest.mark.parametrize(
    ("provider", "model", "input_per_1k", "output_per_1k", "axonflow_per_1k"),
    [
        ("openai", "gpt-4", 0.03, 0.06, 0.03),
        ("openai", "gpt-4o", 0.0025, 0.01, 0.005),
        ("openai", "gpt-4o-mini", 0.00015, 0.0006, 0.00015),
        ("openai", "gpt-3.5-turbo", 0.0005, 0.0015, 0.0005),
        ("openai", "gpt-4.1", 0.002, 0.008, None),
        ("openai", "gpt-4.1-mini", 0.0004, 0.0016, None),
        ("openai", "o3-mini", 0.0011, 0.0044, None),
        ("anthropic", "claude-3-haiku", 0.00025, 0.00125, 0.00025),
        ("anthropic", "claude-3-5-haiku", 0.0008, 0.004, None),
        ("anthropic", "claude-3-sonnet", 0.003, 0.015, 0.003),
        ("anthropic", "claude-3-5-sonnet", 0.003, 0.015, None),
        ("anthropic", "claude-3-opus", 0.015, 0.075, 0.015),
    ],
)  # fmt: skip
def test_list_prices(
    table: PricingTable, provider: str, model: str, input_per_1k: float,
    output_per_1k: float, axonflow_per_1k: float | None,
) -> None:  # fmt: skip
    price = table.price(provider, model)
    assert (price.input_per_1k, price.output_per_1k) == (input_per_1k, output_per_1k)
    assert price.axonflow_per_1k == axonflow_per_1k
    assert price.matched_as == model and not price.is_fallback
    assert price.source.startswith("https://") and len(price.as_of) == 10


@pytest.mark.parametrize(
    ("provider", "model", "family"),
    [
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "o3-mini-2025-01-31", "o3-mini"),
        ("openai", "gpt-4-0613", "gpt-4"),
        ("openai", "gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("anthropic", "claude-3-haiku-20240307", "claude-3-haiku"),
        ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("Anthropic", "Claude-3-Opus-20240229", "claude-3-opus"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # its own entry wins
    ],
)  # fmt: skip
def test_dated_ids_price_as_their_family(
    table: PricingTable, provider: str, model: str, family: str
) -> None:
    price = table.price(provider, model)
    assert price.matched_as == family and price.model == model
    family_price = table.price(provider, family)
    assert (price.input_per_1k, price.output_per_1k) == (
        family_price.input_per_1k, family_price.output_per_1k)  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-7-ultra"),
        ("acme", "gpt-4o"),  # known model, wrong provider
        ("anthropic", "gpt-4o"),
        ("openai", "gpt-4o-preview"),  # not a date suffix
        ("openai", "gpt-4o-2024-08"),
    ],
)  # fmt: skip
def test_unknown_model_or_provider_uses_axonflow_fallback(
    table: PricingTable, provider: str, model: str
) -> None:
    price = table.price(provider, model)
    assert price.is_fallback and price.matched_as is None
    assert price.input_per_1k == price.output_per_1k == FALLBACK_PER_1K == 0.01
    assert table.cost(provider, model, 700, 300) == pytest.approx(0.01)


def test_split_cost_arithmetic(table: PricingTable) -> None:
    # gpt-4o: 1200 in at $0.0025/1K + 800 out at $0.01/1K
    assert table.cost("openai", "gpt-4o", 1200, 800) == pytest.approx(0.003 + 0.008)
    # claude-3-haiku: 10_000 in at $0.00025/1K + 2_000 out at $0.00125/1K
    assert table.cost("anthropic", "claude-3-haiku-20240307", 10_000, 2_000) == pytest.approx(
        0.0025 + 0.0025
    )
    assert table.cost("openai", "gpt-4", 0, 0) == 0


@pytest.mark.parametrize(
    ("model", "total", "expected"),
    [
        ("gpt-4", 1000, 0.03),
        ("gpt-4o", 2000, 0.01),
        ("claude-3-opus", 100, 0.0015),
        ("gpt-4o-2024-08-06", 1000, 0.01),  # AxonFlow matches exact names only
        ("gpt-4.1", 1000, 0.01),  # not in AxonFlow's table
        ("never-heard-of-it", 500, 0.005),
    ],
)  # fmt: skip
def test_axonflow_cost(table: PricingTable, model: str, total: int, expected: float) -> None:
    assert table.axonflow_cost(model, total) == pytest.approx(expected)


def test_model_price_repr(table: PricingTable) -> None:
    assert repr(table.price("openai", "gpt-4o-2024-08-06")) == (
        "<ModelPrice openai/gpt-4o-2024-08-06 as gpt-4o: in $0.0025 out $0.01 per 1K>"
    )
    assert "fallback" in repr(table.price("x", "y"))
    assert "gpt-4o" in table and "gpt-4o-2024-08-06" not in table
    with pytest.raises(AttributeError):
        table.price("openai", "gpt-4").input_per_1k = 0  # type: ignore[misc]
    assert isinstance(table.price("openai", "gpt-4"), ModelPrice)


GOOD_ENTRY = """
    provider: openai
    input_per_1k: 0.001
    output_per_1k: 0.002
    source: https://example.com/pricing
    as_of: 2025-06-03
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [", "not valid YAML"),
        ("- a\n- b\n", "'models:' mapping"),
        ("models: {}\n", "empty"),
        ("models:\n  m1:" + GOOD_ENTRY + "extra: 1\n", "unknown top-level"),
        ("models:\n  m1: 3\n", "entry 'm1': expected a mapping"),
        ("models:\n  m1:" + GOOD_ENTRY.replace("input_per_1k", "input_per_1K"),
         "entry 'm1': unknown key"),
        ("models:\n  m1:" + GOOD_ENTRY.replace("    source: https://example.com/pricing\n", ""),
         "entry 'm1': missing ['source']"),
        ("models:\n  m1:" + GOOD_ENTRY.replace("0.001", "-0.001"), "input_per_1k must be"),
        ("models:\n  m1:" + GOOD_ENTRY.replace("0.002", "'cheap'"), "output_per_1k must be"),
        ("models:\n  m1:" + GOOD_ENTRY.replace("0.002", "true"), "output_per_1k must be"),
        ("models:\n  m1:" + GOOD_ENTRY.replace("2025-06-03", "last week"), "as_of must be a date"),
        ("models:\n  m1:" + GOOD_ENTRY.replace("provider: openai", "provider: ''"), "provider"),
        ("models:\n  m1:" + GOOD_ENTRY + "  m1:" + GOOD_ENTRY, "duplicate key 'm1'"),
        ("models:\n  m1:" + GOOD_ENTRY + "  M1:" + GOOD_ENTRY, "entry 'M1': duplicate model"),
        ("fallback: {per_1k: -1}\nmodels:\n  m1:" + GOOD_ENTRY, "entry 'fallback'"),
    ],
)  # fmt: skip
def test_bad_file_errors_name_file_entry_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        PricingTable.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        PricingTable.load(tmp_path / "nope.yaml")


def test_custom_table_and_fallback(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("fallback: {per_1k: 0.02}\nmodels:\n  m1:" + GOOD_ENTRY)
    table = PricingTable.load(path)
    assert table.cost("openai", "m1-20250101", 1000, 1000) == pytest.approx(0.003)
    assert table.cost("openai", "other", 500, 500) == pytest.approx(0.02)
    assert table.axonflow_cost("m1", 1000) == pytest.approx(0.02)
