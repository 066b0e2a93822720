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

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["COLORS", "STYLE", "format_ms", "plot_latency_breakdown", "use_style"]


def format_ms(ms: float) -> str:
    """Milliseconds with enough precision to mean something: 0.42ms, 3.1ms, 850ms.

    >>> format_ms(0.4213), format_ms(3.14), format_ms(850.2)
    ('0.42ms', '3.1ms', '850ms')
    """
    if ms < 1:
        return f"{ms:.2f}ms"
    if ms < 10:
        return f"{ms:.1f}ms"
    return f"{ms:.0f}ms"


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

#: One colour per meaning, the same in every notebook: measured vs simulated, the two
#: providers, and input vs output tokens never share a colour.
COLORS = {
    "measured": "#3b6ea8",
    "simulated": "#c9c9c9",
    "openai": "#2a9d8f",
    "anthropic": "#c2703d",
    "input": "#5b8fc7",
    "output": "#e3b04b",
}


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
    """One bar, 100 % of the request, split into its steps in order, on a linear axis.

    Each segment's width is that step's share of the total, so a 2 ms step next to a 2 s
    LLM call is the sliver it really is; the legend gives every step's time and share,
    the small ones included. Steps named in ``simulated`` are drawn hatched and grey, the
    legend says "simulated", and the title gains "(provider latency simulated)".
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not steps_ms:
        raise ValueError("plot_latency_breakdown needs at least one step, got none")
    unknown = sorted(set(simulated) - set(steps_ms))
    if unknown:
        raise ValueError(f"simulated names {unknown} that are not steps; steps: {list(steps_ms)}")
    for name, ms in steps_ms.items():
        if not ms > 0:  # NaN would vanish silently, and a share of nothing means nothing
            raise ValueError(f"step {name!r} has duration {ms!r} ms; each step needs > 0 ms")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 2.2))

    total = sum(float(v) for v in steps_ms.values())
    shades = ["#3b6ea8", "#7fa7d6", "#1f4670", "#a9c4e4"]  # measured steps, told apart
    left, handles, measured_i = 0.0, [], 0
    for name, ms in steps_ms.items():
        share = float(ms) / total * 100
        sim = name in simulated
        color = COLORS["simulated"] if sim else shades[measured_i % len(shades)]
        measured_i += 0 if sim else 1
        ax.barh(
            [0],
            [share],
            left=[left],
            color=color,
            edgecolor="#555555",
            linewidth=0.6,
            hatch="//" if sim else None,
        )
        left += share
        kind = "simulated, stand-in" if sim else "measured"
        label = f"{name}: {format_ms(float(ms))} ({share:.1f} %, {kind})"
        handles.append(
            Patch(facecolor=color, edgecolor="#555555", hatch="//" if sim else None, label=label)
        )
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.6, 0.6)
    ax.set_yticks([])
    ax.set_xlabel(f"share of the request's total time, {format_ms(total)} (%, linear)")
    ax.grid(axis="y", visible=False)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncols=1, fontsize=8)
    if any(n in simulated for n in steps_ms):
        title = f"{title} (provider latency simulated)"
    ax.set_title(title)
    return ax
