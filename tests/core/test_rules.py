"""The clinical rules, one behaviour per test, written so a clinician can check them.

Every test builds a case on the assessment date ON and reads the statuses the engine gives.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import nkr
from nkr import InputError, RecStatus
from nkr.guidelines.lumbar_radiculopathy import Course, Options, package, parse_case
from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy as Lumbar

ON = dt.date(2026, 6, 15)
P = package()
G = P.content
ALL_IDS = [r.id for r in G.recommendations]

APPLIES = RecStatus.APPLIES
CAUTION = RecStatus.CAUTION
DUE = RecStatus.DUE
OVERDUE = RecStatus.OVERDUE
DONE = RecStatus.DONE
NA = RecStatus.NOT_APPLICABLE


def days_ago(days: int) -> str:
    return (ON - dt.timedelta(days=days)).isoformat()


def assess(**fields: Any) -> nkr.Assessment:
    """A 40-year-old with radicular leg pain since 20 days ago, unless fields say otherwise."""
    data: dict[str, Any] = {
        "age": 40,
        "symptom_onset": days_ago(20),
        "signs": ["radicular_leg_pain"],
    }
    data.update(fields)
    if "birth_date" in fields:
        del data["age"]
    return P.evaluate(parse_case(data), ON)


def course(a: nkr.Assessment) -> Course:
    return Course.of(a)


def reason_keys(a: nkr.Assessment) -> list[str]:
    return [r.key for r in a.scope_reasons]


# --- Scope ----------------------------------------------------------------------------------


def test_typical_patient_in_scope_every_recommendation_applies_but_surgeon() -> None:
    a = assess()
    assert a.in_scope
    assert a.notices == ()
    statuses = a.statuses
    assert statuses.pop("spine-surgeon-assessment") is NA
    assert set(statuses.values()) == {APPLIES}
    assert len(a.results) == 10


def test_day_84_is_in_scope() -> None:
    a = assess(symptom_onset=days_ago(84))
    assert a.in_scope
    assert course(a).days_since_onset == 84
    assert course(a).week == 12


def test_day_85_is_out_of_scope() -> None:
    a = assess(symptom_onset=days_ago(85))
    assert not a.in_scope
    assert reason_keys(a) == ["scope-beyond-12-weeks"]
    assert set(a.statuses.values()) == {NA}


def test_onset_today_is_day_0_in_week_1() -> None:
    a = assess(symptom_onset=ON.isoformat())
    assert a.in_scope
    assert (course(a).days_since_onset, course(a).week) == (0, 1)


@pytest.mark.parametrize(("days", "week"), [(1, 1), (7, 1), (8, 2), (14, 2), (15, 3), (83, 12)])
def test_week_of_12(days: int, week: int) -> None:
    assert course(assess(symptom_onset=days_ago(days))).week == week


def test_onset_after_the_assessment_date_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"symptom_onset: .* is after the assessment date"):
        assess(symptom_onset=(ON + dt.timedelta(days=1)).isoformat())


def test_18th_birthday_is_in_scope() -> None:
    a = assess(birth_date="2008-06-15")
    assert course(a).age_years == 18
    assert a.in_scope


def test_day_before_18th_birthday_is_out_of_scope() -> None:
    a = assess(birth_date="2008-06-16")
    assert course(a).age_years == 17
    assert reason_keys(a) == ["scope-under-18"]
    assert set(a.statuses.values()) == {NA}


def test_born_29_february_turns_18_on_1_march_in_a_common_year() -> None:
    case = parse_case(
        {"birth_date": "2008-02-29", "symptom_onset": "2026-02-01", "signs": ["reflex_loss"]}
    )
    assert case.age_on(dt.date(2026, 2, 28)) == 17
    assert case.age_on(dt.date(2026, 3, 1)) == 18


@pytest.mark.parametrize(("age", "in_scope"), [(17, False), (18, True), (100, True)])
def test_age_in_years(age: int, in_scope: bool) -> None:
    assert assess(age=age).in_scope is in_scope


def test_no_sign_of_root_involvement_is_out_of_scope() -> None:
    a = assess(signs=[])
    assert reason_keys(a) == ["scope-no-signs"]
    assert set(a.statuses.values()) == {NA}


@pytest.mark.parametrize(
    "sign", ["radicular_leg_pain", "reduced_strength", "reflex_loss", "sensory_disturbance"]
)
def test_any_one_sign_is_enough(sign: str) -> None:
    assert assess(signs=[sign]).in_scope


def test_mri_confirmation_is_not_needed() -> None:
    assert assess(mri_confirmed=False).in_scope
    assert assess(mri_confirmed=True).in_scope


def test_several_scope_reasons_are_all_given() -> None:
    a = assess(age=16, symptom_onset=days_ago(100), signs=[], red_flags=["suspected_fracture"])
    assert reason_keys(a) == [
        "scope-under-18",
        "scope-beyond-12-weeks",
        "scope-no-signs",
        "scope-red-flags",
    ]


# --- Red flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "acute"),
    [
        ("cauda_equina", True),
        ("progressive_paresis", True),
        ("suspected_malignancy", False),
        ("suspected_infection", False),
        ("suspected_fracture", False),
    ],
)
def test_each_red_flag_takes_the_patient_out_of_scope_with_a_safety_notice(
    flag: str, acute: bool
) -> None:
    a = assess(
        red_flags=[flag],
        severe_disabling_pain=True,
        non_surgical_treatment=["supervised_exercise"],
        planned=["mri"],
    )
    assert not a.in_scope
    assert reason_keys(a) == ["scope-red-flags"]
    (notice,) = a.notices
    assert notice.items == (nkr.Term("red_flags", flag),)
    assert notice.critical is acute
    # No guideline recommendation is offered for a patient with a red flag, not even a caution.
    assert set(a.statuses.values()) == {NA}
    text = a.text(notice.text, "da")
    assert G.label("red_flags", flag, "da") in text
    assert text.startswith("AKUT") is acute


# --- Planned interventions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("planned", "recommendation"),
    [
        ("mri", "mri"),
        ("glucocorticoid_injection", "glucocorticoid-injection"),
        ("acupuncture", "acupuncture"),
        ("bed_rest", "physical-activity"),
    ],
)
def test_planned_intervention_the_guideline_advises_against_gives_a_caution(
    planned: str, recommendation: str
) -> None:
    a = assess(planned=[planned])
    cautions = {rid for rid, status in a.statuses.items() if status is CAUTION}
    assert cautions == {recommendation}
    reason = a.result(recommendation).reason.text(G, "en")
    assert G.label("planned", planned, "en") in reason


@pytest.mark.parametrize(
    "planned", ["supervised_exercise", "specific_exercise", "manual_mobilisation"]
)
def test_planned_supported_treatment_gives_no_caution(planned: str) -> None:
    assert CAUTION not in assess(planned=[planned]).statuses.values()


def test_planned_interventions_out_of_scope_give_no_caution() -> None:
    a = assess(symptom_onset=days_ago(90), planned=["mri", "bed_rest"])
    assert CAUTION not in a.statuses.values()


# --- Spine-surgeon assessment ----------------------------------------------------------------


def surgeon(**fields: Any) -> tuple[RecStatus, str]:
    result = assess(**fields).result("spine-surgeon-assessment")
    return result.status, result.reason.key


SEVERE_AND_TREATED: dict[str, Any] = {
    "severe_disabling_pain": True,
    "non_surgical_treatment": ["supervised_exercise"],
}


def test_surgeon_due_date_is_onset_plus_84_days() -> None:
    a = assess(symptom_onset="2026-05-01")
    assert course(a).spine_surgeon_due == dt.date(2026, 7, 24)


def test_surgeon_due_when_severe_pain_persists_despite_treatment() -> None:
    assert surgeon(**SEVERE_AND_TREATED) == (DUE, "surgeon-due")


def test_surgeon_still_due_on_day_84() -> None:
    assert surgeon(symptom_onset=days_ago(84), **SEVERE_AND_TREATED) == (DUE, "surgeon-due")


def test_surgeon_overdue_on_day_85_although_past_12_weeks() -> None:
    assert surgeon(symptom_onset=days_ago(85), **SEVERE_AND_TREATED) == (
        OVERDUE,
        "surgeon-overdue",
    )


def test_surgeon_overdue_long_after_12_weeks() -> None:
    assert surgeon(symptom_onset=days_ago(300), **SEVERE_AND_TREATED)[0] is OVERDUE


def test_surgeon_not_overdue_when_also_out_of_scope_for_another_reason() -> None:
    status, key = surgeon(symptom_onset=days_ago(85), age=17, **SEVERE_AND_TREATED)
    assert (status, key) == (NA, "out-of-scope")


def test_any_non_surgical_treatment_counts_as_tried() -> None:
    status, _ = surgeon(severe_disabling_pain=True, non_surgical_treatment=["other"])
    assert status is DUE


def test_severe_pain_but_no_treatment_tried_yet() -> None:
    assert surgeon(severe_disabling_pain=True) == (NA, "surgeon-no-treatment-yet")


def test_no_severe_pain_no_surgeon() -> None:
    assert surgeon(non_surgical_treatment=["manual_mobilisation"]) == (
        NA,
        "surgeon-no-severe-pain",
    )


def test_no_severe_pain_past_12_weeks_says_out_of_scope() -> None:
    assert surgeon(symptom_onset=days_ago(100)) == (NA, "out-of-scope")


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"spine_surgeon_assessment": "done"}, "surgeon-done"),
        ({"spine_surgeon_assessment": "referred"}, "surgeon-referred"),
        ({"planned": ["spine_surgeon_referral"]}, "surgeon-referral-planned"),
    ],
)
def test_surgeon_done_when_assessed_referred_or_referral_planned(
    fields: dict[str, Any], key: str
) -> None:
    assert surgeon(**SEVERE_AND_TREATED, **fields) == (DONE, key)
    assert surgeon(symptom_onset=days_ago(120), **SEVERE_AND_TREATED, **fields) == (DONE, key)


def test_surgeon_due_reason_names_the_due_date() -> None:
    a = assess(symptom_onset="2026-05-01", **SEVERE_AND_TREATED)
    assert "2026-07-24" in a.result("spine-surgeon-assessment").reason.text(G, "da")


# --- The assessment as a whole ---------------------------------------------------------------


@pytest.mark.parametrize("lang", ["da", "en"])
def test_json_lists_all_ten_recommendations_with_wording_and_symbols(lang: nkr.Lang) -> None:
    data = assess(planned=["mri"]).to_json(lang)
    assert [r["id"] for r in data["recommendations"]] == ALL_IDS
    for rec in data["recommendations"]:
        assert rec["wording"] == G.recommendation(rec["id"]).wording(lang)
        assert rec["symbols"] == G.recommendation(rec["id"]).symbols
        assert rec["reason"]
    assert data["guideline"] == {
        "id": "nkr-lumbal-radikulopati",
        "version": "1.1",
        "in_force": False,
        "status": G.status.text(lang),
    }
    assert {a["id"] for a in data["assumptions"]} >= {"severe-pain-threshold"}


def test_assumption_shows_the_configured_pain_threshold() -> None:
    six = Lumbar(Options(pain_threshold=6))
    data = six.evaluate(six.parse_case({"age": 40, "symptom_onset": days_ago(20)}), ON).to_json(
        "en"
    )
    threshold = next(a for a in data["assumptions"] if a["id"] == "severe-pain-threshold")
    assert "NRS ≥ 6" in threshold["text"]


def test_out_of_scope_reason_is_readable_in_both_languages() -> None:
    a = assess(age=16)
    assert a.result("mri").reason.text(G, "da") == (
        "Uden for målgruppen: patienten er under 18 år (16 år)"
    )
    assert a.result("mri").reason.text(G, "en") == (
        "Outside the target population: the patient is under 18 (16 years)"
    )
