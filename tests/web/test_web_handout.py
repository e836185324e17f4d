"""The patient handout says nothing the guideline does not: every paragraph names the
recommendations it is based on and keeps their strength, the page shows the guideline's
status in words for patients and its source, and the warning signs that mean getting a doctor
at once are set apart as general advice from outside the guideline."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from markupsafe import escape

import nkr
from nkr import Lang
from nkr._guideline import Kind, Strength
from nkr.guidelines.lumbar_radiculopathy import package
from nkr.web._spec import Handout
from nkr.web._spec import long_date as _long_date

LR = package()
G = LR.content


def handout() -> Handout:
    return LR.handout


def long_date(value: dt.date, lang: Lang) -> str:
    return _long_date(value, lang, LR.texts)


def _page(client: httpx.Client, lang: Lang) -> str:
    return client.get(f"/{G.slug}/pjece?lang={lang}").text


def _esc(text: str) -> str:
    """``text`` as the page's templates write it."""
    return str(escape(text))


def _all_texts(h: Handout, lang: Lang) -> list[str]:
    """Every text a patient reads on the handout, in one language."""
    sn = h.safety_netting
    texts = [h.title(lang), h.intro(lang), h.status.text(G, lang, LR.texts)]
    texts += [sn.label(lang), sn.heading(lang), sn.intro(lang), sn.action(lang), sn.source(lang)]
    texts += [sign.text(lang) for sign in sn.signs]
    for paragraph in h.paragraphs:
        texts += [paragraph.heading(lang), paragraph.text(lang)]
    return texts


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text)


def _section(page: str, element_id: str) -> str:
    found = re.search(rf'<section class="[^"]*" id="{element_id}"[^>]*>(.*?)</section>', page, re.S)
    assert found is not None, element_id
    return found.group(1)


def test_every_paragraph_is_based_on_existing_recommendations() -> None:
    for paragraph in handout().paragraphs:
        assert paragraph.based_on, paragraph.id
        for rec_id in paragraph.based_on:
            assert rec_id in G.by_id, f"{paragraph.id}: unknown recommendation {rec_id!r}"


def test_the_handout_covers_activity_treatments_scans_and_injections() -> None:
    covered = {rec_id for p in handout().paragraphs for rec_id in p.based_on}
    for rec_id in ("physical-activity", "supervised-exercise", "manual-mobilisation", "mri"):
        assert rec_id in covered
    assert "glucocorticoid-injection" in covered


@pytest.mark.parametrize("lang", nkr.LANGS)
def test_handout_page_shows_status_source_and_references(
    app_client: httpx.Client, lang: Lang
) -> None:
    page = _page(app_client, lang)
    assert f'<html lang="{lang}">' in page
    assert G.source.citation(lang) in page
    assert G.source.url in page
    for paragraph in handout().paragraphs:
        assert _esc(paragraph.text(lang)) in page
        linked = re.findall(r'data-rec="([a-z0-9-]+)"', _section(page, f"p-{paragraph.id}"))
        assert linked == list(paragraph.based_on)


# --- Says only what the guideline says -------------------------------------------------------


@pytest.mark.parametrize("lang", nkr.LANGS)
def test_the_handout_speaks_of_nerve_root_involvement_not_a_pinched_nerve(lang: Lang) -> None:
    """The guideline says "nerverodspåvirkning" (nerve-root involvement); it does not say the
    root is pinched or compressed, so the handout must not either."""
    for text in _all_texts(handout(), lang):
        lowered = text.lower()
        for word in ("i klemme", "klemt", "pinched", "compress", "trapped"):
            assert word not in lowered, f"{word!r} in: {text}"
    assert "nerve-root involvement" in handout().intro("en")
    assert "nerverodspåvirkning" in handout().intro("da")


def test_no_paragraph_on_weak_or_good_practice_recommendations_says_recommends() -> None:
    """A weak (↑/↓) or good-practice (√) recommendation says "consider" or "good practice":
    the handout must not turn it into "the guideline recommends"."""
    for paragraph in handout().paragraphs:
        recs = [G.by_id[rec_id] for rec_id in paragraph.based_on]
        if any(rec.strength is Strength.STRONG for rec in recs):
            continue
        assert all(rec.kind is Kind.GOOD_PRACTICE or rec.strength is Strength.WEAK for rec in recs)
        for word in ("anbefal", "recommend", "skal ", "must "):
            assert word not in paragraph.text("da").lower(), (paragraph.id, word)
            assert word not in paragraph.text("en").lower(), (paragraph.id, word)


def test_the_activity_paragraph_keeps_the_guidelines_consider() -> None:
    """Recommendation 1 is "Overvej at opfordre ..." (consider encouraging), a weak ↑."""
    stay_active = next(p for p in handout().paragraphs if p.id == "stay-active")
    assert G.by_id["physical-activity"].wording.da.startswith("Overvej at opfordre")
    assert "overvejer at opfordre" in stay_active.text("da")
    assert "consider encouraging" in stay_active.text("en")


def test_the_exercise_paragraph_says_combining_may_be_considered() -> None:
    """Combining the two kinds of exercise is good practice to *consider* (√), not a must."""
    exercise = next(p for p in handout().paragraphs if p.id == "exercise")
    for text in (exercise.text("da").lower(), exercise.text("en").lower()):
        for overstated in ("gerne begge", "preferably", "keep up"):
            assert overstated not in text
    assert "overveje at kombinere" in exercise.text("da")
    assert "consider combining" in exercise.text("en")
    assert "direction-specific exercises" in exercise.text("en")


