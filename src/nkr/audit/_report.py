"""The audit's report for people: one self-contained HTML page (inline CSS, charts as inline
SVG, no script, nothing loaded from anywhere) that opens from a file and prints on A4.

Generic: every word about an indicator is the indicator's own (its title, numerator,
denominator and exclusions in the guideline's data); the words around them are the generic
interface texts (``nkr/audit/report.toml``). Each chart has a table with the same numbers beside
it, so that the figures can be read without the picture. A hidden (suppressed) cell shows no
counts anywhere: ``< min_cell`` and the explanation.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup

from nkr._guideline import Guideline, Lang, Recommendation
from nkr._texts import generic_texts
from nkr.audit._charts import (
    Compared,
    CompareLabels,
    Month,
    TrendLabels,
    Unit,
    compare_chart,
    trend_chart,
)
from nkr.audit._model import Figure, Indicator
from nkr.web._spec import long_date

Period = tuple[dt.date | None, dt.date | None]

# The key of the organisation stratum for patients with no managing organisation.
UNKNOWN_ORGANIZATION: Final = "unknown"
MAX_PROBLEMS: Final = 20
_TEMPLATES: Final = Path(__file__).with_name("templates")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def number(value: int, lang: Lang) -> str:
    """A count with thousands separators: ``1.234.567`` / ``1,234,567``."""
    text = f"{value:,}"
    return text.replace(",", ".") if lang == "da" else text


def decimal(value: float, lang: Lang, places: int = 1) -> str:
    text = f"{value:.{places}f}"
    return text.replace(".", ",") if lang == "da" else text


def percent(value: float, lang: Lang) -> str:
    """A proportion in per cent with one decimal: ``12,3 %`` / ``12.3%``."""
    return f"{decimal(value * 100, lang)} %" if lang == "da" else f"{decimal(value * 100, lang)}%"


def percent_range(low: float, high: float, lang: Lang) -> str:
    """An interval in per cent: ``8,1–17,9 %`` / ``8.1–17.9%``."""
    return f"{decimal(low * 100, lang)}–{percent(high, lang)}"


@dataclass(frozen=True, slots=True)
class Cell:
    """One figure as the page shows it: texts for its counts, proportion and interval, or
    ``hidden`` (then no counts at all), or ``empty`` (no episodes: no figure)."""

    label: str
    key: str
    hidden: bool
    empty: bool
    numerator: str
    denominator: str
    proportion: str
    interval: str
    compared: str


@dataclass(frozen=True, slots=True)
class IndicatorView:
    indicator: Indicator
    anchor: str
    recommendation: Recommendation | None
    overall: Cell | None
    months: tuple[Cell, ...]
    organizations: tuple[Cell, ...]
    trend_svg: Markup
    compare_svg: Markup


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: str
    problem: str


def _cell(f: Figure, label: str, lang: Lang, compared: str = "") -> Cell:
    if f.suppressed or f.numerator is None or f.denominator is None:
        return Cell(label, f.key, True, False, "", "", "", "", "")
    if f.proportion is None or f.low is None or f.high is None:
        return Cell(label, f.key, True, False, "", "", "", "", "")
    return Cell(
        label,
        f.key,
        False,
        False,
        number(f.numerator, lang),
        number(f.denominator, lang),
        percent(f.proportion, lang),
        percent_range(f.low, f.high, lang),
        compared,
    )


def _no_episodes(key: str) -> Cell:
    """A month on the axis without episodes (the engine gives no figure for it)."""
    return Cell(key, key, False, True, "", "", "", "", "")


def _shown(f: Figure | None) -> bool:
    return f is not None and not f.suppressed and f.proportion is not None


def compare(f: Figure, overall: Figure | None, better: str) -> Compared | None:
    """How an organisation's 95% interval lies against the overall proportion: better or worse
    when it lies wholly on one side (which side is better is the indicator's ``better``),
    similar when it covers it, None when either is hidden."""
    if f.suppressed or f.low is None or f.high is None:
        return None
    if overall is None or overall.suppressed or overall.proportion is None:
        return None
    if f.low > overall.proportion:
        return "better" if better == "higher" else "worse"
    if f.high < overall.proportion:
        return "worse" if better == "higher" else "better"
    return "similar"


def month_axis(figures: Iterable[Figure]) -> list[str]:
    """Every month from the first to the last month stratum of any indicator (``YYYY-MM``), so
    that every trend has the same axis and a month without episodes is a gap."""
    keys = sorted({f.key for f in figures if f.stratum == "month"})
    if not keys:
        return []
    year, month = int(keys[0][:4]), int(keys[0][5:7])
    last = (int(keys[-1][:4]), int(keys[-1][5:7]))
    months: list[str] = []
    while (year, month) <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _tick(key: str, first: bool, lang: Lang) -> str:
    names = generic_texts()("months", lang).split(",")
    month = int(key[5:7])
    short = names[month - 1].strip()[:3]
    return f"{short}\n{key[:4]}" if first or month == 1 else short


def _moment(moment: dt.datetime, lang: Lang) -> str:
    """A time as people read it: ``2. december 2026 03:00 UTC`` (its own offset when it has
    one other than UTC)."""
    offset = moment.utcoffset()
    zone = "" if offset is None else " UTC" if not offset else f" UTC{moment.strftime('%z')}"
    return f"{long_date(moment.date(), lang, generic_texts())} {moment.strftime('%H:%M')}{zone}"


def _period_text(period: Period, lang: Lang) -> str:
    texts = generic_texts()
    start, end = period
    if start and end:
        return texts(
            "report.period-range",
            lang,
            start=long_date(start, lang, texts),
            end=long_date(end, lang, texts),
        )
    if start:
        return texts("report.period-from", lang, start=long_date(start, lang, texts))
    if end:
        return texts("report.period-to", lang, end=long_date(end, lang, texts))
    return texts("report.period-all", lang)


def _problems(summary: Mapping[str, Any], limit: int) -> tuple[list[Problem], int, int]:
    """The first ``limit`` problems, how many there are in all, and how many are not listed.
    The summary may list fewer problems than it counts (``problems_total``)."""
    listed = list(summary.get("problems") or ())
    total = max(int(summary.get("problems_total") or 0), len(listed))
    shown = []
    for entry in listed[:limit]:
        what = [str(entry[k]) for k in ("problem", "kind", "message") if entry.get(k)]
        line = entry.get("line")
        shown.append(
            Problem(str(entry.get("file", "")), "" if line is None else str(line), ": ".join(what))
        )
    return shown, total, total - len(shown)


def indicator_views(
    guideline: Guideline,
    indicators: Sequence[Indicator],
    figures: Iterable[Figure],
    lang: Lang,
    organizations: Mapping[str, str],
    min_cell: int,
) -> list[IndicatorView]:
    """Each indicator's figures as the page shows them, with its two charts drawn."""
    texts = generic_texts()

    def tx(key: str, **params: object) -> str:
        return texts(key, lang, **params)

    all_figures = list(figures)
    axis = month_axis(all_figures)
    by: dict[tuple[str, str], dict[str, Figure]] = defaultdict(dict)
    for f in all_figures:
        by[(f.indicator, f.stratum)][f.key] = f
    views: list[IndicatorView] = []
    for number_, ind in enumerate(indicators, start=1):
        overall = by[(ind.id, "overall")].get("")
        title = ind.title(lang)
        overall_text = (
            percent(overall.proportion, lang)
            if overall is not None and _shown(overall) and overall.proportion is not None
            else tx("report.chart.no-overall")
        )
        overall_label = tx("report.chart.overall", proportion=overall_text)
        hidden_label = tx("report.chart.suppressed", min_cell=min_cell)

        month_figures = by[(ind.id, "month")]
        months = [
            Month(_tick(key, i == 0, lang), month_figures.get(key)) for i, key in enumerate(axis)
        ]
        trend = trend_chart(
            months,
            overall,
            TrendLabels(
                title=tx("report.chart.trend-alt", indicator=title, overall=overall_text),
                axis=tx("report.chart.proportion-axis"),
                proportion=tx("report.chart.proportion"),
                overall=overall_label,
                suppressed=hidden_label,
            ),
            chart_id=f"trend-{number_}",
        )
        month_cells = tuple(
            _cell(month_figures[k], k, lang) if k in month_figures else _no_episodes(k)
            for k in axis
        )

        def name(key: str) -> str:
            if key in organizations:
                return organizations[key]
            if key == UNKNOWN_ORGANIZATION:
                return tx("report.indicator.unknown-organization")
            return key

        org_figures = list(by[(ind.id, "organization")].values())
        visible = sorted(
            (f for f in org_figures if _shown(f)),
            key=lambda f: (-(f.proportion or 0.0), name(f.key), f.key),
        )
        hidden = sorted((f for f in org_figures if not _shown(f)), key=lambda f: name(f.key))
        units = [Unit(name(f.key), f, compare(f, overall, ind.better)) for f in visible]
        chart = compare_chart(
            units,
            [name(f.key) for f in hidden],
            overall,
            CompareLabels(
                title=tx("report.chart.organizations-alt", indicator=title, overall=overall_text),
                axis=tx("report.chart.proportion-axis"),
                overall=overall_label,
                suppressed=tx("report.indicator.suppressed", min_cell=min_cell),
                better=tx("report.chart.better"),
                worse=tx("report.chart.worse"),
                similar=tx("report.chart.similar"),
            ),
            chart_id=f"compare-{number_}",
        )
        words = {
            "better": tx("report.indicator.compare-better"),
            "worse": tx("report.indicator.compare-worse"),
            "similar": tx("report.indicator.compare-similar"),
        }
        org_cells = tuple(
            _cell(u.figure, u.name, lang, words[u.compared] if u.compared else "") for u in units
        ) + tuple(_cell(f, name(f.key), lang) for f in hidden)
        views.append(
            IndicatorView(
                indicator=ind,
                anchor=f"indicator-{ind.id}",
                recommendation=guideline.by_id.get(ind.recommendation),
                overall=None if overall is None else _cell(overall, "", lang),
                months=month_cells,
                organizations=org_cells,
                # Drawn by matplotlib, which escapes every text it writes into the SVG.
                trend_svg=Markup(trend),
                compare_svg=Markup(chart),
            )
        )
    return views


def render_report(
    guideline: Guideline,
    indicators: Sequence[Indicator],
    figures: Iterable[Figure],
    summary: Mapping[str, Any],
    *,
    period: Period = (None, None),
    lang: Lang = "da",
    organizations: Mapping[str, str] | None = None,
    min_cell: int = 5,
    generated: dt.datetime | None = None,
    max_problems: int = MAX_PROBLEMS,
) -> str:
    """The audit report as one self-contained HTML document.

    ``figures`` are the engine's :class:`Figure` rows (overall, by month, by organisation) of
    ``indicators``; ``organizations`` gives names for the ``Organization/ID`` keys (a key
    without a name is shown as it is). ``summary`` is the run's summary (``summary.json``):
    ``files``, ``resources``, ``patients``, ``patients_without_episode``, ``episodes``,
    ``in_scope``, ``exclusions`` (code to count), ``problems`` (a list of ``{"file", "line",
    "problem"}``, optionally ``"message"``; the first ``max_problems`` are listed),
    ``problems_total`` (when the list holds fewer than all), ``seconds`` and ``engine``; a key
    that is missing is left out. ``period`` is the ``--from``/``--to`` selection.
    """
    texts = generic_texts()

    def _(key: str, **params: object) -> str:
        return texts(key, lang, **params)

    figure_list = list(figures)
    views = indicator_views(guideline, indicators, figure_list, lang, organizations or {}, min_cell)
    problems, problems_total, problems_more = _problems(summary, max_problems)
    axis = month_axis(figure_list)
    counts = [
        (label, number(summary[key], lang))
        for key, label in (
            ("files", "report.summary.files"),
            ("resources", "report.summary.resources"),
            ("patients", "report.summary.patients"),
            ("patients_without_episode", "report.summary.patients-without-episode"),
            ("episodes", "report.summary.episodes"),
            ("in_scope", "report.summary.in-scope"),
        )
        if isinstance(summary.get(key), int)
    ]
    # An exclusion's words are the guideline's (its vocabulary "audit_exclusions"), else its code.
    labels = guideline.vocabulary.get("audit_exclusions", {})
    exclusions = {
        (labels[code](lang) if code in labels else str(code)): number(int(count), lang)
        for code, count in (summary.get("exclusions") or {}).items()
    }
    seconds = summary.get("seconds")
    return (
        _environment()
        .get_template("report.html")
        .render(
            _=_,
            lang=lang,
            g=guideline,
            views=views,
            counts=counts,
            exclusions=exclusions,
            excluded=number(sum(int(v) for v in (summary.get("exclusions") or {}).values()), lang),
            engine=summary.get("engine"),
            seconds=None if seconds is None else decimal(float(seconds), lang),
            problems=problems,
            problems_total=number(problems_total, lang),
            problems_more=number(problems_more, lang) if problems_more > 0 else None,
            period=_period_text(period, lang),
            months=(axis[0], axis[-1]) if axis else None,
            generated=None if generated is None else generated.isoformat(timespec="seconds"),
            generated_text=None if generated is None else _moment(generated, lang),
            min_cell=min_cell,
        )
    )
