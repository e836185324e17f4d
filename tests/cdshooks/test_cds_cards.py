"""Cards from real HTTP calls: every card, every rule boundary, both languages.

Which card appears is decided by the engine; these tests check that the service carries each
decision to the EHR faithfully, in the CDS Hooks 2.0 shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import nkr
from nkr.guidelines import lumbar_radiculopathy as lr

from .conftest import Cds
from .fhir_data import (
    ORDER_CODES,
    ORDER_TOPICS,
    RED_FLAG_CODES,
    birth_date_for_age,
    condition,
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


def topics(cards: list[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]


def severe_pain_case(onset_days_ago: int, **kwargs: Any) -> dict[str, Any]:
    """Severe pain (NRS 8) despite supervised exercise: the spine-surgeon rule's inputs."""
    return hook_request(
        "patient-view",
        conditions=[radiculopathy(onset_days_ago)],
        observations=[pain(8)],
        procedures=[procedure("supervised_exercise")],
        **kwargs,
    )


# -- discovery -------------------------------------------------------------------------------


def test_discovery_lists_three_services_with_prefetch(cds: Cds) -> None:
    response = cds.client.get("/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("nkr-lumbal-radikulopati-patient-view", "patient-view"),
        ("nkr-lumbal-radikulopati-order-select", "order-select"),
        ("nkr-lumbal-radikulopati-order-sign", "order-sign"),
    ]
    for service in services:
        assert service["title"]
        assert service["description"]
        assert set(service["prefetch"]) == {
            "patient",
            "conditions",
            "observations",
            "procedures",
            "serviceRequests",
        }
        assert "{{context.patientId}}" in service["prefetch"]["conditions"]


def test_discovery_in_english_on_request(cds: Cds) -> None:
    da = cds.client.get("/cds-services").json()["services"][0]
    en = cds.client.get("/cds-services", headers={"Accept-Language": "en-GB,en;q=0.9"}).json()
    assert en["services"][0]["title"] != da["title"]
    assert "patient view" in en["services"][0]["title"]


# -- patient-view ----------------------------------------------------------------------------


def test_no_radiculopathy_no_cards(cds: Cds) -> None:
    body = hook_request(
        "patient-view", conditions=[condition("http://hl7.org/fhir/sid/icd-10", "I10")]
    )
    assert cds.cards("patient-view", body) == []


def test_refuted_radiculopathy_no_cards(cds: Cds) -> None:
    body = hook_request("patient-view", conditions=[radiculopathy(verification="refuted")])
    assert cds.cards("patient-view", body) == []


def test_in_scope_overview_card(cds: Cds) -> None:
    cards = cds.cards("patient-view", hook_request("patient-view"))
    assert topics(cards) == ["overview"]
    card = cards[0]
    assert card["indicator"] == "info"
    # Onset 20 days ago: week 3 of 12.
    assert "uge 3 af 12" in card["summary"]
    assert "↑" in card["summary"]
    assessment = lr.evaluate(
        lr.Case(
            age=45,
            symptom_onset=today() - dt.timedelta(days=20),
            signs=frozenset({"radicular_leg_pain"}),
        ),
        G,
        today(),
    )
    for result in assessment.results:
        rec = result.recommendation
        if result.status is nkr.RecStatus.APPLIES:
            assert f"**{rec.symbols}** {rec.wording('da')}" in card["detail"]
    assert card["links"][0]["url"] == f"{cds.base}/lumbal-radikulopati/"


def test_every_card_names_source_version_and_status(cds: Cds) -> None:
    card = cds.cards("patient-view", hook_request("patient-view"))[0]
    label = card["source"]["label"]
    assert "Sundhedsstyrelsen" in label
    assert G.version in label
    assert "ikke gældende" in label
    assert card["source"]["url"] == G.source.url
    assert G.status.text("da") in card["detail"]


def test_notes_and_assumptions_are_shown_as_such(cds: Cds) -> None:
    body = hook_request(
        "patient-view",
        conditions=[radiculopathy(onset_days_ago=None, recorded_days_ago=10)],
    )
    card = cds.cards("patient-view", body, {"Accept-Language": "en"})[0]
    detail = card["detail"]
    assert "How the record was read" in detail
    assert "recorded" in detail  # onset fell back to recordedDate: the card says so
    assert "The software's assumptions (not from the guideline)" in detail
    assert "week 2 of 12" in card["summary"]
    # The link opens the web app's page in the card's language.
    assert card["links"][0]["url"] == f"{cds.base}/lumbal-radikulopati/?lang=en"


