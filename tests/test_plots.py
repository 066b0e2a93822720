"""Tests for helpers.plots: the style function and the latency breakdown chart.

Charts are checked through their artists (scale, labels, legend, title), not pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt
import pytest

from helpers.plots import COLORS, STYLE, plot_latency_breakdown, use_style

STEPS = {"pre-check": 1.2, "LLM call": 850.0, "audit": 1.4}


@pytest.fixture(autouse=True)
def _isolated_figures() -> Iterator[None]:
    with matplotlib.rc_context():
        yield
    plt.close("all")


def test_use_style_sets_size_and_dpi() -> None:
    use_style()
    assert list(matplotlib.rcParams["figure.figsize"]) == list(STYLE["figure.figsize"])
    assert matplotlib.rcParams["figure.dpi"] == STYLE["figure.dpi"]
    assert matplotlib.rcParams["savefig.dpi"] == STYLE["savefig.dpi"]


def test_importing_the_module_changed_nothing() -> None:
    # rc_context restores settings, so defaults here mean the import did not set them.
    assert matplotlib.rcParams["figure.dpi"] == matplotlib.rcParamsDefault["figure.dpi"]


def test_breakdown_is_a_linear_share_with_labels_and_units() -> None:
    ax = plot_latency_breakdown(STEPS)
    assert ax.get_xscale() == "linear"
    assert ax.get_xlim() == (0, 100)
    assert "%" in ax.get_xlabel() and "853ms" in ax.get_xlabel()  # the total, in ms
    assert ax.get_title()


def test_segments_are_shares_in_order_and_the_legend_carries_every_value() -> None:
    ax = plot_latency_breakdown(STEPS)
    total = sum(STEPS.values())
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([v / total * 100 for v in STEPS.values()])
    lefts = [p.get_x() for p in ax.patches]
    assert lefts == pytest.approx([0, widths[0], widths[0] + widths[1]])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("pre-check: 1.2ms (0.1 %")
    assert legend[1].startswith("LLM call: 850ms (99.7 %")


def test_simulated_steps_are_labelled_in_title_legend_and_bars() -> None:
    ax = plot_latency_breakdown(STEPS, simulated={"LLM call"})
    assert "simulated" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "simulated, stand-in" in legend[1] and "measured" in legend[0]
    llm_bar = ax.patches[1]
    assert llm_bar.get_hatch() == "//"
    assert matplotlib.colors.to_hex(llm_bar.get_facecolor()) == COLORS["simulated"]
    assert ax.patches[0].get_hatch() is None


def test_nothing_simulated_says_nothing_simulated() -> None:
    ax = plot_latency_breakdown(STEPS, title="Live run")
    assert ax.get_title() == "Live run"
    assert all("measured" in t.get_text() for t in ax.get_legend().get_texts())


def test_draws_on_the_given_axes() -> None:
    fig, (left, right) = plt.subplots(1, 2)
    ax = plot_latency_breakdown(STEPS, ax=right)
    assert ax is right
    assert not left.patches


@pytest.mark.parametrize(
    ("steps", "simulated", "message"),
    [
        ({}, (), "at least one step"),
        ({"pre-check": 1.0}, ("LLM",), "not steps"),
        ({"pre-check": 0.0}, (), "needs > 0 ms"),
        ({"pre-check": math.nan}, (), "needs > 0 ms"),
    ],
)
def test_rejects_what_it_cannot_draw(
    steps: dict[str, float], simulated: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plot_latency_breakdown(steps, simulated)
