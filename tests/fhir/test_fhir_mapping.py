"""FHIR R4 resources to the patient case: every rule of the guideline's reading of FHIR, and
its boundaries, through the one typed reader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from nkr import Assessment, InputError, RecStatus, Term
from nkr.fhir import FhirReading, ValueSets
from nkr.guidelines.lumbar_radiculopathy.fhir import PLANNED_BY_VALUESET, load, shipped
from nkr.guidelines.lumbar_radiculopathy.rules import Course

from ._records import PACKAGE, PATIENT, entry, note_texts, read

Resource = dict[str, Any]
COND0 = entry("conditions")

ICD = "http://hl7.org/fhir/sid/icd-10"
SKS = "urn:oid:1.2.208.176.2.4"
# SKS diagnosis codes as HL7 Denmark's dk-core and MedCom send them (FUT uses SKS above).
SKS_DX = "urn:oid:1.2.208.176.2.4.12"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
LOCAL = "urn:nkr:local-orders"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ON = dt.date(2026, 11, 26)


def cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def patient(birth_date: str | None = "1980-05-01") -> Resource:
    p: Resource = {"resourceType": "Patient", "id": "p1"}
    if birth_date is not None:
        p["birthDate"] = birth_date
    return p


def condition(
    code: str = "M54.16",
    system: str = ICD,
    *,
    rid: str = "c1",
    onset: str | None = "2026-11-01",
    clinical: str | None = None,
    verification: str | None = None,
    **extra: Any,
) -> Resource:
    c: Resource = {"resourceType": "Condition", "id": rid, "code": cc(system, code)}
    if onset is not None:
        c["onsetDateTime"] = onset
    if clinical is not None:
        c["clinicalStatus"] = cc(CLINICAL, clinical)
    if verification is not None:
        c["verificationStatus"] = cc(VERIFICATION, verification)
    c.update(extra)
    return c


def pain(score: object, when: str | None, *, status: str = "final", rid: str = "o1") -> Resource:
    o: Resource = {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "code": cc(LOINC, "72514-3"),
        "valueInteger": score,
    }
    if when is not None:
        o["effectiveDateTime"] = when
    return o


def order(
    code: str, system: str = LOCAL, *, rtype: str = "ServiceRequest", rid: str = "x1", **extra: Any
) -> Resource:
    r: Resource = {"resourceType": rtype, "id": rid, "code": cc(system, code)}
    r.update(extra)
    return r


def build(
    *,
    pat: Resource | None = None,
    conditions: list[Resource] | None = None,
    observations: list[Resource] | None = None,
    procedures: list[Resource] | None = None,
    service_requests: list[Resource] | None = None,
    draft_orders: list[Resource] | None = None,
    on: dt.date = ON,
    pain_threshold: int = 7,
    valuesets: ValueSets | None = None,
    no_patient: bool = False,
) -> FhirReading:
    return read(
        patient=None if no_patient else (pat if pat is not None else patient()),
        conditions=[condition()] if conditions is None else conditions,
        observations=observations or [],
        procedures=procedures or [],
        service_requests=service_requests or [],
        draft_orders=draft_orders or [],
        on=on,
        pain_threshold=pain_threshold,
        valuesets=valuesets,
    )


def course(assessment: Assessment) -> Course:
    """The guideline's own details of an assessment."""
    assert isinstance(assessment.details, Course)
    return assessment.details


def notes_en(result: FhirReading) -> str:
    return "\n".join(note_texts(result, "en"))


def notes_da(result: FhirReading) -> str:
    return "\n".join(note_texts(result, "da"))


# --- the radiculopathy diagnosis --------------------------------------------------------------


def test_a_coded_diagnosis_gives_an_in_scope_case_with_the_sign_shown_as_an_assumption() -> None:
    result = build()
    assert result.case is not None
    assert result.case.symptom_onset == dt.date(2026, 11, 1)
    assert result.case.birth_date == dt.date(1980, 5, 1)
    assert result.case.signs == frozenset({"radicular_leg_pain"})
    assert "Assumption: the diagnosis ICD-10 M54.16" in notes_en(result)
    assert "Antagelse: diagnosen ICD-10 M54.16" in notes_da(result)
    assert PACKAGE.evaluate(result.case, ON).in_scope


