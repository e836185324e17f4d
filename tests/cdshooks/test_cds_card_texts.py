"""What the cards say, over every card the service can give: dates only where they mean
something, acute red flags as critical, suggestions and override reasons that fit their card,
sources that say what they are, and wording (issue 8)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from nkr._guideline import Lang
from nkr.guidelines import lumbar_radiculopathy as lr
from nkr.web import _cds

from .conftest import Cds
from .fhir_data import (
    ORDER_TOPICS,
    RED_FLAG_CODES,
    birth_date_for_age,
    hook_request,
    pain,
    patient,
    procedure,
    radiculopathy,
    red_flag,
    service_request,
    today,
)

G = lr.package().content
LANGS: tuple[Lang, ...] = ("da", "en")
ACUTE = ("cauda_equina", "progressive_paresis")


def severe_pain(onset_days_ago: int, hook: str = "patient-view", **kwargs: Any) -> dict[str, Any]:
    return hook_request(
        hook,
        conditions=kwargs.pop("conditions", [radiculopathy(onset_days_ago)]),
        observations=[pain(8)],
        procedures=[procedure("supervised_exercise")],
        **kwargs,
    )


def with_red_flags(body: dict[str, Any], *flags: str) -> dict[str, Any]:
    body["prefetch"]["conditions"]["entry"] += [{"resource": red_flag(f)} for f in flags]
    return body


def all_requests() -> Iterator[tuple[str, dict[str, Any]]]:
    """(hook, request) for every kind of card, and for the web page's sample patients."""
    yield "patient-view", hook_request("patient-view")
    yield (
        "patient-view",
        hook_request(
            "patient-view", conditions=[radiculopathy(onset_days_ago=None, recorded_days_ago=10)]
        ),
    )
    for days in (60, 84, 85, 200):
        yield "patient-view", severe_pain(days)
    for flag in sorted(RED_FLAG_CODES):
        yield "patient-view", with_red_flags(severe_pain(60), flag)
    yield "patient-view", with_red_flags(hook_request("patient-view"), *sorted(RED_FLAG_CODES))
    for hook in ("order-select", "order-sign"):
        drafts = [service_request(kind, f"d-{kind}") for kind in ORDER_TOPICS]
        yield hook, hook_request(hook, drafts=drafts)
        yield hook, with_red_flags(hook_request(hook, drafts=drafts), "cauda_equina")
    for sample in lr.package().samples.values():
        for hook in ("patient-view", "order-select", "order-sign"):
            yield hook, _cds.hook_request(sample, hook, today())


def every_card(cds: Cds, lang: str) -> list[dict[str, Any]]:
    headers = {"Accept-Language": lang}
    return [card for hook, body in all_requests() for card in cds.cards(hook, body, headers)]


def texts_of(card: dict[str, Any]) -> list[str]:
    """Every text of a card a clinician reads."""
    source = card["source"]
    out = [card["summary"], card.get("detail", ""), source["label"]]
    out.append(source.get("topic", {}).get("display", ""))
    for s in card.get("suggestions", []):
        out.append(s["label"])
        out += [a["description"] for a in s.get("actions", [])]
    out += [r["display"] for r in card.get("overrideReasons", [])]
    out += [link["label"] for link in card.get("links", [])]
    return out


@pytest.fixture(scope="module")
def cards_by_lang(cds: Cds) -> dict[str, list[dict[str, Any]]]:
    return {lang: every_card(cds, lang) for lang in LANGS}


def topic(card: dict[str, Any]) -> str:
    code: str = card["source"]["topic"]["code"]
    return code


def due_date(onset_days_ago: int) -> str:
    return (today() - dt.timedelta(days=onset_days_ago - 84)).isoformat()


# -- 1. the spine-surgeon date only where it means something ---------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_overview_words_the_date_as_the_condition_it_is(cds: Cds, lang: Lang) -> None:
    [card] = cds.cards("patient-view", hook_request("patient-view"), {"Accept-Language": lang})
    assert topic(card) == "overview"
    text = G.message("surgeon-deadline-if", lang, due_date=due_date(20))
    assert text in card["detail"]
    # One wording of the date, the assessment's; no sentence of the card's own besides it.
    assert card["detail"].count(due_date(20)) == 1


@pytest.mark.parametrize("lang", LANGS)
def test_overview_and_surgeon_card_when_due(cds: Cds, lang: Lang) -> None:
    cards = cds.cards("patient-view", severe_pain(60), {"Accept-Language": lang})
    assert [topic(c) for c in cards] == ["overview", "spine-surgeon-assessment"]
    overview, surgeon = cards
    due = due_date(60)
    assert G.message("surgeon-deadline-due", lang, due_date=due) in overview["detail"]
    assert G.message("surgeon-deadline-if", lang, due_date=due) not in overview["detail"]
    assert due in surgeon["summary"]


