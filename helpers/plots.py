"""Plotting for the notebooks: one style function and the charts more than one notebook draws.

Every chart has a title, axis labels with units, and says so when a number is simulated
(the provider stand-in) rather than measured. Plot functions take ``ax=None`` (a new figure
is made) and return the axes. Importing this module changes no matplotlib settings; call
:func:`use_style` once in a notebook's setup cell. Introduced in
``01_gateway_mode_openai.ipynb``.

>>> ax = plot_latency_breakdown({"pre-check": 1.2, "LLM call": 850.0, "audit": 1.4},
...                             simulated={"LLM call"})      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from .walkthrough import format_ms

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["COLORS", "STYLE", "plot_latency_breakdown", "use_style"]

#: The suite's figure settings: small, PNG-friendly, readable when committed.
STYLE: dict[str, object] = {
    "figure.figsize": (7.0, 3.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}

#: One colour per kind of number, the same in every notebook.
COLORS = {"measured": "#3b6ea8", "simulated": "#c9c9c9"}


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global settings (size, dpi, grid, fonts)."""
    import matplotlib as mpl

    mpl.rcParams.update(STYLE)


def plot_latency_breakdown(
    steps_ms: Mapping[str, float],
    simulated: Collection[str] = (),
    *,
    title: str = "Latency of one governed request",
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars, one per step (top to bottom in the given order), on a log x axis.

    Governance steps take about a millisecond and the LLM call about a second, so a linear
    axis would show one bar and two slivers. Steps named in ``simulated`` are drawn hatched
    and grey, the legend says "simulated", and the title gains "(provider latency
    simulated)". Each bar is labelled with its value.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    if not steps_ms:
        raise ValueError("plot_latency_breakdown needs at least one step, got none")
    unknown = sorted(set(simulated) - set(steps_ms))
    if unknown:
        raise ValueError(f"simulated names {unknown} that are not steps; steps: {list(steps_ms)}")
    for name, ms in steps_ms.items():
        if not ms > 0:  # a log axis cannot show 0, and NaN would vanish silently
            raise ValueError(f"step {name!r} has duration {ms!r} ms; a log axis needs > 0")
    if ax is None:
        _, ax = plt.subplots()

    names = list(steps_ms)
    values = [float(steps_ms[n]) for n in names]
    is_sim = [n in simulated for n in names]
    bars = ax.barh(
        names,
        values,
        color=[COLORS["simulated" if s else "measured"] for s in is_sim],
        edgecolor="#555555",
        linewidth=0.6,
    )
    for bar, sim in zip(bars, is_sim, strict=True):
        if sim:
            bar.set_hatch("//")
    ax.bar_label(bars, labels=[format_ms(v) for v in values], padding=4, fontsize=9)
    ax.invert_yaxis()  # first step on top, in reading order
    ax.set_xscale("log")
    # Plain numbers (1, 10, 100 ms) read faster than powers of ten for most readers.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    # Room on the right for the labels, and a little below the smallest bar.
    ax.set_xlim(min(values) / 3, max(values) * 6)
    ax.set_xlabel("time on the client (ms, log scale)")
    ax.set_ylabel("step")
    ax.grid(axis="y", visible=False)

    handles = [Patch(facecolor=COLORS["measured"], edgecolor="#555555", label="measured")]
    if any(is_sim):
        handles.append(
            Patch(
                facecolor=COLORS["simulated"],
                edgecolor="#555555",
                hatch="//",
                label="simulated provider latency (stand-in)",
            )
        )
        title = f"{title} (provider latency simulated)"
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.set_title(title)
    return ax