def test_no_radiculopathy_diagnosis_means_no_case_and_no_notes() -> None:
    result = build(conditions=[condition("J45", ICD)])
    assert result.case is None
    assert result.notes == ()


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (ICD, "M54.1"),
        (ICD, "M54.17"),
        (ICD, "M51.1"),
        (ICD, "M54.3"),
        (ICD, "M54.4"),
        (SKS, "DM541"),
        (SKS, "DM541A"),
        (SKS_DX, "DM541B"),
        (SKS, "DM511"),
        (SKS_DX, "DM511F"),
        (SKS_DX, "DM543"),
        (SKS, "DM544"),
        (SCT, "23056005"),
        (SCT, "128196005"),
    ],
)
def test_every_system_of_the_radiculopathy_value_set_is_read(system: str, code: str) -> None:
    assert build(conditions=[condition(code, system)]).case is not None


def test_a_complex_regional_pain_syndrome_is_not_read_as_lumbar_radiculopathy() -> None:
    # SNOMED CT 128200000 is Complex regional pain syndrome (disorder); an earlier value set
    # listed it as lumbar radiculopathy. 128196005 is Lumbar radiculopathy (disorder).
    assert build(conditions=[condition("128200000", SCT)]).case is None
    result = build(conditions=[condition("128196005", SCT)])
    assert result.case is not None
    assert "SNOMED CT 128196005" in notes_en(result)


@pytest.mark.parametrize("system", [SKS_DX, SKS])
def test_sks_diagnoses_are_read_under_both_danish_systems(system: str) -> None:
    result = build(conditions=[condition("DM541B", system)])  # Radiculitis lumbalis
    assert result.case is not None
    assert "SKS DM541B" in notes_en(result)
    # DM541C is Radiculitis brachialis: a radiculopathy, but not a lumbar one.
    assert build(conditions=[condition("DM541C", system)]).case is None


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (SCT, "M54.16"),  # the right code in the wrong system
        (ICD, "M5416"),  # ICD-10 without its dot is not normalised
        (ICD, "M54.5"),  # low back pain without radiculopathy
        (SKS, "M54.16"),
        (SKS, "DM5416"),  # SKS subdivides DM541 with letters, not WHO's site character
        (SKS_DX, "DM541D"),  # thoracic radiculitis
        (SCT, "128200000"),  # complex regional pain syndrome
    ],
)
def test_codes_outside_the_value_set_do_not_match(system: str, code: str) -> None:
    assert build(conditions=[condition(code, system)]).case is None


@pytest.mark.parametrize("status", [None, "active", "recurrence", "relapse"])
def test_active_clinical_statuses_count(status: str | None) -> None:
    assert build(conditions=[condition(clinical=status)]).case is not None


@pytest.mark.parametrize("status", ["inactive", "remission", "resolved"])
def test_inactive_clinical_statuses_are_ignored(status: str) -> None:
    assert build(conditions=[condition(clinical=status)]).case is None


@pytest.mark.parametrize("status", ["refuted", "entered-in-error"])
def test_refuted_diagnoses_are_ignored(status: str) -> None:
    assert build(conditions=[condition(verification=status)]).case is None


@pytest.mark.parametrize("status", ["unconfirmed", "provisional", "differential", "confirmed"])
def test_suspected_and_confirmed_diagnoses_count(status: str) -> None:
    assert build(conditions=[condition(verification=status)]).case is not None


def test_other_resource_types_in_the_conditions_are_skipped() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    assert build(conditions=[outcome, condition()]).case is not None


# --- onset ------------------------------------------------------------------------------------


def test_onset_period_start_is_the_onset() -> None:
    c = condition(onset=None, onsetPeriod={"start": "2026-10-15T09:00:00+02:00"})
    result = build(conditions=[c])
    assert result.case is not None
    assert result.case.symptom_onset == dt.date(2026, 10, 15)
    assert "used as the onset" not in notes_en(result)


def test_without_onset_the_recorded_date_is_used_and_the_card_says_so() -> None:
    result = build(conditions=[condition(onset=None, recordedDate="2026-10-20")])
    assert result.case is not None
    assert result.case.symptom_onset == dt.date(2026, 10, 20)
    assert note_texts(result, "da")[0].startswith("Symptomdebut er ikke registreret")
    assert "recorded (2026-10-20) is used as the onset" in note_texts(result, "en")[0]


