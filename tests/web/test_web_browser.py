"""End to end in a real headless Chromium against a real ``nkr serve``: what a GP sees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from nkr import Lang
from nkr._clock import today
from nkr._texts import t as _t
from nkr.guidelines.lumbar_radiculopathy import package
from nkr.web._spec import Handout

Shot = Callable[..., None]
Check = Callable[[Page], None]
LR = package()
G = LR.content
SURGEON_DUE = "#deadline-spine-surgeon-assessment"


def _days_ago(days: int) -> str:
    return (today() - dt.timedelta(days=days)).isoformat()


def _status(page: Page, rec_id: str) -> str | None:
    return page.locator(f"#result-{rec_id}").get_attribute("data-status")


def test_quick_guide_in_danish_then_english(
    page: Page, server: str, shot: Shot, accessible: Check
) -> None:
    response = page.goto(f"{server}/")
    assert response is not None
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page.locator("h1")).to_have_text(G.title("da"))
    expect(page.locator(".notice-status")).to_contain_text("Ikke gældende")
    expect(page.locator(".notice-status")).to_contain_text("22. marts 2023")
    headings = page.locator(".guide-section h2").all_inner_texts()
    assert headings == [s.heading("da") for s in G.sections]
    wordings = page.locator(".rec .wording").all_inner_texts()
    assert len(wordings) == len(G.recommendations)
    for rec, shown in zip(G.recommendations, wordings, strict=True):
        assert shown.startswith(rec.wording("da"))
        assert shown.endswith(f"({rec.certainty_symbol})" if rec.certainty_symbol else ".")
    expect(page.locator("#legend")).to_contain_text("en svag/betinget anbefaling imod")
    expect(page.locator("#legend")).to_contain_text("(⊕⊕⊕⊕)")
    accessible(page)
    shot(page, "01-quick-guide-da")

    page.get_by_role("link", name="English").click()
    page.wait_for_url("**/?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".notice-status")).to_contain_text("Not in force")
    expect(page.locator(".guide-section h2").first).to_have_text(G.sections[0].heading("en"))
    accessible(page)
    shot(page, "02-quick-guide-en")
    page.get_by_role("link", name="Dansk").click()
    expect(page.locator("html")).to_have_attribute("lang", "da")


def test_keyboard_skip_link_reaches_main(page: Page, server: str) -> None:
    page.goto(f"{server}/")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_recommendation_page_and_404(
    page: Page, server: str, shot: Shot, accessible: Check
) -> None:
    page.goto(f"{server}/")
    page.locator("#rec-mri a").click()
    page.wait_for_url("**/anbefalinger/mri")
    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page.locator(".rec-card-wording")).to_have_text(G.by_id["mri"].wording("da"))
    expect(page.locator(".meta-rec .grade-words")).to_have_text(
        "en svag/betinget anbefaling imod; evidensens sikkerhed: meget lav"
    )
    expect(page.locator(".notice-status")).to_be_visible()
    accessible(page)
    shot(page, "03-recommendation-mri-da")

    page.get_by_role("link", name="English").click()
    expect(page.locator(".meta-rec .grade-words")).to_have_text(
        "a weak/conditional recommendation against; certainty of evidence: very low"
    )
    expect(page.locator(".official-wording")).to_contain_text(G.by_id["mri"].wording("da"))
    shot(page, "04-recommendation-mri-en")

    response = page.goto(f"{server}/anbefalinger/findes-ikke")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Siden findes ikke")
    accessible(page)
    shot(page, "05-recommendation-404")


def _fill_case(
    page: Page,
    *,
    age: str = "",
    birth_date: str = "",
    onset: str = "",
    signs: tuple[str, ...] = ("radicular_leg_pain",),
    red_flags: tuple[str, ...] = (),
    severe_pain: bool = False,
    treatments: tuple[str, ...] = (),
    planned: tuple[str, ...] = (),
) -> None:
    page.locator("#age").fill(age)
    page.locator("#birth_date").fill(birth_date)
    page.locator("#symptom_onset").fill(onset)
    for code in signs:
        page.locator(f"#signs-{code}").check()
    for code in red_flags:
        page.locator(f"#red_flags-{code}").check()
    if severe_pain:
        page.locator("#severe_disabling_pain").check()
    for code in treatments:
        page.locator(f"#non_surgical_treatment-{code}").check()
    for code in planned:
        page.locator(f"#planned-{code}").check()


def _submit(page: Page) -> None:
    with page.expect_navigation():
        page.locator(".case-form button[type=submit]").click()


def test_assessment_in_scope(page: Page, server: str, shot: Shot, accessible: Check) -> None:
    page.goto(f"{server}/vurdering")
    expect(page.locator("#assessment_date")).to_have_value(today().isoformat())
    accessible(page)
    shot(page, "06-assessment-form-da")
    _fill_case(page, age="45", onset=_days_ago(20), signs=("radicular_leg_pain", "reflex_loss"))
    _submit(page)
    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page.locator(".scope-verdict")).to_have_text("I målgruppen")
    expect(page.locator(".facts")).to_contain_text("uge 3 af 12")
    due = (today() + dt.timedelta(days=64)).isoformat()
    # Only the condition it is: no severe pain is recorded.
    expect(page.locator(SURGEON_DUE)).to_have_text(
        G.message("surgeon-deadline-if", "da", due_date=due)
    )
    for rec in G.recommendations:
        expected = "not-applicable" if rec.id == "spine-surgeon-assessment" else "applies"
        assert _status(page, rec.id) == expected, rec.id
    # A recommendation against that applies is no green go-ahead.
    against = page.locator("#group-applies-against")
    expect(against.locator("summary .badge")).to_have_text("gælder – anbefaling imod")
    expect(against.locator("#result-mri")).to_be_attached()
    # Nothing needs attention: the rest is a line per status, collapsed.
    expect(page.locator("#attention")).to_have_count(0)
    expect(page.locator("#group-applies summary")).to_contain_text("6 anbefalinger")
    expect(page.locator("#result-physical-activity")).to_be_hidden()
    expect(page.locator("#safety")).to_have_count(0)
    assert page.locator(".assumptions li").count() == len(G.assumptions)
    accessible(page)
    shot(page, "07-result-in-scope-da")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".scope-verdict")).to_have_text("In the target population")
    expect(page.locator(".facts")).to_contain_text("week 3 of 12")
    shot(page, "08-result-in-scope-en")


def test_assessment_red_flag_shows_safety_notice(
    page: Page, server: str, shot: Shot, accessible: Check
) -> None:
    page.goto(f"{server}/vurdering")
    _fill_case(page, age="60", onset=_days_ago(10), red_flags=("cauda_equina",))
    _submit(page)
    safety = page.locator("#safety")
    expect(safety).to_be_visible()
    expect(safety).to_contain_text("AKUT")
    expect(safety).to_contain_text("Cauda equina-symptomer")
    # The notice stands apart from the recommendations, above them.
    assert page.locator(".results #safety").count() == 0
    expect(page.locator(".scope-verdict")).to_have_text("Uden for målgruppen")
    assert {_status(page, r.id) for r in G.recommendations} == {"not-applicable"}
    accessible(page)
    shot(page, "09-result-red-flag-da")


def test_assessment_under_18_is_out_of_scope(page: Page, server: str) -> None:
    page.goto(f"{server}/vurdering?lang=en")
    _fill_case(page, age="16", onset=_days_ago(7))
    _submit(page)
    expect(page.locator(".scope-verdict")).to_have_text("Outside the target population")
    expect(page.locator(".scope-reasons")).to_contain_text("under 18 (16 years)")
    assert _status(page, "physical-activity") == "not-applicable"


def test_assessment_beyond_12_weeks_with_severe_pain_is_overdue(
    page: Page, server: str, shot: Shot
) -> None:
    page.goto(f"{server}/vurdering")
    onset = today() - dt.timedelta(days=100)
    _fill_case(
        page,
        birth_date="1970-04-02",
        onset=onset.isoformat(),
        severe_pain=True,
        treatments=("supervised_exercise",),
    )
    _submit(page)
    assert _status(page, "spine-surgeon-assessment") == "overdue"
    expect(page.locator("#result-spine-surgeon-assessment .badge")).to_have_text(
        "frist overskredet"
    )
    due = (onset + dt.timedelta(days=84)).isoformat()
    expect(page.locator("#result-spine-surgeon-assessment .reason")).to_contain_text(due)
    expect(page.locator("#attention #result-spine-surgeon-assessment")).to_be_visible()
    expect(page.locator(".scope-reasons")).to_contain_text("100 dage")
    expect(page.locator(".facts")).to_contain_text("uge 15 (ud over de 12 uger)")
    expect(page.locator(SURGEON_DUE)).to_have_text(
        G.message("surgeon-deadline-overdue", "da", due_date=due)
    )
    shot(page, "10-result-overdue-da")


def test_assessment_planned_mri_is_caution(page: Page, server: str, shot: Shot) -> None:
    page.goto(f"{server}/vurdering")
    _fill_case(page, age="38", onset=_days_ago(14), planned=("mri", "bed_rest"))
    _submit(page)
    assert _status(page, "mri") == "caution"
    assert _status(page, "physical-activity") == "caution"
    assert _status(page, "glucocorticoid-injection") == "applies"
    expect(page.locator("#result-mri .reason")).to_contain_text("MR-skanning af lænderyggen")
    # What needs attention is listed first, with the engine's reasons.
    expect(page.locator("#attention li")).to_have_count(2)
    expect(page.locator("#attention")).to_contain_text("Planlagt nu: Sengeleje.")
    shot(page, "10b-result-caution-da", full_page=False)


def test_invalid_input_shows_inline_errors_and_keeps_values(
    page: Page, server: str, shot: Shot, accessible: Check
) -> None:
    page.goto(f"{server}/vurdering")
    _fill_case(
        page,
        age="45",
        birth_date="1980-01-01",
        onset="2026-02-30",
        signs=("reflex_loss",),
        planned=("acupuncture",),
    )
    _submit(page)
    expect(page.locator(".error-summary")).to_be_visible()
    onset_field = page.locator(".field:has(#symptom_onset)")
    expect(onset_field.locator(".field-error")).to_contain_text("findes ikke")
    expect(page.locator("#symptom_onset")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("fieldset:has(#age) > .field-error")).to_contain_text("ikke begge")
    # Everything typed is still there.
    expect(page.locator("#symptom_onset")).to_have_value("2026-02-30")
    expect(page.locator("#age")).to_have_value("45")
    expect(page.locator("#birth_date")).to_have_value("1980-01-01")
    expect(page.locator("#signs-reflex_loss")).to_be_checked()
    expect(page.locator("#planned-acupuncture")).to_be_checked()
    accessible(page)
    shot(page, "11-assessment-errors-da")

    # Switching language re-checks the same input and shows the errors in English.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".field:has(#symptom_onset) .field-error")).to_contain_text(
        "does not exist"
    )
    expect(page.locator("#symptom_onset")).to_have_value("2026-02-30")

    page.locator("#birth_date").fill("")
    page.locator("#symptom_onset").fill((today() + dt.timedelta(days=3)).isoformat())
    _submit(page)
    expect(page.locator(".field:has(#symptom_onset) .field-error")).to_have_text(
        "Error: Symptom onset cannot be after the assessment date."
    )
    shot(page, "12-assessment-errors-en")


def test_print_view_of_result(page: Page, server: str, shot: Shot, accessible: Check) -> None:
    page.goto(f"{server}/vurdering")
    _fill_case(page, age="52", onset=_days_ago(70), severe_pain=True, treatments=("other",))
    _submit(page)
    assert _status(page, "spine-surgeon-assessment") == "due"
    with page.expect_navigation():
        page.get_by_role("button", name="Udskriftsvenlig visning").click()
    expect(page.locator("body")).to_have_class("print-view")
    expect(page.locator(".site-nav")).to_be_hidden()
    expect(page.locator(".print-meta")).to_contain_text("Udskrevet")
    accessible(page)
    shot(page, "13-result-print-view-da")
    page.emulate_media(media="print")
    expect(page.locator(".result-actions")).to_be_hidden()
    expect(page.locator(".site-header")).to_be_hidden()
    shot(page, "14-result-print-media-da")


def _pdf_pages(page: Page) -> int:
    pdf = page.pdf(format="A4", print_background=True)
    return pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")


RESULT_TEXTS = {
    "da": {
        "print": "Udskriftsvenlig visning",
        "other": "English",
        "patient": "Patient (navn/CPR):",
    },
    "en": {"print": "Print view", "other": "Dansk", "patient": "Patient (name/CPR no.):"},
}


@pytest.mark.parametrize("lang", ["da", "en"])
def test_result_with_caution_and_due_then_print_view(
    page: Page, server: str, lang: Lang, shot: Shot, accessible: Check
) -> None:
    """The typical case: an MRI planned, the spine-surgeon assessment due. What needs
    attention comes first, the rest in a line each; the print view fits two A4 pages."""
    texts = RESULT_TEXTS[lang]
    page.goto(f"{server}/vurdering?lang={lang}")
    _fill_case(
        page,
        age="52",
        onset=_days_ago(70),
        signs=("radicular_leg_pain", "reflex_loss"),
        severe_pain=True,
        treatments=("supervised_exercise",),
        planned=("mri",),
    )
    _submit(page)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    attention = page.locator("#attention")
    expect(attention.locator(".result-label")).to_have_text(
        [G.by_id["mri"].label(lang), G.by_id["spine-surgeon-assessment"].label(lang)]
    )
    expect(attention.locator("#result-spine-surgeon-assessment .badge")).to_have_text(
        {"da": "frist", "en": "due"}[lang]
    )
    expect(attention.locator("#result-mri .wording")).to_have_text(G.by_id["mri"].wording(lang))
    expect(page.locator(SURGEON_DUE)).to_be_visible()
    # Everything that merely applies is one collapsed line: open it without JavaScript.
    applies = page.locator("#group-applies")
    expect(applies.locator("#result-supervised-exercise")).to_be_hidden()
    accessible(page)
    shot(page, f"19-result-caution-due-{lang}")
    applies.locator("summary").click()
    expect(applies.locator("#result-supervised-exercise .wording")).to_have_text(
        G.by_id["supervised-exercise"].wording(lang)
    )
    page.locator("#record-summary summary").click()
    expect(page.locator("#record-summary-text")).to_be_visible()
    accessible(page)
    shot(page, f"20-result-caution-due-open-{lang}")

    with page.expect_navigation():
        page.get_by_role("button", name=texts["print"]).click()
    expect(page.locator("body")).to_have_class("print-view")
    expect(page.locator("#patient-id")).to_be_visible()
    expect(page.locator("#patient-id")).to_have_text(texts["patient"])
    expect(page.locator("#record-summary-text")).to_be_visible()
    # No patient data in the address.
    assert "symptom_onset" not in page.url
    accessible(page)
    shot(page, f"21-result-print-view-{lang}")
    page.emulate_media(media="print")
    expect(page.locator("#record-summary")).to_be_hidden()
    expect(page.locator("#patient-id")).to_be_visible()
    pages = _pdf_pages(page)
    print(f"print view PDF ({lang}): {pages} page(s)")
    assert pages <= 2
    # The width of an A4 page inside its margins (210 mm - 2 x 14 mm at 96 dpi).
    page.set_viewport_size({"width": 688, "height": 1017})
    shot(page, f"22-result-print-media-{lang}")


@pytest.mark.parametrize("lang", ["da", "en"])
def test_result_out_of_scope_is_short(
    page: Page, server: str, lang: Lang, shot: Shot, accessible: Check
) -> None:
    page.goto(f"{server}/vurdering?lang={lang}")
    _fill_case(page, age="44", onset=_days_ago(101))
    _submit(page)
    expect(page.locator(".scope-verdict")).to_have_text(_t("out-of-scope", lang))
    expect(page.locator(".facts")).to_contain_text(G.message("week-beyond", lang, week=15))
    expect(page.locator(SURGEON_DUE)).to_have_count(0)
    expect(page.locator("#attention")).to_have_count(0)
    group = page.locator("#group-not-applicable")
    expect(group.locator("summary")).to_contain_text(
        {"da": "10 anbefalinger", "en": "10 recommendations"}[lang]
    )
    accessible(page)
    shot(page, f"23-result-out-of-scope-{lang}")


def test_against_looks_the_same_in_the_guide_and_the_result(page: Page, server: str) -> None:
    """Acupuncture's √ against (and MRI's ↓) in the quick guide's colour for a recommendation
    against, on both pages; the badge in that colour too, never the green of a go-ahead."""

    def colour(selector: str, prop: str = "color") -> str:
        return str(page.locator(selector).first.evaluate(f"e => getComputedStyle(e)['{prop}']"))

    page.goto(f"{server}/")
    guide_against = colour("#rec-acupuncture .symbols")
    guide_for = colour("#rec-physical-activity .symbols")
    assert guide_against == colour("#rec-mri .symbols")
    assert guide_against != guide_for
    page.goto(f"{server}/vurdering")
    _fill_case(page, age="45", onset=_days_ago(20), signs=("reflex_loss",))
    _submit(page)
    page.locator("#group-applies-against summary").click()
    for rec_id in ("acupuncture", "mri", "glucocorticoid-injection"):
        assert colour(f"#result-{rec_id} .result-symbols") == guide_against, rec_id
    assert colour("#result-physical-activity .result-symbols") == guide_for
    badge = "#group-applies-against summary .badge"
    assert colour(badge) == guide_against
    green = colour("#group-applies summary .badge")
    assert colour(badge) != green
    bar = colour("#group-applies-against", "border-left-color")
    assert bar != colour("#group-applies", "border-left-color")


@pytest.mark.parametrize("lang", ["da", "en"])
def test_patient_handout_is_one_printed_page(
    page: Page, server: str, lang: Lang, shot: Shot, accessible: Check
) -> None:
    def handout() -> Handout:
        return LR.handout

    page.goto(f"{server}/pjece?lang={lang}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    status = handout().status.text(G, lang, LR.texts)
    expect(page.locator(".handout-status")).to_contain_text(status)
    expect(page.locator(".handout-source")).to_contain_text(G.source.url)
    safety = page.locator("#safety-netting")
    expect(safety).to_be_visible()
    expect(safety.locator(".handout-safety-label")).to_have_text(
        handout().safety_netting.label(lang)
    )
    expect(safety.locator("li")).to_have_count(len(handout().safety_netting.signs))
    accessible(page)
    shot(page, f"15-handout-{lang}")
    page.emulate_media(media="print")
    assert _pdf_pages(page) == 1
    expect(safety).to_be_visible()  # the warning signs are printed, too
    shot(page, f"16-handout-print-{lang}")


def test_integrators_page(page: Page, server: str, shot: Shot, accessible: Check) -> None:
    page.goto(f"{server}/integration")
    expect(page.locator("h1")).to_contain_text("CDS Hooks")
    services = page.locator("article.service")
    if services.count() == 0:
        expect(page.locator("#no-services")).to_be_visible()
    else:
        expect(page.locator("#service-nkr-lumbal-radikulopati-patient-view")).to_be_visible()
        form = page.locator("#service-nkr-lumbal-radikulopati-patient-view form")
        form.locator("select").select_option("2-surgeon-due")
        form.locator("button").click()
        expect(page.locator("#result")).to_be_visible()
        expect(page.locator("#result .hook-status")).to_contain_text("HTTP")
    accessible(page)
    shot(page, "17-integration-da")


def test_clinical_pages_work_without_javascript(browser: Browser, server: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server}/vurdering?lang=en")
        _fill_case(page, age="45", onset=_days_ago(30), planned=("glucocorticoid_injection",))
        _submit(page)
        assert _status(page, "glucocorticoid-injection") == "caution"
        page.goto(f"{server}/integration")
        if page.locator("article.service").count():
            page.locator("article.service form button").first.click()
            expect(page.locator("#result")).to_be_visible()
    finally:
        context.close()


def test_phone_sized_screen(browser: Browser, server: str, shot: Shot, accessible: Check) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(f"{server}/vurdering")
        _fill_case(
            page,
            age="52",
            onset=_days_ago(70),
            signs=("reflex_loss",),
            severe_pain=True,
            treatments=("other",),
            red_flags=("suspected_fracture",),
        )
        _submit(page)
        expect(page.locator("#safety")).to_be_visible()
        # Nothing wider than the screen.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        accessible(page)
        shot(page, "18-result-phone-da", full_page=False)
    finally:
        context.close()
