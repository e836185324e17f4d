"""The assessment form: typed input to a case or to errors beside the field; the assessment
itself is always the engine's."""

from __future__ import annotations

import datetime as dt

import pytest

from nkr import Lang
from nkr.guidelines.lumbar_radiculopathy import package
from nkr.guidelines.lumbar_radiculopathy.web import age_limits
from nkr.web._form import CaseForm, assess, parse_date
from nkr.web._spec import BirthOrAgeField

LR = package()
TODAY = dt.date(2026, 11, 26)


def _form(**fields: str | list[str]) -> CaseForm:
    items: list[tuple[str, str]] = []
    for name, value in fields.items():
        values = value if isinstance(value, list) else [value]
        items += [(name, v) for v in values]
    return CaseForm.from_items(LR.form, items)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-03-01", dt.date(2026, 3, 1)),
        ("1-3-2026", dt.date(2026, 3, 1)),
        ("01.03.2026", dt.date(2026, 3, 1)),
        ("01/03/2026", dt.date(2026, 3, 1)),
        ("marts 2026", None),
        ("2026-3", None),
    ],
)
def test_dates_in_iso_or_danish_order(typed: str, expected: dt.date | None) -> None:
    assert parse_date(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["٢٠٢٦-03-01", "２０２６-03-01", "2026-0３-01", "01-03-٢٠٢٦", "０1.03.2026", "2026-03-01\n"],
)
def test_dates_in_other_digits_are_not_dates(typed: str) -> None:
    """Python's ``\\d`` and ``int`` read Arabic-Indic and full-width digits; a date is ASCII."""
    assert parse_date(typed) is None


@pytest.mark.parametrize("age", ["٤٥", "４５", "4٥", "²"])
def test_an_age_in_other_digits_is_not_a_number(age: str) -> None:
    form = _form(age=age, symptom_onset="2026-11-01", signs="reflex_loss")
    assert assess(form, LR, "en", TODAY) is None
    assert form.errors["age"] == "The age must be a whole number from 0 to 130."


def test_impossible_date_raises() -> None:
    with pytest.raises(ValueError, match="day is out of range"):
        parse_date("2026-02-30")


def test_age_limits_come_from_the_case_format() -> None:
    assert age_limits() == (0, 130)
    (pair,) = [f for f in LR.form.fields if isinstance(f, BirthOrAgeField)]
    assert (pair.age_min, pair.age_max) == age_limits()


def test_valid_form_gives_exactly_the_engines_assessment() -> None:
    form = _form(
        assessment_date="2026-11-26",
        birth_date="14-05-1981",
        symptom_onset="2026-10-01",
        signs=["reflex_loss", "sensory_disturbance"],
        mri_confirmed="yes",
        severe_disabling_pain="yes",
        non_surgical_treatment="supervised_exercise",
        spine_surgeon_assessment="none",
        planned=["mri"],
    )
    assessment = assess(form, LR, "da", TODAY)
    assert form.errors == {}
    assert assessment is not None
    case = LR.parse_case(
        {
            "birth_date": "1981-05-14",
            "symptom_onset": "2026-10-01",
            "signs": ["reflex_loss", "sensory_disturbance"],
            "mri_confirmed": True,
            "severe_disabling_pain": True,
            "non_surgical_treatment": ["supervised_exercise"],
            "spine_surgeon_assessment": "none",
            "planned": ["mri"],
        }
    )
    assert assessment == LR.evaluate(case, TODAY)


def test_assessment_date_defaults_to_today() -> None:
    form = _form(age="40", symptom_onset="2026-11-20", signs="reflex_loss")
    assessment = assess(form, LR, "en", TODAY)
    assert assessment is not None
    assert assessment.date == TODAY


@pytest.mark.parametrize(
    ("fields", "field", "da", "en"),
    [
        ({"age": "45"}, "symptom_onset", "Angiv datoen", "Enter the date"),
        ({"age": "45", "symptom_onset": "2026-02-30"}, "symptom_onset", "findes ikke", "not exist"),
        ({"age": "45", "symptom_onset": "i går"}, "symptom_onset", "er ikke en dato", "not a date"),
        ({"age": "45", "symptom_onset": "2026-11-27"}, "symptom_onset", "efter", "after"),
        (
            {"birth_date": "2000-01-01", "symptom_onset": "1999-12-31"},
            "symptom_onset",
            "før fødselsdatoen",
            "before the date of birth",
        ),
        (
            {"birth_date": "2026-12-01", "symptom_onset": "2026-11-20"},
            "birth_date",
            "efter",
            "after",
        ),
        (
            {"age": "45", "birth_date": "1980-01-01", "symptom_onset": "2026-11-20"},
            "age_group",
            "ikke begge",
            "not both",
        ),
        ({"symptom_onset": "2026-11-20"}, "age_group", "fødselsdato eller alder", "date of birth"),
        ({"age": "131", "symptom_onset": "2026-11-20"}, "age", "mellem 0 og 130", "between 0"),
        ({"age": "-1", "symptom_onset": "2026-11-20"}, "age", "helt tal", "whole number"),
        ({"age": "4.5", "symptom_onset": "2026-11-20"}, "age", "helt tal", "whole number"),
        (
            {"age": "45", "symptom_onset": "2026-11-20", "signs": "third_eye"},
            "signs",
            "ukendt",
            "unknown",
        ),
        (
            {"age": "45", "symptom_onset": "2026-11-20", "mri_confirmed": "maybe"},
            "mri_confirmed",
            "ukendt",
            "unknown",
        ),
        (
            {"age": "45", "symptom_onset": "2026-11-20", "assessment_date": "2026-13-01"},
            "assessment_date",
            "findes ikke",
            "not exist",
        ),
    ],
)
def test_errors_name_the_field_in_the_page_language(
    fields: dict[str, str], field: str, da: str, en: str
) -> None:
    languages: tuple[tuple[Lang, str], ...] = (("da", da), ("en", en))
    for lang, words in languages:
        form = _form(**fields)
        assert assess(form, LR, lang, TODAY) is None
        assert field in form.errors, form.errors
        assert words in form.errors[field]


def test_everything_typed_is_kept() -> None:
    form = _form(
        age="45", birth_date="1980-01-01", symptom_onset="2026-02-30", signs=["reflex_loss"]
    )
    assert assess(form, LR, "da", TODAY) is None
    assert form.values == {"age": "45", "birth_date": "1980-01-01", "symptom_onset": "2026-02-30"}
    assert form.is_checked("signs", "reflex_loss")
    assert ("signs", "reflex_loss") in form.hidden_items()


def test_unknown_fields_are_ignored_and_long_values_cut() -> None:
    form = CaseForm.from_items(LR.form, [("evil", "x"), ("age", "9" * 1000)])
    assert "evil" not in form.values
    assert len(form.values["age"]) == 200