def test_an_onset_age_or_string_falls_back_to_the_recorded_date() -> None:
    c = condition(onset=None, onsetString="in the autumn", recordedDate="2026-10-20")
    result = build(conditions=[c])
    assert result.case is not None
    assert result.case.symptom_onset == dt.date(2026, 10, 20)


def test_a_diagnosis_without_any_date_gives_no_case_but_a_note() -> None:
    result = build(conditions=[condition(onset=None)])
    assert result.case is None
    assert "neither an onset date nor a recorded date" in notes_en(result)


def test_a_partial_onset_counts_from_its_first_day() -> None:
    result = build(conditions=[condition(onset="2026-10")])
    assert result.case is not None
    assert result.case.symptom_onset == dt.date(2026, 10, 1)


def test_several_diagnoses_use_the_earliest_onset() -> None:
    later = condition("M51.1", rid="c2", onset="2026-11-10")
    earlier = condition("M54.16", rid="c1", onset=None, recordedDate="2026-09-30")
    result = build(conditions=[later, earlier])
    assert result.case is not None
    assert result.case.symptom_onset == dt.date(2026, 9, 30)
    text = notes_en(result)
    assert "There are 2 active lumbar radiculopathy diagnoses" in text
    assert "recorded (2026-09-30)" in text


def test_a_refuted_earlier_diagnosis_does_not_move_the_onset() -> None:
    refuted = condition(rid="c0", onset="2026-01-01", verification="refuted")
    result = build(conditions=[refuted, condition(onset="2026-11-01")])
    assert result.case is not None
    assert result.case.symptom_onset == dt.date(2026, 11, 1)


def test_onset_on_day_84_is_in_scope_and_day_85_is_not() -> None:
    day84 = build(conditions=[condition(onset=(ON - dt.timedelta(days=84)).isoformat())])
    day85 = build(conditions=[condition(onset=(ON - dt.timedelta(days=85)).isoformat())])
    assert day84.case is not None
    assert day85.case is not None
    assert PACKAGE.evaluate(day84.case, ON).in_scope
    assert not PACKAGE.evaluate(day85.case, ON).in_scope


def test_onset_after_the_assessment_date_is_an_error_naming_the_field() -> None:
    with pytest.raises(InputError, match=rf"^{COND0}\.onsetDateTime: after"):
        build(conditions=[condition(onset="2026-11-27")])


def test_onset_before_birth_is_an_error() -> None:
    with pytest.raises(InputError, match=r"onsetDateTime: before the patient's birthDate"):
        build(pat=patient("2000-01-01"), conditions=[condition(onset="1999-12-31")])


# --- age --------------------------------------------------------------------------------------


def test_turning_18_on_the_assessment_date_is_in_scope() -> None:
    result = build(pat=patient("2008-11-26"))
    assert result.case is not None
    assert course(PACKAGE.evaluate(result.case, ON)).age_years == 18
    under = build(pat=patient("2008-11-27"))
    assert under.case is not None
    assert not PACKAGE.evaluate(under.case, ON).in_scope


def test_a_birth_year_only_counts_the_lowest_possible_age() -> None:
    result = build(pat=patient("2008"))
    assert result.case is not None
    # Born at the latest on 2008-12-31, so possibly still 17 on 2026-11-26.
    assert result.case.age == 17
    assert result.case.birth_date is None
    assert "given only as 2008; the age is counted as the lowest possible (17 years)" in notes_en(
        result
    )
    assert notes_da(result).startswith("Fødselsdatoen er kun angivet som 2008")


def test_a_birth_month_counts_from_the_last_day_of_that_month() -> None:
    result = build(pat=patient("2008-10"))
    assert result.case is not None
    assert result.case.age == 18  # born at the latest on 2008-10-31
    feb = build(pat=patient("2008-11"))
    assert feb.case is not None
    assert feb.case.age == 17  # born possibly on 2008-11-30


def test_a_birth_month_in_the_current_month_is_age_zero() -> None:
    result = build(pat=patient("2026-11"), conditions=[condition(onset="2026-11-20")])
    assert result.case is not None
    assert result.case.age == 0