@pytest.mark.parametrize("hook", ["patient-view", "order-sign"])
@pytest.mark.parametrize("flag", sorted(RED_FLAG_CODES))
def test_no_date_for_a_red_flag_patient(cds: Cds, hook: str, flag: str) -> None:
    drafts = [service_request("mri", "m")] if hook == "order-sign" else None
    body = with_red_flags(severe_pain(60, hook, drafts=drafts), flag)
    for lang in LANGS:
        [card] = cds.cards(hook, body, {"Accept-Language": lang})
        assert topic(card) == "safety"
        text = "\n".join(texts_of(card))
        assert due_date(60) not in text, text
        assert "senest" not in text
        assert "deadline" not in text.lower()
        assert "frist" not in text.lower()


def test_no_card_and_no_date_under_18(cds: Cds) -> None:
    for hook in ("patient-view", "order-sign"):
        body = severe_pain(
            60,
            hook,
            pat=patient(birth_date=birth_date_for_age(17)),
            drafts=[service_request("mri", "m")] if hook == "order-sign" else None,
        )
        assert cds.cards(hook, body) == []


# -- 2. acute red flags are critical ---------------------------------------------------------


@pytest.mark.parametrize("flag", sorted(RED_FLAG_CODES))
def test_acute_red_flags_are_critical(cds: Cds, flag: str) -> None:
    body = with_red_flags(hook_request("patient-view"), flag)
    acute = flag in ACUTE
    da, en = (cds.cards("patient-view", body, {"Accept-Language": lang})[0] for lang in LANGS)
    assert da["indicator"] == en["indicator"] == ("critical" if acute else "warning")
    # An acute card says what to do, in both languages.
    assert ("Vurdér patienten akut, og henvis akut" in da["detail"]) is acute
    assert ("Assess the patient acutely and refer acutely" in en["detail"]) is acute


def test_integrators_page_shows_the_critical_card(cds: Cds) -> None:
    response = cds.client.post(
        "/integration",
        data={
            "service": "nkr-lumbal-radikulopati-patient-view",
            "sample": "4-red-flag",
            "partial": "1",
        },
    )
    assert response.status_code == 200
    assert 'class="cds-card cds-critical"' in response.text
    assert "Kritisk" in response.text


# -- 3. suggestions and override reasons that fit their card ---------------------------------


def test_removing_a_draft_order_is_not_marked_recommended(
    cards_by_lang: dict[str, list[dict[str, Any]]],
) -> None:
    seen = set()
    for card in cards_by_lang["da"]:
        for suggestion in card.get("suggestions", []):
            recommended = topic(card) == "spine-surgeon-assessment"
            assert suggestion["isRecommended"] is recommended, (topic(card), suggestion)
            seen.add(topic(card))
    assert seen == {"spine-surgeon-assessment", *ORDER_TOPICS.values()}


# The override reasons each card offers, as the clinician reads them (Danish, then English).
OVERRIDE_REASONS = {
    "overview": [
        ("acknowledged", "Set og vurderet", "Seen and assessed"),
        (
            "record-incorrect",
            "Journalens data er ikke korrekte",
            "The record's data are not correct",
        ),
    ],
    "safety": [
        ("acknowledged", "Set og vurderet", "Seen and assessed"),
        ("already-arranged", "Allerede henvist eller aftalt", "Already referred or arranged"),
        (
            "record-incorrect",
            "Journalens data er ikke korrekte",
            "The record's data are not correct",
        ),
    ],
    "spine-surgeon-assessment": [
        ("already-arranged", "Allerede henvist eller aftalt", "Already referred or arranged"),
        (
            "not-severe",
            "Smerterne er ikke svære og funktionshæmmende",
            "The pain is not severe and disabling",
        ),
        ("patient-declines", "Patienten ønsker ikke henvisning", "The patient declines referral"),
        (
            "referral-not-indicated",
            "Klinisk vurdering: henvisning ikke indiceret nu",
            "Clinical judgement: referral not indicated now",
        ),
        (
            "record-incorrect",
            "Journalens data er ikke korrekte",
            "The record's data are not correct",
        ),
    ],
    "mri": [
        (
            "carefully-considered",
            "Nøje overvejet sammen med patienten",
            "Carefully considered with the patient",
        ),
        (
            "suspected-serious-pathology",
            "Mistanke om alvorlig patologi",
            "Suspected serious pathology",
        ),
        ("surgery-considered", "Forud for mulig operation", "Ahead of possible surgery"),
        (
            "clinical-judgement",
            "Klinisk vurdering: indiceret hos denne patient",
            "Clinical judgement: indicated for this patient",
        ),
        (
            "record-incorrect",
            "Journalens data er ikke korrekte",
            "The record's data are not correct",
        ),
    ],
    "glucocorticoid-injection": [
        (
            "carefully-considered",
            "Nøje overvejet sammen med patienten",
            "Carefully considered with the patient",
        ),
        ("patient-preference", "Patientens informerede ønske", "The patient's informed preference"),
        (
            "clinical-judgement",
            "Klinisk vurdering: indiceret hos denne patient",
            "Clinical judgement: indicated for this patient",
        ),
        (
            "record-incorrect",
            "Journalens data er ikke korrekte",
            "The record's data are not correct",
        ),
    ],
    "acupuncture": [
        ("patient-preference", "Patientens informerede ønske", "The patient's informed preference"),
        (
            "clinical-judgement",
            "Klinisk vurdering: indiceret hos denne patient",
            "Clinical judgement: indicated for this patient",
        ),
        (
            "record-incorrect",
            "Journalens data er ikke korrekte",
            "The record's data are not correct",
        ),
    ],
    "physical-activity": [
        (
            "clinical-judgement",
            "Klinisk vurdering: indiceret hos denne patient",
            "Clinical judgement: indicated for this patient",
        ),
        ("patient-preference", "Patientens informerede ønske", "The patient's informed preference"),
        (
            "record-incorrect",
            "Journalens data er ikke korrekte",
            "The record's data are not correct",
        ),
    ],
}


