"""The assessment result and the quick guide as rendered HTML, from the app in-process: the
spine-surgeon deadline, recommendations against, a short result, the print view and the summary
for the record, and the guide's population reading, legend and about text."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from nkr import Lang
from nkr._cli import main as cli_main
from nkr._settings import Settings
from nkr._texts import t
from nkr.guidelines.lumbar_radiculopathy import package
from nkr.web import create_router
from tests.web._html import Element, parse

LR = package()
G = LR.content
BASE = f"/{G.slug}"
SURGEON_DUE = "deadline-spine-surgeon-assessment"
ON = dt.date(2026, 11, 26)
DUE_IN = dt.timedelta(days=G.scope.max_symptom_days)
LANGS: tuple[Lang, ...] = ("da", "en")


@cache
def _app() -> FastAPI:
    app = FastAPI()
    app.include_router(create_router(Settings()))
    return app


def _request(method: str, path: str, data: list[tuple[str, str]]) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            if method == "POST":
                return await client.post(path, data=dict_items(data))
            return await client.get(path, params=tuple(data))

    # Its own thread: the browser tests' Playwright may hold this thread's event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def dict_items(data: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Form fields with repeated names (checkbox groups) as lists, for httpx."""
    fields: dict[str, str | list[str]] = {}
    for name, value in data:
        if name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def _case(
    *,
    age: int = 45,
    days: int = 20,
    signs: tuple[str, ...] = ("reflex_loss",),
    red_flags: tuple[str, ...] = (),
    severe_pain: bool = False,
    treatments: tuple[str, ...] = (),
    planned: tuple[str, ...] = (),
) -> list[tuple[str, str]]:
    items = [
        ("assessment_date", ON.isoformat()),
        ("age", str(age)),
        ("symptom_onset", (ON - dt.timedelta(days=days)).isoformat()),
    ]
    if severe_pain:
        items.append(("severe_disabling_pain", "yes"))
    items += [("signs", s) for s in signs]
    items += [("red_flags", f) for f in red_flags]
    items += [("non_surgical_treatment", t) for t in treatments]
    items += [("planned", p) for p in planned]
    return items


def _result(case: list[tuple[str, str]], lang: Lang = "da", *, print_view: bool = False) -> str:
    extra = [("lang", lang)] + ([("print", "1")] if print_view else [])
    response = _request("POST", "/vurdering", case + extra)
    assert response.status_code == 200, response.text
    return response.text


def _onset(case: list[tuple[str, str]]) -> dt.date:
    return dt.date.fromisoformat(dict(case)["symptom_onset"])


def _result_json(case: list[tuple[str, str]], lang: Lang) -> dict[str, Any]:
    from nkr.web._form import CaseForm, assess

    assessment = assess(CaseForm.from_items(LR.form, case), LR, lang, ON)
    assert assessment is not None
    return assessment.to_json(lang)


# --- A. The spine-surgeon deadline: only where it means something, worded as it is ----------

IN_SCOPE = _case()
DUE = _case(days=70, severe_pain=True, treatments=("other",))
OVERDUE = _case(days=100, severe_pain=True, treatments=("supervised_exercise",))
RED_FLAG = _case(days=30, severe_pain=True, treatments=("other",), red_flags=("cauda_equina",))
UNDER_18 = _case(age=16, days=30, severe_pain=True, treatments=("other",))
BEYOND_NO_PAIN = _case(days=100)
TYPICAL = _case(days=70, severe_pain=True, treatments=("other",), planned=("mri",))


@pytest.mark.parametrize("lang", LANGS)
def test_deadline_in_scope_without_severe_pain_is_conditional(lang: Lang) -> None:
    page = parse(_result(IN_SCOPE, lang))
    due = (_onset(IN_SCOPE) + DUE_IN).isoformat()
    text = G.message("surgeon-deadline-if", lang, due_date=due)
    deadline = page.get(SURGEON_DUE)
    assert deadline.text() == text
    assert deadline.attrs["data-date"] == due
    assert text.startswith(("Hvis svære", "If severe"))
    assert "deadline-if" in deadline.classes
    # Not a deadline that applies: the recommendation is not applicable, nothing is due.
    assert page.get("result-spine-surgeon-assessment").attrs["data-status"] == "not-applicable"
    assert page.by_id("attention") is None


