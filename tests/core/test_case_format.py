"""The patient case format (version 1): what is accepted and how bad input is reported."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from nkr import InputError
from nkr.guidelines.lumbar_radiculopathy import Case, package, parse_case

BASE: dict[str, Any] = {"age": 40, "symptom_onset": "2026-06-01", "signs": ["reflex_loss"]}


def parse(**changes: Any) -> Case:
    data = {**BASE, **changes}
    return parse_case({k: v for k, v in data.items() if v is not None})


def test_minimal_case_and_defaults() -> None:
    case = parse()
    assert case.version == 1
    assert case.red_flags == frozenset()
    assert case.severe_disabling_pain is False
    assert case.spine_surgeon_assessment == "none"
    assert case.planned == frozenset()
    assert case.mri_confirmed is None


def test_parses_json_text() -> None:
    case = parse_case(b'{"age": 30, "symptom_onset": "2026-01-02", "signs": []}')
    assert case.symptom_onset == dt.date(2026, 1, 2)


def test_repeated_codes_count_once() -> None:
    assert parse(signs=["reflex_loss", "reflex_loss"]).signs == frozenset({"reflex_loss"})


def test_round_trip_through_json() -> None:
    case = parse(planned=["mri", "bed_rest"], red_flags=["cauda_equina"])
    assert parse_case(case.to_json()) == case
    assert case.to_json()["planned"] == ["bed_rest", "mri"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"symptom_onset": None}, "symptom_onset: required field is missing"),
        ({"symptom_onset": "2026-02-30"}, "symptom_onset: Input should be a valid date"),
        ({"symptom_onset": "yesterday"}, "symptom_onset: Input should be a valid date"),
        ({"age": "40"}, "age: Input should be a valid integer"),
        ({"age": 40.5}, "age: Input should be a valid integer"),
        ({"age": -1}, "age: Input should be greater than or equal to 0"),
        ({"age": 131}, "age: Input should be less than or equal to 130"),
        ({"age": None}, "give exactly one of 'birth_date' or 'age'"),
        ({"birth_date": "1980-01-01"}, "give exactly one of 'birth_date' or 'age'"),
        ({"signs": ["back_pain"]}, "signs[0]: Input should be 'radicular_leg_pain'"),
        ({"signs": "reflex_loss"}, "signs: Input should be a valid array"),
        ({"red_flags": ["fever"]}, "red_flags[0]: Input should be 'cauda_equina'"),
        ({"planned": ["surgery"]}, "planned[0]: Input should be 'mri'"),
        ({"severe_disabling_pain": "yes"}, "severe_disabling_pain: Input should be a valid bool"),
        ({"spine_surgeon_assessment": "maybe"}, "spine_surgeon_assessment: Input should be"),
        ({"version": 2}, "version: Input should be 1"),
        ({"weight": 80}, "weight: unknown field"),
    ],
)
def test_bad_input_names_the_field(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as excinfo:
        parse(**changes)
    assert expected in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_onset_before_birth_is_rejected() -> None:
    with pytest.raises(InputError, match="symptom_onset: before birth_date"):
        parse_case({"birth_date": "2000-01-01", "symptom_onset": "1999-12-31"})


def test_birth_after_the_assessment_date_is_rejected() -> None:
    case = parse_case({"birth_date": "2026-06-01", "symptom_onset": "2026-06-02"})
    with pytest.raises(InputError, match="birth_date: 2026-06-01 is after the assessment date"):
        case.age_on(dt.date(2026, 5, 1))
    with pytest.raises(InputError, match="symptom_onset: 2026-06-02 is after the assessment date"):
        package().evaluate(case, dt.date(2026, 5, 1))


@pytest.mark.parametrize("text", [b"", b"[]", b"null", b'{"age": 40,', b"\xff\xfe"])
def test_not_a_json_object(text: bytes) -> None:
    with pytest.raises(InputError):
        parse_case(text)
