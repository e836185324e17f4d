"""The audit report for people: one self-contained HTML page in Danish (English on request),
every indicator's words from its own data, the figures in tables beside the charts, hidden
cells without counts, and charts that are deterministic, accessible SVG."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from nkr import Localized, load_guideline
from nkr._guideline import Guideline, Lang
from nkr.audit._charts import Month, TrendLabels, trend_chart
from nkr.audit._model import Figure, Indicator
from nkr.audit._report import render_report
from nkr.guidelines.lumbar_radiculopathy import package
from tests.audit._fixtures import (
    INDICATORS,
    MIN_CELL,
    ON,
    ORGANIZATIONS,
    SUMMARY,
    figure,
    figures,
)
from tests.web._html import Element, parse

G = package().content
FICTIONAL = Path(__file__).resolve().parents[1] / "guidelines" / "fictional"
SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


@cache
def _html(lang: Lang = "da") -> str:
    return render_report(
        G,
        INDICATORS,
        figures(),
        SUMMARY,
        period=(dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        lang=lang,
        organizations=ORGANIZATIONS,
        min_cell=MIN_CELL,
        generated=ON,
    )


def _rows(doc: Element, indicator: str, table: str) -> dict[str, list[str]]:
    """The table's rows by stratum key: the text of each cell."""
    section = doc.get(f"indicator-{indicator}")
    found = next(t for t in section.by_tag("table") if table in t.classes)
    return {
        tr.attrs["data-key"]: [cell.text() for cell in tr.iter()[1:] if cell.tag in ("th", "td")]
        for tr in found.by_tag("tr")
        if "data-key" in tr.attrs
    }


def test_danish_by_default_with_every_indicator_in_its_own_words() -> None:
    doc = parse(_html())
    assert doc.by_tag("html")[0].attrs["lang"] == "da"
    assert doc.by_tag("h1")[0].text() == G.title.da
    for ind in INDICATORS:
        section = doc.get(f"indicator-{ind.id}")
        text = section.text()
        assert section.by_tag("h2")[0].text().endswith(ind.title.da)
        for words in (ind.numerator, ind.denominator, ind.exclusions):
            assert words.da in text
        better = section.by_class("better")[0]
        assert better.attrs["data-better"] == ind.better
        expected = "Højere andel er bedre" if ind.better == "higher" else "Lavere andel er bedre"
        assert better.text().endswith(expected)
    # The recommendation the indicator measures, named as the guideline data names it.
    mri = doc.get("indicator-mri").text()
    assert f"Anbefaling: {G.by_id['mri'].label.da} ({G.by_id['mri'].symbols})" in mri
    # An indicator whose recommendation the guideline does not have is shown without one.
    assert "Anbefaling" not in doc.get("indicator-rare").text()


def test_english_on_request() -> None:
    doc = parse(_html("en"))
    assert doc.by_tag("html")[0].attrs["lang"] == "en"
    assert doc.by_tag("h1")[0].text() == G.title.en
    section = doc.get("indicator-mri")
    assert INDICATORS[1].numerator.en in section.text()
    assert section.by_class("better")[0].text() == "↓ A lower proportion is better"
    assert "Overall 15.0% 96 of 640 episodes" in section.by_class("overall")[0].text()
    assert "95% confidence interval 12.4–18.0%" in section.by_class("overall")[0].text()
    assert _rows(doc, "mri", "organizations")["Organization/north"][:5] == [
        "Klinik Nord Organization/north",
        "12",
        "200",
        "6.0%",
        "3.5–10.2%",
    ]


def test_tables_show_the_figures_beside_the_charts() -> None:
    doc = parse(_html())
    # 160 of 200: 80.0 %, Wilson 95 % interval 73.9-85.0 % (worked by hand).
    orgs = _rows(doc, "exercise-or-mobilisation", "organizations")
    assert orgs["Organization/north"] == [
        "Klinik Nord Organization/north",
        "160",
        "200",
        "80,0 %",
        "73,9–85,0 %",
        "bedre",
    ]
    # Sorted by proportion, highest first; hidden organisations last.
    assert list(orgs) == [
        "Organization/north",
        "Organization/west",
        "Organization/east",
        "Organization/south",
        "Organization/tiny",
    ]
    # Lower is better for MRI: the highest proportion is the worse one.
    mri = _rows(doc, "mri", "organizations")
    assert mri["Organization/south"][-1] == "ringere"
    assert mri["Organization/north"][-1] == "bedre"
    assert mri["Organization/east"][-1] == "som samlet"
    months = _rows(doc, "exercise-or-mobilisation", "months")
    assert months["2025-01"] == ["2025-01", "30", "50", "60,0 %", "46,2–72,4 %"]
    # Every month of the axis has a row: a month without episodes says so (no figure).
    assert list(months) == [f"2025-{m:02d}" for m in range(1, 13)]
    assert months["2025-05"] == ["2025-05", "Ingen forløb."]
    overall = doc.get("indicator-exercise-or-mobilisation").by_class("overall")[0].text()
    assert overall == "Samlet 64,4 % 412 af 640 forløb 95 %-konfidensinterval 60,6–68,0 %"
    contents = doc.get("contents").text()
    assert "1. Superviseret træning tilbudt 412 640 64,4 % 60,6–68,0 % ↑ Højere andel er bedre" in (
        contents
    )


