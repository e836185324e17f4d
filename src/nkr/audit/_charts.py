"""The report's charts as inline SVG, drawn with matplotlib (no pyplot: no global figure state,
no GUI backend).

Two charts per indicator: the trend by month (the proportion with its 95% interval as error
bars, hidden months as hatched gaps, never as 0) and the organisations compared (an interval
plot sorted by proportion, with the overall proportion as a reference line). The SVG is
deterministic for the same figures: a fixed hash salt per chart (which also keeps the ids of
two charts in one page apart) and no date in its metadata. Text stays text (``svg.fonttype``
``none``), so it is selectable and read by screen readers; math parsing is off, so that a ``$``
in an organisation's name is just a character.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from xml.sax.saxutils import escape, quoteattr

import matplotlib as mpl
from matplotlib.axis import Axis
from matplotlib.figure import Figure as Canvas
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator
from matplotlib.typing import RcKeyType

from nkr.audit._model import Figure

Compared = Literal["better", "worse", "similar"]

INK: Final = "#1b3a5c"
BETTER: Final = "#0b62a4"
WORSE: Final = "#c4460a"
SIMILAR: Final = "#6e6e6e"
HIDDEN: Final = "#d9d9d9"
REFERENCE: Final = "#333333"
WIDTH_INCHES: Final = 7.2
_STYLE: Final[dict[RcKeyType, Any]] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": "#888888",
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "hatch.color": "#a6a6a6",
    "hatch.linewidth": 0.6,
}
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_GROUP_ID = re.compile(r'<g id="[^"]*"')
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


@dataclass(frozen=True, slots=True)
class TrendLabels:
    title: str
    axis: str
    proportion: str
    overall: str
    suppressed: str


@dataclass(frozen=True, slots=True)
class CompareLabels:
    title: str
    axis: str
    overall: str
    suppressed: str
    better: str
    worse: str
    similar: str


@dataclass(frozen=True, slots=True)
class Month:
    """One month on the trend's axis: its tick label and figure (None: no episodes)."""

    label: str
    figure: Figure | None


@dataclass(frozen=True, slots=True)
class Unit:
    """One organisation in the comparison, with how its interval lies against the overall."""

    name: str
    figure: Figure
    compared: Compared | None


def _percent(value: float | None) -> float:
    return math.nan if value is None else value * 100


def _upper(figures: Sequence[Figure | None]) -> float:
    """The top of the proportion axis: a round number above every interval, at most 100%."""
    highs = [f.high for f in figures if f is not None and f.high is not None]
    top = max(highs, default=0.0) * 100
    return float(min(100, max(10, math.ceil(top / 10 + 0.05) * 10)))


def _limits(top: float) -> tuple[float, float]:
    """The proportion axis from 0 to ``top`` with a little room beyond both, so that a point
    at 0% or 100% is drawn whole."""
    return -0.015 * top, 1.03 * top