@pytest.mark.parametrize("lang", LANGS)
def test_deadline_when_due(lang: Lang) -> None:
    page = parse(_result(DUE, lang))
    due = (_onset(DUE) + DUE_IN).isoformat()
    deadline = page.get(SURGEON_DUE)
    assert deadline.text() == G.message("surgeon-deadline-due", lang, due_date=due)
    assert "deadline-due" in deadline.classes
    assert deadline.text() == _result_json(DUE, lang)["spine_surgeon_due_text"]


@pytest.mark.parametrize("lang", LANGS)
def test_deadline_overdue_past_12_weeks(lang: Lang) -> None:
    html = _result(OVERDUE, lang)
    page = parse(html)
    due = (_onset(OVERDUE) + DUE_IN).isoformat()
    deadline = page.get(SURGEON_DUE)
    assert deadline.text() == G.message("surgeon-deadline-overdue", lang, due_date=due)
    assert "deadline-overdue" in deadline.classes
    # Week 15, beyond the guideline's 12 weeks: never "week 15 of 12".
    facts = page.by_class("facts")[0].text()
    assert G.message("week-beyond", lang, week=15) in facts
    assert re.search(r"(uge|week) 15 (af|of) 12", html) is None


@pytest.mark.parametrize(
    "case",
    [RED_FLAG, UNDER_18, BEYOND_NO_PAIN],
    ids=["red-flag", "under-18", "beyond-12-weeks-without-severe-pain"],
)
@pytest.mark.parametrize("lang", LANGS)
def test_no_deadline_where_it_would_read_as_one_that_applies(
    case: list[tuple[str, str]], lang: Lang
) -> None:
    html = _result(case, lang)
    page = parse(html)
    assert page.by_id(SURGEON_DUE) is None
    assert (_onset(case) + DUE_IN).isoformat() not in html
    assert _result_json(case, lang)["spine_surgeon_due_text"] is None


def test_no_deadline_beside_an_acute_cauda_equina_notice() -> None:
    page = parse(_result(RED_FLAG))
    safety = page.get("safety")
    assert "alert-critical" in safety.classes
    assert "AKUT" in safety.text()
    assert page.by_id(SURGEON_DUE) is None
    assert page.by_id("attention") is None


# --- B. A recommendation against that applies is not a go-ahead ------------------------------

AGAINST = [r for r in G.recommendations if r.direction.value == "against"]


@pytest.mark.parametrize("lang", LANGS)
def test_recommendations_against_that_apply_look_neutral_not_green(lang: Lang) -> None:
    page = parse(_result(IN_SCOPE, lang))
    assert {r.id for r in AGAINST} == {"acupuncture", "mri", "glucocorticoid-injection"}
    group = page.get("group-applies-against")
    badge = group.by_class("badge")[0]
    assert "badge-applies-against" in badge.classes
    assert (
        badge.text()
        == {"da": "gælder – anbefaling imod", "en": "applies – recommendation against"}[lang]
    )
    assert "status-applies-against" in group.classes
    for rec in AGAINST:
        item = group.get(f"result-{rec.id}")
        assert item.attrs["data-status"] == "applies"
        assert "rec-against" in item.classes
        # Its symbols in the quick guide's colour for a recommendation against.
        assert any("rec-against" in e.classes for e in item.by_class("sym"))
    # None of them sits under a green "applies" badge or bar.
    applies = page.get("group-applies")
    for rec in AGAINST:
        assert applies.by_id(f"result-{rec.id}") is None
    for rec in G.recommendations:
        if rec.direction.value == "for" and rec.id != "spine-surgeon-assessment":
            assert applies.by_id(f"result-{rec.id}") is not None, rec.id


