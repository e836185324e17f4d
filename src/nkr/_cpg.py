"""What a guideline says about itself as computable FHIR artifacts (HL7 CPG 2.0), as data:
the interventions its recommendations act on (each becomes an ActivityDefinition of a request
kind, coded from one of its value sets), which recommendation acts on which, the process code
of each section, and the rating system its grades follow. Generic: each guideline ships one
``cpg.toml`` in this format; :mod:`nkr.fhir._artifacts` builds the resources from it and from
the guideline's content."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nkr._errors import InputError, describe_validation_error
from nkr._guideline import Direction, Guideline, Localized, Slug

# The request resources nkr's $apply builds for an ActivityDefinition's kind.
ActivityKind = Literal["ServiceRequest", "CommunicationRequest"]
# http://hl7.org/fhir/uv/cpg/CodeSystem/cpg-common-process-cs (CPG 2.0.0), the codes a
# strategy's or pathway's action may carry.
CommonProcess = Literal[
    "registration",
    "triage",
    "local-urgent-care",
    "history-and-physical",
    "provide-counseling",
    "diagnostic-testing",
    "determine-diagnosis",
    "guideline-based-care",
    "dispense-medications",
    "emergency-care",
    "actue-tertiary-care",
    "charge-for-service",
    "discharge-referral-of-patient",
    "record-and-report",
    "monitor-and-follow-up-of-patient",
    "alerts-reminders-education",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Activity(_Model):
    """One intervention a recommendation acts on."""

    id: Slug
    kind: ActivityKind
    # The value set whose codes are the activity's code (none: the title says what it is).
    valueset: Slug | None = None
    # Default: the value set's title.
    title: Localized | None = None

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.title is None and self.valueset is None:
            raise ValueError("an activity without a value set needs a 'title'")
        return self


class RecommendationActivities(_Model):
    """The activities of one recommendation. A request for an activity in ``do_not_perform``
    says not to do it; by default that is every activity of a recommendation *against*."""

    activities: tuple[Slug, ...] = Field(min_length=1)
    do_not_perform: tuple[Slug, ...] | None = None
    # FHIR action-selection-behavior among several activities.
    selection: Literal["any", "all", "all-or-none", "exactly-one", "at-most-one", "one-or-more"] = (
        "all"
    )

    def not_performed(self, direction: Direction) -> frozenset[str]:
        if self.do_not_perform is not None:
            return frozenset(self.do_not_perform)
        return frozenset(self.activities) if direction is Direction.AGAINST else frozenset()


class RatingSystem(_Model):
    """The system the grades follow (GRADE for the Danish NKR), named for the artifacts."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://\S+$")
    text: Localized


class CpgSpec(_Model):
    """A guideline's ``cpg.toml``, checked against its content by :func:`load_cpg`."""

    schema_version: Literal[1]
    rating_system: RatingSystem
    activities: tuple[Activity, ...] = Field(min_length=1)
    recommendations: dict[Slug, RecommendationActivities] = Field(default_factory=dict)
    # The CPG common-process code of each section's strategy (default guideline-based-care).
    sections: dict[Slug, CommonProcess] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _activities_resolve(self) -> Self:
        ids = [a.id for a in self.activities]
        if len(set(ids)) != len(ids):
            raise ValueError("activities: an id is used twice")
        for rec_id, links in self.recommendations.items():
            listed = (("activities", links.activities), ("do_not_perform", links.do_not_perform))
            for name, items in listed:
                for item in items or ():
                    if item not in ids:
                        raise ValueError(
                            f"recommendations.{rec_id}.{name}: unknown activity '{item}'"
                        )
        used = {a for links in self.recommendations.values() for a in links.activities}
        unused = [i for i in ids if i not in used]
        if unused:
            raise ValueError(f"activities: '{unused[0]}' is no recommendation's activity")
        return self

    def activity(self, activity_id: str) -> Activity:
        return next(a for a in self.activities if a.id == activity_id)

    def process(self, section_id: str) -> CommonProcess:
        return self.sections.get(section_id, "guideline-based-care")


def load_cpg(path: Path, content: Guideline, valueset_ids: tuple[str, ...]) -> CpgSpec:
    """A guideline's ``cpg.toml``, validated and checked against its content (recommendation
    and section ids) and value sets; errors name the file and the field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        spec = CpgSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{path}: {describe_validation_error(exc)}") from None
    for rec_id in spec.recommendations:
        if rec_id not in content.by_id:
            raise InputError(f"{path}: recommendations.{rec_id}: unknown recommendation")
    sections = {s.id for s in content.sections}
    for section_id in spec.sections:
        if section_id not in sections:
            raise InputError(f"{path}: sections.{section_id}: unknown section")
    for i, activity in enumerate(spec.activities):
        if activity.valueset is not None and activity.valueset not in valueset_ids:
            raise InputError(f"{path}: activities[{i}].valueset: unknown value set")
    return spec