def _svg(canvas: Canvas, salt: str, title: str, chart_id: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, scalable (its size is left to
    the page's CSS, the view box keeps the shape), with a title that names it for assistive
    technology."""
    out = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": salt}):
        canvas.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    text = text[text.index("<svg") :]
    # Inline in a page with other charts: the ids matplotlib numbers per figure (figure_1,
    # axes_1, ...; nothing refers to them) would repeat, and the metadata says nothing.
    text = _METADATA.sub("", _GROUP_ID.sub("<g", text))
    head = _SVG_OPEN.search(text)
    assert head is not None
    tag = re.sub(r'\s(width|height)="[^"]*"', "", head.group(0))
    title_id = f"{chart_id}-title"
    tag = tag[:-1] + f' role="img" aria-labelledby={quoteattr(title_id)} id={quoteattr(chart_id)}>'
    return (
        tag
        + f"<title id={quoteattr(title_id)}>{escape(title)}</title>"
        + text[head.end() :].rstrip()
    )


def _percent_axis(axis: Axis, top: float) -> None:
    axis.set_major_locator(MultipleLocator(10 if top <= 50 else 20))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))


def trend_chart(
    months: Sequence[Month],
    overall: Figure | None,
    labels: TrendLabels,
    *,
    chart_id: str,
) -> str:
    """The proportion by month with 95% error bars and the overall proportion as a dashed
    line; a hidden month is a hatched band across the plot, a month without episodes a gap."""
    with mpl.rc_context(_STYLE):
        canvas = Canvas(figsize=(WIDTH_INCHES, 2.9), layout="constrained")
        ax = canvas.add_subplot()
        xs = list(range(len(months)))
        shown = [
            m.figure if m.figure is not None and not m.figure.suppressed else None for m in months
        ]
        ys = [_percent(f.proportion) if f else math.nan for f in shown]
        below = [ys[i] - _percent(f.low) if f else math.nan for i, f in enumerate(shown)]
        above = [_percent(f.high) - ys[i] if f else math.nan for i, f in enumerate(shown)]
        top = _upper([overall, *shown])
        for x, month in zip(xs, months, strict=True):
            if month.figure is not None and month.figure.suppressed:
                ax.axvspan(
                    x - 0.42,
                    x + 0.42,
                    facecolor="white",
                    edgecolor=HIDDEN,
                    hatch="////",
                    linewidth=0,
                )
        if overall is not None and _shown(overall):
            assert overall.proportion is not None
            ax.axhline(
                _percent(overall.proportion),
                color=REFERENCE,
                linewidth=0.9,
                linestyle=(0, (4, 3)),
                zorder=1,
            )
        ax.errorbar(
            xs,
            ys,
            yerr=[below, above],
            color=INK,
            ecolor="#7d95ad",
            elinewidth=1.0,
            capsize=2.5,
            marker="o",
            markersize=4,
            linewidth=1.4,
            zorder=3,
        )
        ax.set_xlim(-0.6, max(len(months) - 0.4, 0.4))
        ax.set_ylim(*_limits(top))
        _percent_axis(ax.yaxis, top)
        ax.set_ylabel(labels.axis)
        every = max(1, math.ceil(len(months) / 12))
        ticks = [x for x in xs if x % every == 0]
        ax.set_xticks(ticks, [months[x].label for x in ticks])
        ax.tick_params(axis="x", length=2, labelsize=8)
        ax.grid(axis="y", color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
        handles: list[Line2D | Patch] = [
            Line2D(
                [], [], color=INK, marker="o", markersize=4, linewidth=1.4, label=labels.proportion
            ),
        ]
        if _shown(overall):
            handles.append(_reference(labels.overall))
        if any(m.figure is not None and m.figure.suppressed for m in months):
            handles.append(
                Patch(facecolor="white", edgecolor=HIDDEN, hatch="////", label=labels.suppressed)
            )
        _legend(ax, handles, 3)
        return _svg(canvas, f"trend-{chart_id}", labels.title, chart_id)


def compare_chart(
    units: Sequence[Unit],
    hidden: Sequence[str],
    overall: Figure | None,
    labels: CompareLabels,
    *,
    chart_id: str,
) -> str:
    """Each organisation's proportion with its 95% interval, top to bottom in the order given
    (the report sorts them by proportion), coloured and shaped by how the interval lies
    against the overall proportion (a vertical dashed line); hidden organisations are listed
    below them with "< min_cell" in place of a point."""
    rows = len(units) + len(hidden)
    with mpl.rc_context(_STYLE):
        canvas = Canvas(figsize=(WIDTH_INCHES, 0.9 + 0.26 * max(rows, 1)), layout="constrained")
        ax = canvas.add_subplot()
        top = _upper([overall, *(u.figure for u in units)])
        style = {
            "better": (BETTER, "D", labels.better),
            "worse": (WORSE, "s", labels.worse),
            "similar": (SIMILAR, "o", labels.similar),
        }
        # One call per kind of point (not one per organisation: each call is costly).
        for kind, (color, marker, _) in style.items():
            rows_of = [
                (y, u.figure) for y, u in enumerate(units) if (u.compared or "similar") == kind
            ]
            if not rows_of:
                continue
            ps = [_percent(f.proportion) for _, f in rows_of]
            ax.errorbar(
                ps,
                [y for y, _ in rows_of],
                xerr=[
                    [p - _percent(f.low) for p, (_, f) in zip(ps, rows_of, strict=True)],
                    [_percent(f.high) - p for p, (_, f) in zip(ps, rows_of, strict=True)],
                ],
                color=color,
                marker=marker,
                markersize=5,
                elinewidth=1.6,
                capsize=2.5,
                linewidth=0,
                zorder=3,
            )
        for i, _name in enumerate(hidden):
            ax.text(
                0,
                len(units) + i,
                labels.suppressed,
                va="center",
                ha="left",
                color="#555555",
                fontsize=8,
                fontstyle="italic",
            )
        if overall is not None and _shown(overall):
            assert overall.proportion is not None
            ax.axvline(
                _percent(overall.proportion),
                color=REFERENCE,
                linewidth=0.9,
                linestyle=(0, (4, 3)),
                zorder=1,
            )
        names = [u.name for u in units] + list(hidden)
        ax.set_yticks(range(rows), [_short(n) for n in names])
        ax.set_ylim(rows - 0.5, -0.7)
        ax.set_xlim(*_limits(top))
        _percent_axis(ax.xaxis, top)
        ax.set_xlabel(labels.axis)
        ax.tick_params(axis="y", length=0, labelsize=8)
        ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
        used = sorted({u.compared or "similar" for u in units}, key=list(style).index)
        handles: list[Line2D | Patch] = [
            Line2D(
                [],
                [],
                color=style[c][0],
                marker=style[c][1],
                markersize=5,
                linewidth=1.6,
                label=style[c][2],
            )
            for c in used
        ]
        if _shown(overall):
            handles.append(_reference(labels.overall))
        if handles:
            _legend(ax, handles, 4)
        return _svg(canvas, f"compare-{chart_id}", labels.title, chart_id)


def _legend(ax: Any, handles: list[Any], columns: int) -> None:
    """A chart's legend, in a row above its plot."""
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncols=columns,
        frameon=False,
        fontsize=8,
        borderaxespad=0.2,
    )


def _shown(f: Figure | None) -> bool:
    return f is not None and not f.suppressed and f.proportion is not None


def _reference(label: str) -> Line2D:
    return Line2D([], [], color=REFERENCE, linewidth=0.9, linestyle=(0, (4, 3)), label=label)


def _short(name: str, width: int = 38) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