@pytest.mark.parametrize(
    ("onset_days_ago", "expected"),
    [
        (83, ["overview", "spine-surgeon-assessment"]),
        (84, ["overview", "spine-surgeon-assessment"]),  # day 84: still due, still in scope
        (85, ["spine-surgeon-assessment"]),  # day 85: overdue, past 12 weeks
        (200, ["spine-surgeon-assessment"]),
    ],
)
def test_spine_surgeon_due_and_overdue(cds: Cds, onset_days_ago: int, expected: list[str]) -> None:
    cards = cds.cards("patient-view", severe_pain_case(onset_days_ago))
    assert topics(cards) == expected
    card = cards[-1]
    due = (today() - dt.timedelta(days=onset_days_ago) + dt.timedelta(days=84)).isoformat()
    assert card["indicator"] == "warning"
    assert due in card["summary"]
    assert "√" in card["summary"]
    overdue = onset_days_ago > 84
    assert ("overskredet" in card["summary"]) is overdue
    rec = G.recommendation("spine-surgeon-assessment")
    assert rec.wording("da") in card["detail"]
    assert card["links"][0]["url"] == (
        f"{cds.base}/lumbal-radikulopati/anbefalinger/spine-surgeon-assessment"
    )
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "create"
    resource = action["resource"]
    assert resource["resourceType"] == "ServiceRequest"
    assert resource["intent"] in ("order", "proposal")
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert {"system": "urn:nkr:local-orders", "code": "spine-surgeon-referral"}.items() <= resource[
        "code"
    ]["coding"][0].items()
    assert card["overrideReasons"]


@pytest.mark.parametrize(("score", "card"), [(6, False), (7, True)])
def test_spine_surgeon_pain_threshold(cds: Cds, score: int, card: bool) -> None:
    body = hook_request(
        "patient-view",
        conditions=[radiculopathy(60)],
        observations=[pain(score)],
        procedures=[procedure("supervised_exercise")],
    )
    assert ("spine-surgeon-assessment" in topics(cds.cards("patient-view", body))) is card


def test_spine_surgeon_needs_treatment_tried(cds: Cds) -> None:
    body = hook_request("patient-view", conditions=[radiculopathy(60)], observations=[pain(9)])
    assert topics(cds.cards("patient-view", body)) == ["overview"]


def test_spine_surgeon_already_referred(cds: Cds) -> None:
    body = severe_pain_case(
        60, service_requests=[service_request("spine_surgeon_referral", "sr-ref", "active")]
    )
    assert topics(cds.cards("patient-view", body)) == ["overview"]


def test_spine_surgeon_overdue_past_12_weeks_when_never_treated_no_card(cds: Cds) -> None:
    body = hook_request("patient-view", conditions=[radiculopathy(120)], observations=[pain(9)])
    assert cds.cards("patient-view", body) == []


@pytest.mark.parametrize(
    ("birth_date", "in_scope"),
    [
        (birth_date_for_age(18), True),  # the 18th birthday is today
        (birth_date_for_age(18, days_before_birthday=1), False),  # 18 tomorrow
        (birth_date_for_age(17), False),
    ],
)
def test_eighteenth_birthday(cds: Cds, birth_date: str, in_scope: bool) -> None:
    body = hook_request("patient-view", pat=patient(birth_date=birth_date))
    assert topics(cds.cards("patient-view", body)) == (["overview"] if in_scope else [])


@pytest.mark.parametrize("flag", sorted(RED_FLAG_CODES))
def test_each_red_flag_one_safety_card_only(cds: Cds, flag: str) -> None:
    # Severe pain after treatment would otherwise raise the spine-surgeon card too.
    body = severe_pain_case(60)
    body["prefetch"]["conditions"]["entry"].append({"resource": red_flag(flag)})
    cards = cds.cards("patient-view", body)
    assert topics(cards) == ["safety"]
    card = cards[0]
    acute = flag in ("cauda_equina", "progressive_paresis")
    assert card["indicator"] == ("critical" if acute else "warning")
    assert card["summary"].startswith("AKUT") is acute
    assert "Uden for NKR" in card["summary"]
    assert G.label("red_flags", flag, "da") in card["detail"]
    assert "ikke en anbefaling fra retningslinjen" in card["detail"]
    assert "Lægehåndbogen" in card["detail"]


def test_several_red_flags_still_one_card_under_140(cds: Cds) -> None:
    body = hook_request(
        "patient-view",
        conditions=[radiculopathy(), *(red_flag(f) for f in sorted(RED_FLAG_CODES))],
    )
    cards = cds.cards("patient-view", body, {"Accept-Language": "en"})
    assert topics(cards) == ["safety"]
    assert cards[0]["summary"].startswith("ACUTE")