@pytest.mark.parametrize(
    ("birth", "problem"),
    [
        ("2026-02-30", "impossible date"),
        ("2026-11-27", "after the assessment date"),
        ("2027", "after the assessment date"),
        ("26-11-1980", "not a FHIR date"),
        ("1980-05-01T10:00:00Z", "not a FHIR date"),
        ("1890", "more than 130 years before"),
        ("0000-01-01", "impossible date"),
    ],
)
def test_bad_birth_dates_are_errors_naming_the_field(birth: str, problem: str) -> None:
    with pytest.raises(InputError, match=rf"^{PATIENT}\.birthDate: {problem}"):
        build(pat=patient(birth))


@pytest.mark.parametrize("birth", ["١٩٨٠-05-01", "１９８０-05-01", "1980-0٥-01", "１９８０"])
def test_birth_dates_in_other_digits_are_not_fhir_dates(birth: str) -> None:
    """FHIR's date regex is ASCII: Arabic-Indic or full-width digits are no birth date."""
    with pytest.raises(InputError, match=rf"^{PATIENT}\.birthDate: not a FHIR date"):
        build(pat=patient(birth))


@pytest.mark.parametrize("field", ["onsetDateTime", "recordedDate"])
@pytest.mark.parametrize("onset", ["٢٠٢٦-11-01", "２０２６-11-01", "2026-11-01T1٠:00:00Z"])
def test_onsets_in_other_digits_are_not_fhir_dates(field: str, onset: str) -> None:
    with pytest.raises(InputError, match=rf"^{COND0}\.{field}: not a"):
        build(conditions=[condition(onset=None, **{field: onset})])


def test_pain_scores_dated_in_other_digits_are_not_read() -> None:
    with pytest.raises(InputError, match=r"effectiveDateTime: not a FHIR dateTime"):
        build(observations=[pain(8, "２０２６-11-20T10:00:00Z")])


def test_bad_birth_date_messages_do_not_quote_the_date() -> None:
    with pytest.raises(InputError) as info:
        build(pat=patient("2026-02-30"))
    assert "2026-02-30" not in str(info.value)


def test_no_birth_date_or_no_patient_gives_no_case_but_a_note() -> None:
    for result in (build(pat=patient(None)), build(no_patient=True)):
        assert result.case is None
        assert "birth date is missing" in notes_en(result)


def test_a_patient_of_another_type_is_no_patient() -> None:
    # The request's envelope check refuses it (tests/cdshooks); as a record, no Patient.
    result = build(pat={"resourceType": "Practitioner", "id": "x"})
    assert result.case is None
    assert "birth date is missing" in notes_en(result)


# --- red flags --------------------------------------------------------------------------------


def _red_flag_codes() -> list[tuple[str, str, str]]:
    vs = shipped().get("red-flags")
    return [(c.system, c.code, str(c.attribute("red_flag"))) for c in vs.codes]


@pytest.mark.parametrize(("system", "code", "flag"), _red_flag_codes())
def test_each_red_flag_code_gives_its_red_flag(system: str, code: str, flag: str) -> None:
    result = build(conditions=[condition(), condition(code, system, rid="r1", onset=None)])
    assert result.case is not None
    assert result.case.red_flags == frozenset({flag})
    assessment = PACKAGE.evaluate(result.case, ON)
    assert not assessment.in_scope
    assert course(assessment).safety is not None
    label = PACKAGE.content.label("red_flags", flag, "en")
    assert "Red flag from the diagnosis" in notes_en(result)
    assert label in notes_en(result)


def test_the_expected_red_flags_per_diagnosis() -> None:
    expected = {
        "G83.4": "cauda_equina",
        "S32.0": "suspected_fracture",
        "M46.2": "suspected_infection",
        "M46.3": "suspected_infection",
        "M46.4": "suspected_infection",
        "M46.5": "suspected_infection",
    }
    got = {code: flag for system, code, flag in _red_flag_codes() if system == ICD}
    assert got == expected


def test_refuted_or_resolved_red_flags_are_ignored() -> None:
    refuted = condition("G83.4", rid="r1", verification="refuted")
    resolved = condition("S32.0", rid="r2", clinical="resolved")
    result = build(conditions=[condition(), refuted, resolved])
    assert result.case is not None
    assert result.case.red_flags == frozenset()


