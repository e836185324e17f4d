"""The patient case, format version 1: what an interface knows about one patient."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nkr._errors import InputError, parse_model

Sign = Literal["radicular_leg_pain", "reduced_strength", "reflex_loss", "sensory_disturbance"]
RedFlag = Literal[
    "cauda_equina",
    "progressive_paresis",
    "suspected_malignancy",
    "suspected_infection",
    "suspected_fracture",
]
Treatment = Literal["supervised_exercise", "specific_exercise", "manual_mobilisation", "other"]
SurgeonAssessment = Literal["none", "referred", "done"]
Planned = Literal[
    "mri",
    "glucocorticoid_injection",
    "acupuncture",
    "bed_rest",
    "supervised_exercise",
    "specific_exercise",
    "manual_mobilisation",
    "spine_surgeon_referral",
]

CASE_FORMAT_VERSION: Literal[1] = 1


class Case(BaseModel):
    """A patient with (suspected) recent-onset lumbar nerve-root involvement.

    Give ``birth_date`` or ``age`` (whole years on the assessment date), not both.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: Literal[1] = CASE_FORMAT_VERSION
    birth_date: dt.date | None = None
    age: int | None = Field(default=None, ge=0, le=130)
    symptom_onset: dt.date
    signs: frozenset[Sign] = frozenset()
    mri_confirmed: bool | None = None
    red_flags: frozenset[RedFlag] = frozenset()
    severe_disabling_pain: bool = False
    non_surgical_treatment: frozenset[Treatment] = frozenset()
    spine_surgeon_assessment: SurgeonAssessment = "none"
    planned: frozenset[Planned] = frozenset()

    @model_validator(mode="after")
    def _one_way_to_give_age(self) -> Self:
        if (self.birth_date is None) == (self.age is None):
            raise ValueError("give exactly one of 'birth_date' or 'age'")
        if self.birth_date is not None and self.symptom_onset < self.birth_date:
            raise ValueError("symptom_onset: before birth_date")
        return self

    def age_on(self, on: dt.date) -> int:
        """Age in whole years on ``on``; someone born on 29 February turns a year older on
        1 March in a year that is not a leap year."""
        if self.birth_date is None:
            assert self.age is not None
            return self.age
        born = self.birth_date
        if on < born:
            raise InputError("birth_date", f"{born} is after the assessment date {on}")
        had_birthday = (on.month, on.day) >= (born.month, born.day)
        return on.year - born.year - (0 if had_birthday else 1)

    def to_json(self) -> dict[str, Any]:
        """The case in format version 1, with sets as sorted lists (stable output)."""
        data = self.model_dump(mode="json", exclude_none=True)
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = sorted(value)
        return data


def parse_case(data: bytes | str | dict[str, Any]) -> Case:
    """Validate a case from JSON text or a JSON-shaped dict; errors name the field."""
    return parse_model(Case, data)