def test_hidden_cells_show_no_counts_and_are_explained() -> None:
    doc = parse(_html())
    hidden_rows = {
        ("exercise-or-mobilisation", "months"): "2025-03",
        ("exercise-or-mobilisation", "organizations"): "Organization/tiny",
        ("mri", "months"): "2025-03",
        ("rare", "months"): "2025-01",
        ("rare", "organizations"): "Organization/north",
    }
    for (indicator, table), key in hidden_rows.items():
        cells = _rows(doc, indicator, table)[key]
        shown = " ".join(cells[1:])
        assert shown.startswith("< 5"), (indicator, key, cells)
        assert not re.search(r"\d", shown.replace("< 5", "")), (indicator, key, cells)
    rare = doc.get("indicator-rare")
    assert rare.by_class("overall")[0].text() == "Samlet < 5 skjult"
    # The rare indicator's counts (3 of 12 overall, 3 of 9 in the north) appear nowhere.
    words = re.sub(r"\b\d{4}(-\d{2})?\b", "", rare.text())  # months and years
    assert not re.search(r"\b(12|9)\b", words)
    note = doc.get("suppressed-note").text()
    assert "„< 5“" in note
    assert "aldrig som 0" in note
    # Not 0-numerator cells: 0 of 5 is shown (no one to identify).
    assert _rows(doc, "rare", "months")["2025-06"][1:3] == ["0", "5"]


def test_hidden_month_is_a_gap_in_the_line_never_a_zero() -> None:
    def month(key: str, num: int, den: int) -> Month:
        return Month(key, figure("x", "month", key, num, den))

    labels = TrendLabels("title", "axis", "proportion", "overall", "hidden")
    svg = trend_chart(
        [month("a", 20, 40), month("b", 2, 40), Month("c", None), month("d", 10, 40)],
        figure("x", "overall", "", 32, 120),
        labels,
        chart_id="t",
    )
    root = ET.fromstring(svg)
    # The point marker: the one marker drawn with curves (caps and ticks are straight lines).
    paths = root.iter(f"{SVG_NS}path")
    (dot,) = [p.attrib["id"] for p in paths if "id" in p.attrib and "C " in p.attrib["d"]]
    uses = [u for u in root.iter(f"{SVG_NS}use") if u.attrib[XLINK_HREF] == f"#{dot}"]
    # Two points drawn (months a and d) and the legend's: nothing for b (hidden) or c (none).
    assert len(uses) == 3
    assert len(list(root.iter(f"{SVG_NS}pattern"))) == 1  # the hidden month's hatching
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]
    assert "hidden" in texts


def test_self_contained_no_script_and_nothing_to_load() -> None:
    html = _html()
    assert "<script" not in html.lower()
    assert "<link" not in html
    assert "<img" not in html
    assert " src=" not in html
    assert "@import" not in html
    assert "url(http" not in html
    doc = parse(html)
    hrefs = [a.attrs["href"] for a in doc.by_tag("a")]
    assert all(h.startswith("#") or h == G.source.url for h in hrefs), hrefs
    for h in hrefs:
        if h.startswith("#"):
            assert doc.by_id(h[1:]) is not None, h
    csp = next(m for m in doc.by_tag("meta") if m.attrs.get("http-equiv"))
    assert csp.attrs["content"].startswith("default-src 'none'")
    # Print: A4 pages, each indicator on a page of its own.
    assert "@page { size: A4;" in html
    assert "section.indicator { break-before: page; }" in html