# -- order-select / order-sign ---------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("kind", sorted(ORDER_TOPICS))
def test_each_draft_order_type_warns_with_delete(cds: Cds, hook: str, kind: str) -> None:
    draft = service_request(kind, f"draft-{kind}")
    cards = cds.cards(hook, hook_request(hook, drafts=[draft]))
    topic = ORDER_TOPICS[kind]
    assert topics(cards) == [topic]
    card = cards[0]
    rec = G.recommendation(topic)
    assert card["indicator"] == "warning"
    assert rec.symbols in card["summary"]
    assert rec.wording("da") in card["detail"]
    assert card["selectionBehavior"] == "at-most-one"
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "description": suggestion["actions"][0]["description"],
            "resourceId": f"ServiceRequest/draft-{kind}",
        }
    ]
    assert len(card["overrideReasons"]) >= 2
    assert all(r["system"] and r["code"] and r["display"] for r in card["overrideReasons"])
    assert card["links"][0]["url"] == f"{cds.base}/lumbal-radikulopati/anbefalinger/{topic}"


@pytest.mark.parametrize(
    "kind",
    [k for k in ORDER_CODES if k not in ORDER_TOPICS],
)
def test_supported_orders_no_card(cds: Cds, kind: str) -> None:
    cards = cds.cards(
        "order-sign", hook_request("order-sign", drafts=[service_request(kind, "d1")])
    )
    assert cards == []


def test_order_select_only_selections_count(cds: Cds) -> None:
    drafts = [service_request("mri", "mri-1"), service_request("acupuncture", "acu-1")]
    body = hook_request("order-select", drafts=drafts, selections=["ServiceRequest/acu-1"])
    assert topics(cds.cards("order-select", body)) == ["acupuncture"]
    body = hook_request("order-sign", drafts=drafts)
    assert topics(cds.cards("order-sign", body)) == ["acupuncture", "mri"]


def test_order_out_of_scope_no_card(cds: Cds) -> None:
    body = hook_request(
        "order-sign", conditions=[radiculopathy(85)], drafts=[service_request("mri", "m")]
    )
    assert cds.cards("order-sign", body) == []


def test_order_with_red_flag_shows_safety_not_guideline(cds: Cds) -> None:
    body = hook_request(
        "order-sign",
        conditions=[radiculopathy(), red_flag("cauda_equina")],
        drafts=[service_request("mri", "m")],
    )
    assert topics(cds.cards("order-sign", body)) == ["safety"]


def test_draft_without_id_warns_without_delete(cds: Cds) -> None:
    draft = service_request("bed_rest", "x")
    del draft["id"]
    cards = cds.cards("order-sign", hook_request("order-sign", drafts=[draft]))
    assert topics(cards) == ["physical-activity"]
    assert "suggestions" not in cards[0]


# -- language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "extension", "lang"),
    [
        ({}, None, "da"),
        ({"Accept-Language": "en"}, None, "en"),
        ({"Accept-Language": "da, en;q=0.8"}, None, "da"),
        ({"Accept-Language": "en-US,en;q=0.9,da;q=0.8"}, None, "en"),
        ({"Accept-Language": "fr"}, None, "da"),
        ({}, "en", "en"),
        ({"Accept-Language": "en"}, "da", "da"),
    ],
)
def test_language(cds: Cds, headers: dict[str, str], extension: str | None, lang: str) -> None:
    body = hook_request("order-sign", drafts=[service_request("mri", "m")])
    if extension:
        body["extension"] = {"nkr-lang": extension}
    [card] = cds.cards("order-sign", body, headers)
    rec = G.recommendation("mri")
    assert rec.wording("da" if lang == "da" else "en") in card["detail"]
    assert ("not in force" in card["source"]["label"]) is (lang == "en")


def test_summaries_fit_in_both_languages(cds: Cds) -> None:
    drafts = [service_request(kind, f"d-{kind}") for kind in ORDER_TOPICS]
    for lang in ("da", "en"):
        headers = {"Accept-Language": lang}
        cards = cds.cards("order-sign", hook_request("order-sign", drafts=drafts), headers)
        cards += cds.cards("patient-view", severe_pain_case(84), headers)
        cards += cds.cards("patient-view", severe_pain_case(90), headers)
        assert len(cards) == 7
        assert all(len(c["summary"]) < 140 for c in cards)
        assert len({c["uuid"] for c in cards}) == 7
