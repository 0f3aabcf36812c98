"""Charts as inline SVG, drawn with matplotlib: text stays text, ids are scoped per chart."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterable

import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..formatting import fmt_time
from ..html_elements import esc


def svg(fig: Figure, name: str) -> str:
    """The figure as inline SVG markup: no XML prolog or metadata, ids scoped to this chart, and
    labels as text (selectable, searchable, a tenth of the size of glyph outlines)."""
    FigureCanvasAgg(fig)
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"font-family: [^;\"]+", "font-family: inherit", svg)  # the page's font, not a list per label
    prefix = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{esc(name)}" ', 1)


def figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=96)
    fig.set_layout_engine("constrained")
    return fig


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    for spine in ax.spines.values():
        spine.set_color("#8c959f")
    ax.tick_params(colors="#3d444d", labelsize=8.5)
    ax.grid(True, which="major", color="#d8dee4", linewidth=0.7)
    ax.grid(True, which="minor", color="#eef1f4", linewidth=0.5)
    ax.set_axisbelow(True)


def _label(text) -> str:
    """Plain text for matplotlib: a dollar sign must not start mathtext."""
    return str(text).replace("$", r"\$")


def adapter_colours(adapters: Iterable[str]) -> dict[str, tuple]:
    palette = colormaps["tab10"].colors
    return {a: palette[i % len(palette)] for i, a in enumerate(sorted(set(adapters)))}


def fmt_elements(v) -> str:
    """A count the way an axis reads it: 512, 65.5k, 1M, 16.8M."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _log_axis(ax, which: str, fmt: Callable[[float], str]) -> None:
    """Log ticks labelled in plain units; 1-2-5 steps when the axis spans less than two decades."""
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    decades = math.log10(high / low) if low > 0 and high > 0 else 0
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades >= 2 else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v) if v > 0 else ""))
    axis.set_minor_formatter(NullFormatter())


def _time_tick(v: float) -> str:
    return re.sub(r"\.0+ ", " ", fmt_time(v))


def sweep_svg(rows: pd.DataFrame, title: str, colours: dict[str, tuple]) -> str:
    """Median time against elements, log-log, one line per adapter, with the bandwidth bound dashed."""
    fig = figure(6.4, 3.9)
    ax = fig.add_subplot()
    machines = sorted(rows["machine"].unique())
    variants = [v for v in ("mode", "dtype") if rows[v].nunique() > 1]
    combos = sorted({tuple(k) for k in rows[variants].astype(str).itertuples(index=False)}) if variants else [()]
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D", "v"]
    for (machine, *variant, adapter), g in rows.groupby(["machine", *variants, "adapter"], sort=True):
        g = g.sort_values("elements")
        variant = tuple(map(str, variant))
        label = " ".join([adapter, *variant] + ([f"@ {machine}"] if len(machines) > 1 else []))
        ax.plot(g["elements"], g["median_s"], marker=markers[combos.index(variant) % len(markers)],
                markersize=4, linewidth=1.6, linestyle=styles[machines.index(machine) % len(styles)],
                color=colours.get(adapter), label=_label(label))
    bound = rows.dropna(subset=["roofline_frac"]).assign(t=lambda d: d["median_s"] * d["roofline_frac"])
    if len(bound):
        bound = bound.groupby("elements")["t"].min().sort_index()
        ax.plot(bound.index, bound.values, color="#57606a", linestyle=(0, (4, 3)), linewidth=1.1,
                label="memory-bandwidth bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _style(ax)
    _log_axis(ax, "x", fmt_elements)
    _log_axis(ax, "y", _time_tick)
    ax.set_xlabel("elements", fontsize=9, color="#3d444d")
    ax.set_ylabel("median time", fontsize=9, color="#3d444d")
    ax.set_title(_label(title), fontsize=10.5, loc="left", color="#1f2328", weight="bold")
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    return svg(fig, f"sweep {title}")

