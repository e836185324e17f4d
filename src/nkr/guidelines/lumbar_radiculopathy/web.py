"""The guideline's pages in the web app: its assessment form, patient handout
(``handout.toml``) and sample patients for the integrators' page (``samples/``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from nkr.guidelines.lumbar_radiculopathy.case import Case
from nkr.web._spec import (
    BirthOrAgeField,
    CheckboxesField,
    ChoiceField,
    DateField,
    DateOrder,
    FlagField,
    FormSpec,
    Handout,
    Sample,
    Section,
    TriStateField,
    bounds,
    load_handout,
    load_samples,
)

if TYPE_CHECKING:
    from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy

HERE: Final = Path(__file__).parent
HANDOUT_FILE: Final = HERE / "handout.toml"
SAMPLES_DIR: Final = HERE / "samples"


def age_limits() -> tuple[int, int]:
    """The case format's own limits for ``age``, so the form never disagrees with it."""
    return bounds(Case, "age")


def form(package: LumbarRadiculopathy) -> FormSpec:
    """The assessment form: the case's fields, in the order a GP examines the patient."""
    low, high = age_limits()
    patient = Section(
        "patient",
        "web.section-patient",
        (
            DateField(
                "assessment_date",
                "field-assessment-date",
                "hint-date-today",
                required=True,
                today=True,
            ),
            BirthOrAgeField("age_group", "birth_date", "age", low, high),
            DateField(
                "symptom_onset",
                "web.field-symptom-onset",
                "web.hint-symptom-onset",
                required=True,
                missing="web.error-onset-required",
            ),
        ),
    )
    findings = Section(
        "findings",
        "web.section-findings",
        (
            CheckboxesField(
                "signs", "web.field-signs", "web.hint-signs", entered="web.entered-signs"
            ),
            TriStateField(
                "mri_confirmed",
                "web.field-mri-confirmed",
                "web.hint-mri-confirmed",
                unknown="web.mri-unknown",
            ),
            CheckboxesField(
                "red_flags",
                "web.field-red-flags",
                "web.hint-red-flags",
                warning=True,
                entered="web.entered-red-flags",
            ),
            FlagField("severe_disabling_pain", "web.field-severe-pain", "web.hint-severe-pain"),
        ),
    )
    treatment = Section(
        "treatment",
        "web.section-treatment",
        (
            CheckboxesField(
                "non_surgical_treatment",
                "web.field-treatment",
                "web.hint-treatment",
                entered="web.entered-treatment",
            ),
            ChoiceField("spine_surgeon_assessment", "web.field-surgeon", "none"),
            CheckboxesField(
                "planned", "web.field-planned", "web.hint-planned", entered="web.entered-planned"
            ),
        ),
    )
    onset = "symptom_onset"
    return FormSpec(
        sections=(patient, findings, treatment),
        date="assessment_date",
        checks=(
            DateOrder(onset, "assessment_date", onset, "web.error-onset-future"),
            DateOrder("birth_date", onset, onset, "web.error-onset-before-birth"),
        ),
    )


def handout() -> Handout:
    return load_handout(HANDOUT_FILE)


def samples() -> dict[str, Sample]:
    return load_samples(SAMPLES_DIR)
