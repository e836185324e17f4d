"""What a guideline gives the web app, as data: its assessment form (:class:`FormSpec`), its
patient handout (:class:`Handout`) and its sample patients (:class:`Sample`).

A form is sections of typed fields; each field fills the case field of the same name, and the
web app turns the posted values into the case JSON that the guideline's ``parse_case`` takes
(:mod:`nkr.web._form`). Labels and hints are text keys, looked up in the guideline's texts
(which fall back on the generic ones). Nothing here knows a guideline.
"""

from __future__ import annotations

import datetime as dt
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeAlias

import orjson
from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nkr._guideline import Guideline, Lang, Localized, Slug
from nkr._texts import Texts

# -- the assessment form ----------------------------------------------------------------------


def bounds(model: type[BaseModel], name: str) -> tuple[int, int]:
    """The lower and upper bound (``ge``, ``le``) a case model sets on its integer field
    ``name``, so that a form never disagrees with the case it builds (0 where none is set)."""
    low = high = 0
    for item in model.model_fields[name].metadata:
        if isinstance(item, Ge):
            low = int(str(item.ge))
        elif isinstance(item, Le):
            high = int(str(item.le))
    return low, high


@dataclass(frozen=True, slots=True)
class DateField:
    """A date typed as YYYY-MM-DD or DD-MM-YYYY, an ISO date in the case. ``today``: filled in
    with today's date on a blank form. ``missing``: the text key of the error when a required
    date is not given."""

    kind: ClassVar[str] = "date"
    name: str
    label: str
    hint: str
    required: bool = False
    today: bool = False
    missing: str = "error-required"


@dataclass(frozen=True, slots=True)
class BirthOrAgeField:
    """A date of birth or an age in whole years (``age_min``-``age_max``): exactly one of them,
    as ``birth`` or ``age`` in the case. Errors about the pair land on ``name``."""

    kind: ClassVar[str] = "birth_or_age"
    name: str
    birth: str
    age: str
    age_min: int
    age_max: int
    label: str = "field-age-group"
    hint: str = "hint-age-group"
    required: bool = True


@dataclass(frozen=True, slots=True)
class TriStateField:
    """Yes, no or unknown (the default): true, false or absent in the case."""

    kind: ClassVar[str] = "tristate"
    name: str
    label: str
    hint: str
    unknown: str = "unknown"
    entered: str | None = None


@dataclass(frozen=True, slots=True)
class FlagField:
    """A checkbox: true when ticked, false otherwise."""

    kind: ClassVar[str] = "flag"
    name: str
    label: str
    hint: str
    entered: str | None = None


@dataclass(frozen=True, slots=True)
class ChoiceField:
    """One code of the guideline content's vocabulary ``vocabulary`` (the field's name unless
    said), ``default`` when none is chosen."""

    kind: ClassVar[str] = "choice"
    name: str
    label: str
    default: str
    hint: str | None = None
    vocabulary: str | None = None
    entered: str | None = None

    @property
    def vocabulary_name(self) -> str:
        return self.vocabulary or self.name


@dataclass(frozen=True, slots=True)
class CheckboxesField:
    """Any codes of the guideline content's vocabulary ``vocabulary`` (the field's name unless
    said), a list in the case. ``warning``: set apart as something to look out for."""

    kind: ClassVar[str] = "checkboxes"
    name: str
    label: str
    hint: str | None = None
    vocabulary: str | None = None
    warning: bool = False
    entered: str | None = None

    @property
    def vocabulary_name(self) -> str:
        return self.vocabulary or self.name


@dataclass(frozen=True, slots=True)
class IntegerField:
    """A whole number from ``minimum`` to ``maximum``, an integer in the case (absent when
    left blank and not ``required``)."""

    kind: ClassVar[str] = "integer"
    name: str
    label: str
    hint: str
    minimum: int
    maximum: int
    required: bool = False
    entered: str | None = None


FormField: TypeAlias = (
    DateField
    | BirthOrAgeField
    | TriStateField
    | FlagField
    | ChoiceField
    | CheckboxesField
    | IntegerField
)


