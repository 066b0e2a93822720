"""The pricing table against an outside oracle: genai-prices' bundled price data.

``data/pricing.yaml`` stays the source the trail uses, maintained by hand with a source and a
date per entry. Here every entry is priced by genai-prices (its data ships inside the package:
no network) *at the entry's as_of date*, so a later price change upstream is not a mistake in
the table. A difference fails unless it is listed in ``ACCEPTED`` with its reason; a model the
oracle does not know fails unless listed in ``UNKNOWN`` with its reason; a listed entry that
no longer differs fails too, so the lists stay true. Nothing here edits the table.

``python -m tests.test_pricing_oracle`` prints the whole comparison, at each entry's date and
today, so a maintainer sees what moved since the table was dated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import genai_prices  # a test dependency (the dev group); helpers/ never imports it
import pytest

from helpers.gateway.pricing import ModelPrice, PricingTable

MTOK = 1_000_000
Prices = tuple[Decimal, Decimal]  # USD per million tokens: input, output
# model -> why the table keeps its own price. Empty today: every price matches at its date.
ACCEPTED: dict[str, str] = {}
# model -> why the table prices a model the oracle does not know.
UNKNOWN: dict[str, str] = {}
# Dated ids the table prices as their family (data/pricing.yaml's header).
DATED_IDS = (
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini-2024-07-18"),
    ("openai", "o3-mini-2025-01-31"),
    ("openai", "gpt-3.5-turbo-0125"),
    ("anthropic", "claude-3-haiku-20240307"),
    ("anthropic", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-3-5-haiku-20241022"),
    ("anthropic", "claude-3-7-sonnet-20250219"),
)


def _ours(price: ModelPrice) -> Prices:
    """USD per million tokens, input and output, as the oracle states them."""
    per_m = Decimal(1000)
    return Decimal(str(price.input_per_1k)) * per_m, Decimal(str(price.output_per_1k)) * per_m


def _oracle(provider: str, model: str, when: datetime | None) -> Prices | None:
    usage = genai_prices.Usage(input_tokens=MTOK, output_tokens=MTOK)
    try:
        calc = genai_prices.calc_price(
            usage, model, provider_id=provider, genai_request_timestamp=when
        )
    except LookupError:
        return None
    return calc.input_price, calc.output_price


def _as_of(price: ModelPrice) -> datetime:
    return datetime.fromisoformat(price.as_of).replace(tzinfo=UTC)


def _comparison(table: PricingTable) -> list[tuple[str, str, Prices, Prices | None]]:
    """(model, provider, ours, oracle at as_of or None) for every entry."""
    return [(p.model, p.provider, _ours(p), _oracle(p.provider, p.model, _as_of(p))) for p in table]


def _money(pair: Prices) -> str:
    return f"in ${pair[0].normalize():f} out ${pair[1].normalize():f} per 1M"


@pytest.fixture(scope="module")
def table() -> PricingTable:
    return PricingTable.load()


def test_the_oracle_prices_offline_from_its_bundled_data() -> None:
    # calc_price reads the snapshot bundled in the package unless an updater was started;
    # the root conftest refuses any connection off loopback, so a fetch would fail here.
    from genai_prices import data_snapshot

    assert not data_snapshot.get_snapshot().from_auto_update


def test_every_price_matches_the_oracle_at_its_date(table: PricingTable) -> None:
    differ, unknown = [], []
    for model, provider, ours, theirs in _comparison(table):
        if theirs is None:
            if model not in UNKNOWN:
                unknown.append(f"{provider}/{model}")
        elif theirs != ours and model not in ACCEPTED:
            differ.append(f"{provider}/{model}: table {_money(ours)}, oracle {_money(theirs)}")
    assert not unknown, f"genai-prices does not know {unknown}: list each in UNKNOWN, with why"
    assert not differ, (
        "prices differ at the table's date (check the entry's source, then fix it or list it"
        " in ACCEPTED with why):\n" + "\n".join(differ)
    )


def test_the_listed_exceptions_still_hold(table: PricingTable) -> None:
    compared = {model: (ours, theirs) for model, _, ours, theirs in _comparison(table)}
    stale = [m for m in ACCEPTED if m not in compared or compared[m][1] in (None, compared[m][0])]
    stale += [m for m in UNKNOWN if m not in compared or compared[m][1] is not None]
    assert not stale, f"no longer an exception, drop from ACCEPTED/UNKNOWN: {stale}"
    assert len(compared) == len(table) > 10


@pytest.mark.parametrize(("provider", "model"), DATED_IDS, ids=[m for _, m in DATED_IDS])
def test_dated_ids_price_like_the_oracle(table: PricingTable, provider: str, model: str) -> None:
    price = table.price(provider, model)
    assert not price.is_fallback, f"{model} fell back to AxonFlow's flat rate"
    assert _oracle(provider, model, _as_of(price)) == _ours(price), model


def report() -> str:
    table = PricingTable.load()
    lines = [f"genai-prices {genai_prices.__version__} vs data/pricing.yaml"]
    for p in table:
        ours, then = _ours(p), _oracle(p.provider, p.model, _as_of(p))
        now = _oracle(p.provider, p.model, None)
        mark = "same" if then == ours else "DIFFERS" if then else "UNKNOWN"
        moved = "" if now == then else f"; today {_money(now) if now else 'unknown'}"
        lines.append(f"{mark:7} {p.provider}/{p.model} as of {p.as_of}: {_money(ours)}{moved}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