@pytest.mark.parametrize("lang", LANGS)
def test_due_reads_as_a_deadline(lang: Lang) -> None:
    html = _result(DUE, lang)
    item = parse(html).get("result-spine-surgeon-assessment")
    assert item.attrs["data-status"] == "due"
    assert item.by_class("badge")[0].text() == {"da": "frist", "en": "due"}[lang]
    assert "skal ske" not in html


# --- C. A short result: what needs attention first, the rest grouped -------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_attention_first_by_recommendation(lang: Lang) -> None:
    html = _result(TYPICAL, lang)
    page = parse(html)
    result = _result_json(TYPICAL, lang)
    attention = page.get("attention")
    items = [e for e in attention.by_tag("li") if e.attrs.get("id", "").startswith("result-")]
    assert [e.attrs["id"] for e in items] == ["result-mri", "result-spine-surgeon-assessment"]
    recs = {r["id"]: r for r in result["recommendations"]}
    for item in items:
        rec = G.by_id[item.attrs["id"].removeprefix("result-")]
        shown = recs[rec.id]
        assert item.by_class("result-label")[0].text() == rec.label(lang)
        assert item.by_class("badge")[0].text() == t(f"status-{shown['status']}", lang)
        assert rec.symbols in item.by_class("result-symbols")[0].text()
        assert rec.wording(lang) in item.by_class("wording")[0].text()
        assert shown["reason"] in item.by_class("reason")[0].text()
    # Labelled by recommendation, not by section heading (MRI's happen to be the same).
    label_text = items[1].by_class("result-label")[0].text()
    assert label_text == G.by_id["spine-surgeon-assessment"].label(lang)
    # Attention comes before the other recommendations, right after the scope and deadline.
    assert html.index('id="scope"') < html.index(f'id="{SURGEON_DUE}"')
    assert html.index(f'id="{SURGEON_DUE}"') < html.index('id="attention"')
    assert html.index('id="attention"') < html.index('id="recs-title"')


def _group_summary(group: Element) -> Element:
    (summary,) = group.by_tag("summary")
    return summary


@pytest.mark.parametrize("lang", LANGS)
def test_recommendations_that_merely_apply_are_one_line(lang: Lang) -> None:
    html = _result(TYPICAL, lang)
    page = parse(html)
    in_scope_reason = G.message("in-scope", lang, week=10)
    applies = page.get("group-applies")
    assert applies.tag == "details"
    assert "open" not in applies.attrs
    members = ["physical-activity", "supervised-exercise", "specific-exercise"]
    members += ["combined-exercise", "manual-mobilisation", "exercise-or-mobilisation"]
    summary = _group_summary(applies).text()
    count = {"da": "6 anbefalinger", "en": "6 recommendations"}[lang]
    symbols = ", ".join(G.by_id[m].symbols for m in members)
    assert f"{count}: {symbols}" in summary
    assert in_scope_reason in summary
    # Every one of them inside, with label, symbols, exact wording and link.
    items = [e for e in applies.by_tag("li") if e.attrs.get("id", "").startswith("result-")]
    assert [e.attrs["id"].removeprefix("result-") for e in items] == members
    for item in items:
        rec = G.by_id[item.attrs["id"].removeprefix("result-")]
        assert item.by_class("result-label")[0].text() == rec.label(lang)
        assert rec.symbols in item.by_class("result-symbols")[0].text()
        assert item.by_class("wording")[0].text().startswith(rec.wording(lang))
        links = [a.attrs["href"] for a in item.by_tag("a")]
        assert any(h.startswith(f"{BASE}/anbefalinger/{rec.id}") for h in links)
        # The reason is said once, in the group's line, not per recommendation.
        assert in_scope_reason not in item.text()
    against = page.get("group-applies-against")
    assert [
        e.attrs["id"] for e in against.by_tag("li") if e.attrs.get("id", "").startswith("result-")
    ] == ["result-acupuncture", "result-glucocorticoid-injection"]
    # Every recommendation is on the page exactly once.
    for rec in G.recommendations:
        assert html.count(f'id="result-{rec.id}"') == 1