def test_a_red_flag_alone_is_no_case() -> None:
    assert build(conditions=[condition("G83.4")]).case is None


# --- severe, disabling pain -------------------------------------------------------------------


@pytest.mark.parametrize(("score", "severe"), [(6, False), (7, True), (10, True), (0, False)])
def test_pain_threshold_boundary(score: int, severe: bool) -> None:
    result = build(observations=[pain(score, "2026-11-20")])
    assert result.case is not None
    assert result.case.severe_disabling_pain is severe
    text = notes_en(result)
    assert f"NRS {score} on 2026-11-20" in text
    assert "threshold NRS ≥ 7" in text
    assert "assumption" in text


def test_the_threshold_is_configurable() -> None:
    result = build(observations=[pain(6, "2026-11-20")], pain_threshold=6)
    assert result.case is not None
    assert result.case.severe_disabling_pain
    assert "grænse NRS ≥ 6; grænsen er softwarens antagelse" in notes_da(result)


def test_the_latest_pain_score_wins_even_when_lower() -> None:
    old = pain(9, "2026-11-01T08:00:00+01:00", rid="old")
    new = pain(3, "2026-11-20T08:00:00+01:00", rid="new")
    result = build(observations=[new, old])
    assert result.case is not None
    assert not result.case.severe_disabling_pain
    assert "NRS 3 on 2026-11-20" in notes_en(result)


def test_the_latest_score_is_decided_by_instant_across_time_zones() -> None:
    # 08:00 at UTC-02:00 is 10:00 UTC: later than 09:00 UTC, though earlier on the wall clock.
    a = pain(8, "2026-11-21T08:00:00-02:00", rid="a")
    b = pain(2, "2026-11-21T09:00:00Z", rid="b")
    result = build(observations=[a, b])
    assert result.case is not None
    assert result.case.severe_disabling_pain


@pytest.mark.parametrize("status", ["preliminary", "registered", "entered-in-error", "cancelled"])
def test_pain_scores_that_are_not_final_are_ignored(status: str) -> None:
    result = build(observations=[pain(9, "2026-11-25", status=status)])
    assert result.case is not None
    assert not result.case.severe_disabling_pain
    assert "No pain score" in notes_en(result)


@pytest.mark.parametrize("status", ["amended", "corrected"])
def test_amended_and_corrected_scores_count(status: str) -> None:
    result = build(observations=[pain(8, "2026-11-25", status=status)])
    assert result.case is not None
    assert result.case.severe_disabling_pain


def test_value_quantity_and_issued_are_read() -> None:
    o = pain(0, None)
    del o["valueInteger"]
    o["valueQuantity"] = {"value": 7.5, "unit": "{score}"}
    o["issued"] = "2026-11-24T10:00:00.000+01:00"
    result = build(observations=[o])
    assert result.case is not None
    assert result.case.severe_disabling_pain
    assert "NRS 7.5 on 2026-11-24" in notes_en(result)


def test_effective_period_is_read() -> None:
    o = pain(8, None)
    o["effectivePeriod"] = {"start": "2026-11-24", "end": "2026-11-25"}
    result = build(observations=[o, pain(2, "2026-11-24T12:00:00Z", rid="o2")])
    assert result.case is not None
    assert result.case.severe_disabling_pain  # the period ended later


def test_undated_scores_and_other_codes_are_ignored() -> None:
    undated = pain(9, None)
    other = pain(9, "2026-11-25", rid="o2")
    other["code"] = cc(LOINC, "8480-6")
    result = build(observations=[undated, other])
    assert result.case is not None
    assert not result.case.severe_disabling_pain


def test_on_a_tie_the_higher_score_wins() -> None:
    result = build(observations=[pain(7, "2026-11-25", rid="a"), pain(5, "2026-11-25", rid="b")])
    assert result.case is not None
    assert result.case.severe_disabling_pain


@pytest.mark.parametrize(
    ("value", "problem"),
    [(11, "expected a pain score from 0 to 10"), (-1, "from 0 to 10"), (True, "a number")],
)
def test_impossible_pain_scores_are_errors(value: object, problem: str) -> None:
    with pytest.raises(InputError, match=rf"^{entry('observations')}\.valueInteger: .*{problem}"):
        build(observations=[pain(value, "2026-11-25")])