def test_override_reasons_per_card_topic(
    cards_by_lang: dict[str, list[dict[str, Any]]],
) -> None:
    offered: dict[str, list[tuple[str, str, str]]] = {}
    for da, en in zip(cards_by_lang["da"], cards_by_lang["en"], strict=True):
        assert topic(da) == topic(en)
        reasons = [
            (r["code"], r["display"], e["display"])
            for r, e in zip(da["overrideReasons"], en["overrideReasons"], strict=True)
        ]
        assert all(r["system"] == "urn:nkr:cds-override-reason" for r in da["overrideReasons"])
        assert offered.setdefault(topic(da), reasons) == reasons
    assert offered == OVERRIDE_REASONS


# -- 4. sources that say what they are; no nested brackets -----------------------------------


@pytest.mark.parametrize("flag", ["cauda_equina", "suspected_fracture"])
def test_safety_card_source_is_general_practice_not_the_nkr(cds: Cds, flag: str) -> None:
    body = with_red_flags(hook_request("patient-view"), flag)
    da, en = (cds.cards("patient-view", body, {"Accept-Language": lang})[0] for lang in LANGS)
    assert da["source"]["label"] == (
        'Almen dansk praksis (Lægehåndbogen, sundhed.dk: "Lumbal rodaffektion") – ikke fra NKR'
    )
    assert en["source"]["label"] == (
        "General Danish practice (the Danish doctors' handbook, sundhed.dk: "
        '"Lumbal rodaffektion") – not from the NKR'
    )
    for card in (da, en):
        assert "url" not in card["source"]
        assert "Sundhedsstyrelsen" not in card["source"]["label"]
        assert card["source"]["topic"]["code"] == "safety"


def nested_brackets(text: str) -> bool:
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
            if depth > 1:
                return True
        elif char == ")":
            depth = max(depth - 1, 0)
    return False


def test_nested_brackets_found() -> None:
    assert nested_brackets("**√** (god praksis (for))")
    assert not nested_brackets("(god praksis) · (for)")


@pytest.mark.parametrize("lang", LANGS)
def test_no_nested_brackets_in_any_card(
    cards_by_lang: dict[str, list[dict[str, Any]]], lang: str
) -> None:
    cards = cards_by_lang[lang]
    assert {topic(c) for c in cards} == {
        "overview",
        "safety",
        "spine-surgeon-assessment",
        *ORDER_TOPICS.values(),
    }
    for card in cards:
        for text in texts_of(card):
            for line in text.splitlines():
                assert not nested_brackets(line), (topic(card), line)


# -- 6., 7. wording ---------------------------------------------------------------------------


def test_mri_summary_names_the_lumbar_spine(cds: Cds) -> None:
    body = hook_request("order-sign", drafts=[service_request("mri", "m")])
    da, en = (cds.cards("order-sign", body, {"Accept-Language": lang})[0] for lang in LANGS)
    assert "MR-skanning af lænderyggen" in da["summary"]
    assert "MRI of the lumbar spine" in en["summary"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_summary_fits(cards_by_lang: dict[str, list[dict[str, Any]]], lang: str) -> None:
    assert all(len(c["summary"]) < 140 for c in cards_by_lang[lang])


def test_english_wording(cards_by_lang: dict[str, list[dict[str, Any]]]) -> None:
    for card in cards_by_lang["en"]:
        for text in texts_of(card):
            assert "compression" not in text.lower(), text
            assert "directional" not in text.lower(), text