@dataclass(frozen=True, slots=True)
class DateOrder:
    """A check across two date fields: ``earlier`` must not be after ``later``; else the error
    ``message`` (a text key) at the field ``at``. Either date may be missing: then no check."""

    earlier: str
    later: str
    at: str
    message: str


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    heading: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True, slots=True)
class FormSpec:
    """A guideline's assessment form. ``date`` names the date field that gives the assessment
    date (not a case field); ``checks`` are what the case's own validation would say less
    clearly, so that the error lands beside the field."""

    sections: tuple[Section, ...]
    date: str
    checks: tuple[DateOrder, ...] = ()

    @property
    def fields(self) -> tuple[FormField, ...]:
        return tuple(f for s in self.sections for f in s.fields)

    def single_names(self) -> tuple[str, ...]:
        """The names of single-valued inputs, in the form's order."""
        names: list[str] = []
        for f in self.fields:
            if isinstance(f, BirthOrAgeField):
                names += [f.birth, f.age]
            elif not isinstance(f, CheckboxesField):
                names.append(f.name)
        return tuple(names)

    def multi_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if isinstance(f, CheckboxesField))

    def anchor(self, name: str, content: Guideline) -> str:
        """The id of the first input of the field ``name`` (``form``, or a name of no field:
        of the first field after the assessment date), for the links of the error summary."""
        for f in self.fields:
            if isinstance(f, BirthOrAgeField) and name in (f.birth, f.age):
                return name
        found = next((f for f in self.fields if f.name == name), None)
        if found is None:
            found = next(f for f in self.fields if f.name != self.date)
        if isinstance(found, BirthOrAgeField):
            return found.birth
        if isinstance(found, CheckboxesField):
            return f"{found.name}-{next(iter(content.vocabulary[found.vocabulary_name]))}"
        if isinstance(found, ChoiceField):
            return f"{found.name}-{found.default}"
        if isinstance(found, TriStateField):
            return f"{found.name}-unknown"
        return found.name


# -- the patient handout ----------------------------------------------------------------------

# The placeholders the patient status line may use, filled from the guideline data.
STATUS_PLACEHOLDERS = frozenset({"version", "published_year", "since"})


def long_date(value: dt.date, lang: Lang, texts: Texts) -> str:
    """A date as written in running text: '22. marts 2023' / '22 March 2023'."""
    month = texts("months", lang).split(",")[value.month - 1].strip()
    if lang == "da":
        return f"{value.day}. {month} {value.year}"
    return f"{value.day} {month} {value.year}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Paragraph(_Model):
    id: Slug
    based_on: tuple[Slug, ...] = Field(min_length=1)
    heading: Localized
    text: Localized


class WarningSign(_Model):
    id: Slug
    text: Localized


class SafetyNetting(_Model):
    """When to get a doctor at once. Deliberately has no ``based_on``: it is general practice
    (named in ``source``), not a guideline recommendation."""

    label: Localized
    heading: Localized
    intro: Localized
    signs: tuple[WarningSign, ...] = Field(min_length=1)
    action: Localized
    source: Localized


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class PatientStatus(_Model):
    """The guideline's status in words for patients, with ``{placeholders}`` for the dates
    and version so the line follows the guideline data."""

    heading: Localized
    in_force: Localized
    not_in_force: Localized

    @model_validator(mode="after")
    def _known_placeholders(self) -> Self:
        for name, text in (("in_force", self.in_force), ("not_in_force", self.not_in_force)):
            for lang_text in (text.da, text.en):
                unknown = _placeholders(lang_text) - STATUS_PLACEHOLDERS
                if unknown:
                    raise ValueError(f"status.{name}: unknown placeholder(s) {sorted(unknown)}")
        for lang_text in (self.not_in_force.da, self.not_in_force.en):
            if "since" not in _placeholders(lang_text):
                raise ValueError("status.not_in_force must name the date: {since}")
        return self

    def text(self, guideline: Guideline, lang: Lang, texts: Texts) -> str:
        """The status line for ``guideline`` in ``lang``."""
        status = guideline.status
        values = {"version": guideline.version, "published_year": str(guideline.published.year)}
        if status.in_force:
            return self.in_force(lang).format(**values)
        if status.since is None:
            raise ValueError("the guideline is not in force but has no 'since' date")
        since = long_date(status.since, lang, texts)
        return self.not_in_force(lang).format(**values, since=since)


class Handout(_Model):
    """A patient handout: plain-language paragraphs, each tied to the recommendations it is
    based on, general safety advice set apart, and the guideline's status for patients."""

    title: Localized
    intro: Localized
    safety_netting: SafetyNetting
    status: PatientStatus
    paragraphs: tuple[Paragraph, ...] = Field(min_length=1)


def load_handout(path: Path) -> Handout:
    """A handout from its TOML file, validated."""
    return Handout.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


# -- sample patients --------------------------------------------------------------------------


class Sample(BaseModel):
    """A sample patient: FHIR R4 resources, with dates relative to today (``${today-20d}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str
    title: Localized
    description: Localized
    patient: dict[str, Any]
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    observations: list[dict[str, Any]] = Field(default_factory=list)
    procedures: list[dict[str, Any]] = Field(default_factory=list)
    service_requests: list[dict[str, Any]] = Field(default_factory=list, alias="serviceRequests")
    draft_orders: list[dict[str, Any]] = Field(default_factory=list, alias="draftOrders")


def load_samples(directory: Path) -> dict[str, Sample]:
    """The sample patients of ``directory`` (``*.json``) by id (the file's stem), in file-name
    order."""
    found: dict[str, Sample] = {}
    for path in sorted(directory.glob("*.json")):
        data = orjson.loads(path.read_bytes())
        data["id"] = path.stem
        found[path.stem] = Sample.model_validate(data)
    return found