# --- treatment tried and the spine surgeon ----------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code", "treatment"),
    [
        (SCT, "229065009", "supervised_exercise"),
        (SKS, "BLNA", "supervised_exercise"),
        (LOCAL, "specific-exercise", "specific_exercise"),
        (SKS, "BLNG1", "manual_mobilisation"),
        (SCT, "46947000", "manual_mobilisation"),
        (SKS, "BAFA80", "other"),
        (LOCAL, "glucocorticoid-injection", "other"),
    ],
)
@pytest.mark.parametrize("status", ["completed", "in-progress"])
def test_procedures_done_count_as_treatment_tried(
    system: str, code: str, treatment: str, status: str
) -> None:
    proc = order(code, system, rtype="Procedure", status=status)
    result = build(procedures=[proc])
    assert result.case is not None
    assert result.case.non_surgical_treatment == frozenset({treatment})


@pytest.mark.parametrize("status", ["preparation", "not-done", "stopped", "entered-in-error"])
def test_procedures_not_done_do_not_count(status: str) -> None:
    proc = order("BLNA", SKS, rtype="Procedure", status=status)
    result = build(procedures=[proc])
    assert result.case is not None
    assert result.case.non_surgical_treatment == frozenset()


def test_bed_rest_and_mri_are_not_treatment_tried() -> None:
    bed = order("BLXA", SKS, rtype="Procedure", status="completed")
    mri = order("41333006", SCT, rtype="Procedure", status="completed", rid="x2")
    result = build(procedures=[bed, mri])
    assert result.case is not None
    assert result.case.non_surgical_treatment == frozenset()


@pytest.mark.parametrize(("status", "counts"), [("completed", True), ("active", False)])
def test_a_service_request_counts_as_treatment_only_when_completed(
    status: str, counts: bool
) -> None:
    sr = order("BLNG1", SKS, status=status)
    result = build(service_requests=[sr])
    assert result.case is not None
    assert result.case.non_surgical_treatment == (
        frozenset({"manual_mobilisation"}) if counts else frozenset()
    )


@pytest.mark.parametrize(
    ("rtype", "status", "expected"),
    [
        ("Procedure", "completed", "done"),
        ("Procedure", "in-progress", "referred"),
        ("Procedure", "not-done", "none"),
        ("ServiceRequest", "active", "referred"),
        ("ServiceRequest", "completed", "referred"),
        ("ServiceRequest", "draft", "none"),
        ("ServiceRequest", "revoked", "none"),
        ("ServiceRequest", "entered-in-error", "none"),
    ],
)
def test_spine_surgeon_referral_and_assessment(rtype: str, status: str, expected: str) -> None:
    r = order("spine-surgeon-referral", rtype=rtype, status=status)
    result = build(procedures=[r]) if rtype == "Procedure" else build(service_requests=[r])
    assert result.case is not None
    assert result.case.spine_surgeon_assessment == expected


def test_an_assessment_done_outranks_a_referral() -> None:
    referral = order("spine-surgeon-referral", status="active")
    done = order("spine-surgeon-assessment", rtype="Procedure", status="completed")
    result = build(procedures=[done], service_requests=[referral])
    assert result.case is not None
    assert result.case.spine_surgeon_assessment == "done"


def test_severe_pain_despite_treatment_makes_the_spine_surgeon_assessment_due() -> None:
    result = build(
        observations=[pain(8, "2026-11-25")],
        procedures=[order("BLNA", SKS, rtype="Procedure", status="completed")],
    )
    assert result.case is not None
    assessment = PACKAGE.evaluate(result.case, ON)
    surgeon = next(
        r for r in assessment.results if r.recommendation.id == "spine-surgeon-assessment"
    )
    assert surgeon.status is RecStatus.DUE


# --- draft orders -----------------------------------------------------------------------------


def _intervention_codes() -> list[tuple[str, str, str, str]]:
    vs = shipped()
    return [
        (vs_id, planned, c.system, c.code)
        for vs_id, planned in PLANNED_BY_VALUESET.items()
        for c in vs.get(vs_id).codes
    ]