def test_acupuncture_is_not_offered_routinely_rather_than_never() -> None:
    acupuncture = next(p for p in handout().paragraphs if p.id == "acupuncture")
    assert "rutinemæssigt" in acupuncture.text("da")
    assert "routinely" in acupuncture.text("en")


_FROM_WHEN = {
    "da": re.compile(r"12 uger\b.*\b(fra|efter)\b.*\bsymptomer"),
    "en": re.compile(r"12 weeks\b.*\b(of|after|since)\b.*\bsymptoms started"),
}


@pytest.mark.parametrize("lang", nkr.LANGS)
def test_every_12_weeks_says_from_when(lang: Lang) -> None:
    """ "12 weeks" is counted from when the symptoms started; every mention says so."""
    needle = "12 uger" if lang == "da" else "12 weeks"
    mentions = 0
    for text in _all_texts(handout(), lang):
        for sentence in _sentences(text):
            if needle in sentence:
                mentions += 1
                assert _FROM_WHEN[lang].search(sentence), sentence
    assert mentions >= 2  # the intro and the spine-surgeon paragraph


# --- Safety-netting: general advice from outside the guideline ----------------------------


_SIGN_WORDS: dict[Lang, dict[str, tuple[str, ...]]] = {
    "da": {
        "bladder-bowel": ("blære", "tarm", "lade vandet", "afføring"),
        "saddle-numbness": ("følelsesløshed", "mellem benene", "endetarmsåbningen"),
        "increasing-weakness": ("mere og mere svagt",),
    },
    "en": {
        "bladder-bowel": ("bladder", "bowel", "passing urine", "stools"),
        "saddle-numbness": ("numbness", "between your legs", "back passage"),
        "increasing-weakness": ("weaker and weaker",),
    },
}


def test_the_safety_netting_names_the_warning_signs() -> None:
    signs = {sign.id: sign for sign in handout().safety_netting.signs}
    assert set(signs) == {"bladder-bowel", "saddle-numbness", "increasing-weakness"}
    for lang, expected in _SIGN_WORDS.items():
        for sign_id, words in expected.items():
            for word in words:
                assert word in signs[sign_id].text(lang).lower(), (lang, sign_id, word)


def test_the_safety_netting_says_who_to_call_in_every_region() -> None:
    """Own doctor first; out of hours lægevagten, or 1813 in the Capital Region (which has no
    lægevagt); 112 when no doctor can be reached."""
    sn = handout().safety_netting
    assert "Ring straks til din læge" in sn.action("da")
    assert "Call your doctor at once" in sn.action("en")
    for lang in nkr.LANGS:
        action = sn.action(lang)
        assert "lægevagten" in action
        assert "1813" in action
        assert "112" in action
    assert "out-of-hours doctor service" in sn.action("en")


def test_the_safety_netting_is_labelled_as_outside_the_guideline() -> None:
    sn = handout().safety_netting
    assert sn.label("da") == "Generelt råd – ikke fra retningslinjen"
    assert sn.label("en") == "General advice – not from the guideline"
    assert "Lægehåndbogen" in sn.source("da")
    assert "sundhed.dk" in sn.source("da")
    assert "Lumbal rodaffektion" in sn.source("da")
    assert "Lumbal rodaffektion" in sn.source("en")
    assert "ikke Sundhedsstyrelsens retningslinje" in sn.source("da")
    assert "not the Danish Health Authority's guideline" in sn.source("en")


@pytest.mark.parametrize("lang", nkr.LANGS)
def test_the_safety_netting_is_shown_on_the_handout_without_guideline_links(
    app_client: httpx.Client, lang: Lang
) -> None:
    page = _page(app_client, lang)
    sn = handout().safety_netting
    block = _section(page, "safety-netting")
    for text in (sn.label(lang), sn.heading(lang), sn.intro(lang), sn.action(lang)):
        assert _esc(text) in block
    assert _esc(sn.source(lang)) in block
    for sign in sn.signs:
        assert f'<li id="sign-{sign.id}">{_esc(sign.text(lang))}</li>' in block
    # Not tied to any recommendation: no based-on list, no link to a recommendation.
    assert "data-based-on" not in block
    assert "data-rec" not in block
    assert "/anbefalinger/" not in block
    # Where a patient sees it: after the intro, before the guideline's paragraphs.
    assert page.index('class="handout-intro"') < page.index('id="safety-netting"')
    assert page.index('id="safety-netting"') < page.index('class="handout-body"')


# --- The status line, for patients ---------------------------------------------------------


@pytest.mark.parametrize("lang", nkr.LANGS)
def test_the_handout_status_line_is_written_for_patients(
    app_client: httpx.Client, lang: Lang
) -> None:
    patient_status = handout().status.text(G, lang, LR.texts)
    assert G.status.since is not None
    assert not G.status.in_force
    assert long_date(G.status.since, lang) in patient_status
    assert G.version in patient_status
    assert str(G.published.year) in patient_status
    assert "{" not in patient_status
    page = _page(app_client, lang)
    status = re.search(r'<p class="handout-status">(.*?)</p>', page, re.S)
    assert status is not None
    assert _esc(patient_status) in status.group(1)
    assert _esc(G.status.text(lang)) not in status.group(1)
    assert "dømmekraft" not in status.group(1)
    assert "judgement" not in status.group(1)


def test_the_status_placeholders_are_checked_when_the_handout_loads() -> None:
    raw = handout().model_dump()
    raw["status"]["not_in_force"]["da"] = "Ikke gældende siden {sincee}."
    with pytest.raises(ValueError, match="unknown placeholder"):
        Handout.model_validate(raw)
    raw["status"]["not_in_force"]["da"] = "Ikke gældende."
    with pytest.raises(ValueError, match="since"):
        Handout.model_validate(raw)