@pytest.mark.parametrize("lang", LANGS)
def test_out_of_scope_is_one_line_with_the_reason_once(lang: Lang) -> None:
    html = _result(RED_FLAG, lang)
    page = parse(html)
    group = page.get("group-not-applicable")
    summary = _group_summary(group).text()
    assert {"da": "10 anbefalinger", "en": "10 recommendations"}[lang] in summary
    reason = _result_json(RED_FLAG, lang)["recommendations"][0]["reason"]
    assert reason in summary
    (results,) = page.by_class("results")
    assert results.text().count(str(reason)) == 1
    # The safety notice right after the scope verdict, above everything else.
    assert html.index('id="scope"') < html.index('id="safety"') < html.index('id="recs-title"')


def test_beyond_12_weeks_overdue_first_the_rest_one_line() -> None:
    page = parse(_result(OVERDUE, "en"))
    attention = page.get("attention")
    overdue = attention.get("result-spine-surgeon-assessment")
    assert overdue.by_class("badge")[0].text() == "overdue"
    group = page.get("group-not-applicable")
    ids = [e.attrs["id"] for e in group.by_tag("li") if e.attrs.get("id")]
    assert len(ids) == len(G.recommendations) - 1
    assert "week 15 (beyond the 12 weeks)" in page.by_class("facts")[0].text()


def test_result_items_in_groups_keep_their_anchors_and_status() -> None:
    page = parse(_result(IN_SCOPE))
    for rec in G.recommendations:
        item = page.get(f"result-{rec.id}")
        assert item.attrs["data-status"] in {"applies", "not-applicable"}


# --- D. Print for the record: a line for the patient, the summary to copy ---------------------