@pytest.mark.parametrize(("vs_id", "planned", "system", "code"), _intervention_codes())
def test_each_intervention_code_in_a_draft_order_is_planned(
    vs_id: str, planned: str, system: str, code: str
) -> None:
    draft = order(code, system, rid="draft-1", status="draft")
    result = build(draft_orders=[draft])
    assert [(d.concerns, d.resource_type, d.resource_id) for d in result.orders] == [
        (Term("planned", planned), "ServiceRequest", "draft-1")
    ]
    assert result.orders[0].reference == "ServiceRequest/draft-1"
    assert result.case is not None
    assert result.case.planned == frozenset({planned})


@pytest.mark.parametrize(
    ("planned", "rec_id"),
    [
        ("mri", "mri"),
        ("glucocorticoid_injection", "glucocorticoid-injection"),
        ("acupuncture", "acupuncture"),
        ("bed_rest", "physical-activity"),
    ],
)
def test_draft_orders_the_guideline_advises_caution_on(planned: str, rec_id: str) -> None:
    vs_id = next(k for k, v in PLANNED_BY_VALUESET.items() if v == planned)
    code = shipped().get(vs_id).codes[0]
    result = build(draft_orders=[order(code.code, code.system)])
    assert result.case is not None
    assessment = PACKAGE.evaluate(result.case, ON)
    status = next(r.status for r in assessment.results if r.recommendation.id == rec_id)
    assert status is RecStatus.CAUTION


def test_medication_and_device_requests_and_procedures_are_read() -> None:
    med = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "medicationCodeableConcept": cc(LOCAL, "glucocorticoid-injection"),
    }
    dev = {
        "resourceType": "DeviceRequest",
        "id": "d1",
        "codeCodeableConcept": cc(SKS, "BLXA"),
    }
    proc = order("BAFA80", SKS, rtype="Procedure", rid="pr1", status="preparation")
    result = build(draft_orders=[med, dev, proc])
    assert [(d.concerns.code, d.resource_type, d.resource_id) for d in result.orders] == [
        ("glucocorticoid_injection", "MedicationRequest", "m1"),
        ("bed_rest", "DeviceRequest", "d1"),
        ("acupuncture", "Procedure", "pr1"),
    ]


def test_draft_orders_are_read_without_a_case_and_without_an_id() -> None:
    draft = order("BLXA", SKS)
    del draft["id"]
    result = build(conditions=[], draft_orders=[draft])
    assert result.case is None
    assert result.orders[0].resource_id is None


def test_unknown_order_codes_and_types_are_ignored() -> None:
    result = build(
        draft_orders=[
            order("99999-9", LOINC),
            {"resourceType": "NutritionOrder", "id": "n1"},
            order("BLXA", SKS, rtype="Observation"),
        ]
    )
    assert result.orders == ()


# --- wrong shapes -----------------------------------------------------------------------------