def test_charts_are_accessible_svg_with_unique_ids() -> None:
    doc = parse(_html())
    svgs = doc.by_tag("svg")
    assert len(svgs) == 2 * len(INDICATORS)
    for svg in svgs:
        assert svg.attrs["role"] == "img"
        title = doc.get(svg.attrs["aria-labelledby"])
        assert title.tag == "title"
        assert "tabellen under" in title.text()
    mri_trend = doc.get("indicator-mri").by_tag("svg")[0]
    assert (
        doc.get(mri_trend.attrs["aria-labelledby"])
        .text()
        .startswith("Kurve: andelen for MR-scanning inden for forløbet efter startmåned")
    )
    ids = re.findall(r'\sid="([^"]+)"', _html())
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def test_deterministic_and_text_is_escaped() -> None:
    again = render_report(
        G,
        INDICATORS,
        list(reversed(figures())),
        SUMMARY,
        period=(dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        organizations=ORGANIZATIONS,
        min_cell=MIN_CELL,
        generated=ON,
    )
    assert again == _html()
    html = _html()
    assert "Sjælden indikator &lt;b&gt;&amp;&lt;/b&gt;" in html
    # An organisation's name is text in the table and in the chart, "$" and all.
    assert "Klinik $Vest$ &lt;script&gt;" in html
    chart = parse(html).get("indicator-mri").by_tag("svg")[1]
    assert "Klinik $Vest$ <script>" in chart.text()


def test_summary_lists_the_first_problems_and_counts_the_rest() -> None:
    problems = [
        {"file": f"Observation-{i}.ndjson", "line": i + 1, "problem": "malformed"}
        for i in range(30)
    ]
    summary = {**SUMMARY, "problems": problems, "problems_total": 1234}
    html = render_report(G, INDICATORS[:1], figures(), summary, max_problems=20, generated=ON)
    doc = parse(html)
    table = doc.get("summary").by_tag("table")[0]
    rows = table.by_tag("tr")[1:]
    assert len(rows) == 20
    assert rows[0].text() == "Observation-0.ndjson 1 malformed"
    text = doc.get("summary").text()
    assert "1.234 linjer kunne ikke bruges" in text
    assert "… og 1.214 flere (se summary.json)." in text
    assert "Ressourcer 1.234.567" in text
    assert (
        "Forløb uden for målgruppen 160: Under 18 år på dag 84 90, "
        "Røde flag kendt på dag 84 60, Ingen fødselsdato 10"
    ) in text
    assert "Beregnet med duckdb" in text
    assert "Køretid 12,3 s" in text
    assert "alle forløb i data" in doc.text()
    assert doc.by_tag("time")[0].text() == "2. december 2026 03:00 UTC"
    assert doc.by_tag("time")[0].attrs["datetime"] == "2026-12-02T03:00:00+00:00"
    clean = render_report(G, INDICATORS[:1], figures(), {"episodes": 3})
    assert "Ingen: hver linje kunne læses." in parse(clean).get("summary").text()


def test_unknown_organization_and_names_missing() -> None:
    extra = [
        figure("mri", "organization", "unknown", 10, 40),
        figure("mri", "organization", "Organization/nameless", 10, 40),
    ]
    html = render_report(G, INDICATORS[1:2], figures() + extra, SUMMARY, lang="en")
    rows = _rows(parse(html), "mri", "organizations")
    assert rows["unknown"][0] == "Unknown organisation unknown"
    assert rows["Organization/nameless"][0] == "Organization/nameless"


@pytest.mark.parametrize("lang", ["da", "en"])
def test_generic_for_another_guideline(lang: Lang) -> None:
    fictional: Guideline = load_guideline(FICTIONAL / "nkr_fictional_guideline" / "guideline.toml")
    words = Localized(da="Ord", en="Words")
    indicator = Indicator(
        id="made-up",
        recommendation=fictional.recommendations[0].id,
        title=Localized(da="Påfundet", en="Made up"),
        numerator=words,
        denominator=words,
        exclusions=words,
        better="lower",
    )
    made_up: list[Figure] = [
        figure("made-up", "overall", "", 10, 20),
        figure("made-up", "month", "2024-11", 10, 20),
        figure("made-up", "organization", "Organization/a", 10, 20),
    ]
    doc = parse(render_report(fictional, [indicator], made_up, {}, lang=lang))
    assert doc.by_tag("h1")[0].text() == fictional.title(lang)
    rec = fictional.recommendations[0]
    assert f"{rec.label(lang)} ({rec.symbols})" in doc.get("indicator-made-up").text()


def test_an_indicator_without_figures() -> None:
    doc = parse(render_report(G, INDICATORS[:1], [], {}))
    section = doc.get("indicator-exercise-or-mobilisation")
    assert "Samlet – Ingen forløb i nævneren." in section.by_class("overall")[0].text()
    assert len(section.by_tag("svg")) == 2
    assert "Ingen forløb." in section.text()