def _cli_summary(
    case: list[tuple[str, str]],
    lang: Lang,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    fields = dict_items(case)
    data: dict[str, object] = {
        "age": int(str(fields["age"])),
        "symptom_onset": fields["symptom_onset"],
        "severe_disabling_pain": fields.get("severe_disabling_pain") == "yes",
    }
    for name in ("signs", "red_flags", "non_surgical_treatment", "planned"):
        value = fields.get(name, [])
        data[name] = value if isinstance(value, list) else [value]
    path = tmp_path_factory.mktemp("case") / "case.json"
    path.write_text(json.dumps(data))
    capsys.readouterr()
    code = cli_main(
        ["evaluate", str(path), "--date", ON.isoformat(), "--lang", lang, "--format", "summary"]
    )
    assert code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("print_view", [False, True], ids=["result", "print-view"])
@pytest.mark.parametrize(
    "case", [TYPICAL, RED_FLAG, OVERDUE, IN_SCOPE], ids=["typical", "red-flag", "overdue", "in"]
)
@pytest.mark.parametrize("lang", LANGS)
def test_summary_for_the_record_is_the_clis(
    case: list[tuple[str, str]],
    lang: Lang,
    print_view: bool,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    page = parse(_result(case, lang, print_view=print_view))
    textarea = page.get("record-summary-text")
    assert textarea.tag == "textarea"
    assert "readonly" in textarea.attrs
    (label,) = [e for e in page.by_tag("label") if e.attrs.get("for") == "record-summary-text"]
    assert label.text() == {"da": "Resumé til journalen", "en": "Summary for the record"}[lang]
    expected = _cli_summary(case, lang, capsys, tmp_path_factory)
    assert textarea.raw_text().splitlines() == expected.splitlines()


@pytest.mark.parametrize("lang", LANGS)
def test_print_view_has_a_blank_line_for_the_patient(lang: Lang) -> None:
    html = _result(TYPICAL, lang, print_view=True)
    page = parse(html)
    assert "print-view" in page.by_tag("body")[0].classes
    line = page.get("patient-id")
    label = {"da": "Patient (navn/CPR):", "en": "Patient (name/CPR no.):"}[lang]
    assert line.text() == label
    blank = line.by_class("write-line")
    assert len(blank) == 1
    assert blank[0].text() == ""
    # The groups are open on paper, so each recommendation is named.
    assert "open" in page.get("group-applies").attrs
    # No patient data in any address on the page.
    onset = dict(TYPICAL)["symptom_onset"]
    for element in page.iter():
        for name in ("href", "action", "src"):
            assert onset not in element.attrs.get(name, "")


def test_result_page_has_the_patient_line_only_for_print() -> None:
    page = parse(_result(TYPICAL))
    line = page.by_id("patient-id")
    assert line is None or "print-only" in line.classes


# --- E. The quick guide: population, the software's reading, legend and about verbatim -------


def _guide(lang: Lang) -> str:
    response = _request("GET", "/", [("lang", lang)])
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize("lang", LANGS)
def test_population_then_the_softwares_reading_marked_as_assumptions(lang: Lang) -> None:
    html = _guide(lang)
    page = parse(html)
    reading = page.get("scope-reading")
    assert "scope-reading" in reading.classes
    title = reading.by_class("scope-reading-title")[0].text()
    assert title == t("scope-reading", lang) + ":"
    assert {"da": "antagelser", "en": "assumptions"}[lang] in title
    texts = [e.text() for e in reading.by_tag("li")]
    assert texts == [a.text(lang) for a in G.scope_assumptions]
    assert [a.id for a in G.scope_assumptions] == ["age-18-or-older", "sensory-disturbance-sign"]
    intro = page.by_class("intro")[0]
    population = intro.by_tag("p")[0].text()
    assert population.endswith(G.scope.text(lang))
    # The population text, then the reading, then the about paragraphs.
    text = intro.text()
    assert text.index(G.scope.text(lang)) < text.index(title) < text.index(G.about[0](lang))


@pytest.mark.parametrize("lang", LANGS)
def test_legend_and_about_are_shown_verbatim(lang: Lang) -> None:
    page = parse(_guide(lang))
    legend = page.get("legend")
    paragraphs = [e.text() for e in legend.by_tag("p")]
    for text in (
        G.legend.intro_strength(lang),
        G.legend.good_practice(lang),
        G.legend.intro_certainty(lang),
        G.legend.no_evidence(lang),
    ):
        assert text in paragraphs
    rows = [[c.text() for c in r.iter()[1:] if c.tag in ("th", "td")] for r in legend.by_tag("tr")]
    for strength in G.legend.strength:
        assert [strength.symbol, strength.meaning(lang)] in rows
    for certainty in G.legend.certainty:
        assert [f"({certainty.symbol})", certainty.meaning(lang)] in rows
    about = [e.text() for e in page.by_class("about")]
    assert about == [p(lang) for p in G.about]
    if lang == "da":
        assert G.legend.good_practice.da.startswith("Symbolet (√) står for god praksis.")


def test_english_translation_note_is_a_sentence() -> None:
    page = parse(_guide("en"))
    (note,) = page.by_class("translation-note")
    text = note.text()
    assert text.endswith(".")
    assert not text.endswith(":")
    assert "official" in text
    assert parse(_guide("da")).by_class("translation-note") == []
    rec = parse(_request("GET", "/anbefalinger/mri", [("lang", "en")]).text)
    (rec_note,) = rec.by_class("translation-note")
    assert rec_note.text().endswith(".")


@pytest.mark.parametrize("lang", LANGS)
def test_recommendations_are_named_by_their_label(lang: Lang) -> None:
    """Two or three recommendations share a section: the recommendation page and the guide's
    links name the recommendation itself."""
    for rec in G.recommendations:
        page = parse(_request("GET", f"/anbefalinger/{rec.id}", [("lang", lang)]).text)
        assert page.by_tag("h1")[0].text() == rec.label(lang)
    guide = parse(_guide(lang))
    names = [
        a.text() for a in guide.by_tag("a") if a.attrs["href"].startswith(f"{BASE}/anbefalinger/")
    ]
    assert len(names) == len(set(names)) == len(G.recommendations)