C0 = entry("conditions")
O0 = entry("observations")


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        (["not an object"], rf"^{C0}: expected a JSON object"),
        ([{"id": "c1"}], rf"^{C0}\.resourceType: required field is missing"),
        ([{"resourceType": "Foo", "id": "c1"}], rf"^{C0}\.resourceType: not a FHIR R4 resource"),
        ([{"resourceType": "Condition", "id": 5}], rf"^{C0}\.id: expected a string"),
        (
            [{"resourceType": "Condition", "id": "c1", "code": "M54.1"}],
            rf"^{C0}\.code: expected a JSON object",
        ),
        (
            [{"resourceType": "Condition", "code": {"coding": {"code": "M54.1"}}}],
            rf"^{C0}\.code\.coding: expected a JSON array",
        ),
        (
            [{"resourceType": "Condition", "id": "c1", "code": {"coding": ["M54.1"]}}],
            rf"^{C0}\.code\.coding\[0\]: expected a JSON object",
        ),
        (
            [{"resourceType": "Condition", "id": "c1", "code": {"coding": [{"code": 541}]}}],
            rf"^{C0}\.code\.coding\[0\]\.code: expected a string",
        ),
        ([condition(onset="2026-02-30")], rf"^{C0}\.onsetDateTime: impossible date"),
        ([condition(onset="2026-11-01T25:00:00Z")], r"onsetDateTime: impossible date or time"),
        ([condition(onset="1 Nov 2026")], rf"^{C0}\.onsetDateTime: not a FHIR dateTime"),
        ([condition(onset=None, onsetPeriod="2026")], rf"^{C0}\.onsetPeriod: expected a JSON obj"),
        (
            [condition(onset=None, recordedDate="2026-13-01")],
            rf"^{C0}\.recordedDate: impossible date",
        ),
        (
            [condition(clinical=None, clinicalStatus="active")],
            rf"^{C0}\.clinicalStatus: expected a JSON object",
        ),
    ],
)
def test_wrong_condition_shapes_name_the_path(conditions: list[Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build(conditions=conditions)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"observations": [42]}, rf"^{O0}: expected a JSON object"),
        (
            {"observations": [{**pain(8, "2026-11-25"), "effectiveDateTime": "2026-11-31"}]},
            rf"^{O0}\.effectiveDateTime: impossible date",
        ),
        (
            {"observations": [{**pain(8, "2026-11-25"), "valueInteger": "8"}]},
            rf"^{O0}\.valueInteger: expected an integer or a number or null, got a string",
        ),
        (
            {"procedures": [{"resourceType": "Procedure", "code": []}]},
            rf"^{entry('procedures')}\.code: expected a JSON object",
        ),
        (
            {"service_requests": [{**order("BLXA", SKS), "status": ["active"]}]},
            rf"^{entry('serviceRequests')}\.status: expected a string",
        ),
        (
            {"draft_orders": [None, {"resourceType": "Bundle", "entry": 1}]},
            r"^\$\.context\.draftOrders\.entry\[1\]\.resource\.entry: expected a JSON array",
        ),
        (
            {
                "draft_orders": [
                    {"resourceType": "MedicationRequest", "medicationCodeableConcept": 1}
                ]
            },
            r"^\$\.context\.draftOrders\.entry\[0\]\.resource\.medicationCodeableConcept: exp",
        ),
    ],
)
def test_wrong_shapes_elsewhere_name_the_path(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build(**kwargs)


def test_wrong_shape_messages_do_not_quote_the_value() -> None:
    with pytest.raises(InputError) as info:
        build(conditions=[{"resourceType": "Secret-Name", "id": "c1"}])
    assert "Secret" not in str(info.value)
    with pytest.raises(InputError) as info:
        build(observations=[{**pain(8, "2026-11-25"), "valueInteger": "eight"}])
    assert "eight" not in str(info.value)


# --- properties of the mapping ----------------------------------------------------------------


def test_extra_value_sets_are_used(tmp_path: Path) -> None:
    extra = {
        "id": "bed-rest",
        "codes": [{"system": "urn:oid:1.2.3", "code": "SENG", "provenance": "local: test"}],
    }
    (tmp_path / "local.json").write_bytes(orjson.dumps(extra))
    valuesets = load(tmp_path)
    draft = order("SENG", "urn:oid:1.2.3")
    assert build(draft_orders=[draft]).orders == ()
    result = build(draft_orders=[draft], valuesets=valuesets)
    assert [d.concerns for d in result.orders] == [Term("planned", "bed_rest")]


def _realistic_patient() -> dict[str, Any]:
    """About 30 resources, as a busy primary-care record would have."""
    conditions = [condition(onset="2026-11-01"), condition("M51.1", rid="c2", onset="2026-11-05")]
    conditions += [condition(f"I{10 + i}", rid=f"other{i}") for i in range(8)]
    observations = [
        pain(i % 11, f"2026-11-{10 + i:02d}T08:00:00+01:00", rid=f"o{i}") for i in range(10)
    ]
    procedures = [
        order("BLNA", SKS, rtype="Procedure", rid=f"pr{i}", status="completed") for i in range(4)
    ]
    requests = [order("spine-surgeon-referral", rid="sr1", status="draft")]
    requests += [order(f"{i}", SCT, rid=f"sr{i + 2}", status="active") for i in range(3)]
    drafts = [order("41333006", SCT, rid="d1"), order("BLXA", SKS, rid="d2")]
    return {
        "pat": patient(),
        "conditions": conditions,
        "observations": observations,
        "procedures": procedures,
        "service_requests": requests,
        "draft_orders": drafts,
    }
