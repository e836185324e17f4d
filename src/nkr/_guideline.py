"""The guideline as data: schema, loading and validation.

Nothing here is specific to one guideline: every Danish NKR quick guide has the same form
(sections, graded recommendations, legend), so another guideline is another data file.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from nkr._errors import InputError, describe_validation_error

Lang = Literal["da", "en"]
LANGS: tuple[Lang, ...] = ("da", "en")

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Localized(_Model):
    """A text in every supported language."""

    da: Text
    en: Text

    def __call__(self, lang: Lang) -> str:
        return self.da if lang == "da" else self.en


class Kind(StrEnum):
    GRADED = "graded"
    GOOD_PRACTICE = "good-practice"


class Direction(StrEnum):
    FOR = "for"
    AGAINST = "against"


class Strength(StrEnum):
    STRONG = "strong"
    WEAK = "weak"


class Certainty(StrEnum):
    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"
    VERY_LOW = "very-low"


_CERTAINTY_MARKS = {
    Certainty.HIGH: 4,
    Certainty.MODERATE: 3,
    Certainty.LOW: 2,
    Certainty.VERY_LOW: 1,
}
GOOD_PRACTICE_SYMBOL = "√"


def strength_symbol(direction: Direction, strength: Strength) -> str:
    """The quick guide's arrow(s) for a graded recommendation: ↑↑ ↑ ↓ ↓↓."""
    arrow = "↑" if direction is Direction.FOR else "↓"
    return arrow * (2 if strength is Strength.STRONG else 1)


def certainty_symbol(certainty: Certainty) -> str:
    """The quick guide's certainty marks: ⊕ (very low) to ⊕⊕⊕⊕ (high)."""
    return "⊕" * _CERTAINTY_MARKS[certainty]


class Section(_Model):
    id: Slug
    heading: Localized


class Recommendation(_Model):
    """One recommendation with its official wording and its grade as structured fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    id: Slug
    # A short name for lists (the software's, not official text).
    label: Localized
    section: Slug
    kind: Kind
    direction: Direction
    strength: Strength | None = None
    certainty: Certainty | None = None
    wording: Localized

    @model_validator(mode="after")
    def _grade_matches_kind(self) -> Self:
        if self.kind is Kind.GRADED and (self.strength is None or self.certainty is None):
            raise ValueError("a graded recommendation needs both 'strength' and 'certainty'")
        if self.kind is Kind.GOOD_PRACTICE and (
            self.strength is not None or self.certainty is not None
        ):
            raise ValueError(
                "a good-practice recommendation has no 'strength' or 'certainty' "
                "(it has no evidence grade)"
            )
        return self

    @cached_property
    def strength_symbol(self) -> str:
        """↑↑ ↑ ↓ ↓↓ for graded recommendations, √ for good practice."""
        if self.strength is None:
            return GOOD_PRACTICE_SYMBOL
        return strength_symbol(self.direction, self.strength)

    @cached_property
    def certainty_symbol(self) -> str:
        """⊕ to ⊕⊕⊕⊕; empty for good practice, which has no evidence grade."""
        return "" if self.certainty is None else certainty_symbol(self.certainty)

    @cached_property
    def symbols(self) -> str:
        """The grade as the quick guide prints it, e.g. ``↑ ⊕⊕`` or ``√``."""
        return f"{self.strength_symbol} {self.certainty_symbol}".strip()


class Status(_Model):
    in_force: bool
    since: dt.date | None = None
    text: Localized


class Source(_Model):
    url: str
    citation: Localized


class ScopeReading(_Model):
    """Where the software reads the population more precisely than its source: the ids of
    the assumptions it makes, shown beside the population text."""

    assumptions: tuple[Slug, ...] = ()


class Scope(_Model):
    min_age_years: int = Field(ge=0, le=150)
    max_symptom_days: int = Field(ge=0)
    text: Localized
    reading: ScopeReading = ScopeReading()


class StrengthLegend(_Model):
    direction: Direction
    strength: Strength
    meaning: Localized

    @property
    def symbol(self) -> str:
        return strength_symbol(self.direction, self.strength)


class CertaintyLegend(_Model):
    level: Certainty
    meaning: Localized

    @property
    def symbol(self) -> str:
        return certainty_symbol(self.level)


class Legend(_Model):
    """The quick guide's key to its symbols, in its own words and order."""

    intro_strength: Localized
    strength: tuple[StrengthLegend, ...]
    # The paragraph on the good-practice symbol (√).
    good_practice: Localized
    intro_certainty: Localized
    certainty: tuple[CertaintyLegend, ...]
    # What is shown where there is no evidence (good practice).
    no_evidence: Localized


class Assumption(_Model):
    id: Slug
    text: Localized


class Guideline(_Model):
    """A national clinical guideline's quick guide, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    schema_version: Literal[1]
    id: Slug
    slug: Slug
    publisher: Text
    version: Text
    published: dt.date
    first_published: dt.date | None = None
    isbn: str | None = None
    copyright: str | None = None
    title: Localized
    short_title: Localized
    status: Status
    source: Source
    scope: Scope
    # The quick guide's paragraphs about its focus, verbatim.
    about: tuple[Localized, ...] = ()
    sections: tuple[Section, ...] = Field(min_length=1)
    recommendations: tuple[Recommendation, ...] = Field(min_length=1)
    legend: Legend
    assumptions: tuple[Assumption, ...] = ()
    vocabulary: dict[str, dict[str, Localized]] = Field(default_factory=dict)
    messages: dict[str, Localized] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        section_ids = [s.id for s in self.sections]
        _unique("sections", section_ids)
        _unique("recommendations", [r.id for r in self.recommendations])
        for index, rec in enumerate(self.recommendations):
            if rec.section not in section_ids:
                raise ValueError(
                    f"recommendations[{index}].section: unknown section '{rec.section}' "
                    f"(expected one of: {', '.join(section_ids)})"
                )
        assumption_ids = {a.id for a in self.assumptions}
        for item in self.scope.reading.assumptions:
            if item not in assumption_ids:
                raise ValueError(f"scope.reading.assumptions: unknown assumption '{item}'")
        order = [section_ids.index(r.section) for r in self.recommendations]
        if order != sorted(order):
            raise ValueError("recommendations must follow the order of their sections")
        return self

    @cached_property
    def by_id(self) -> dict[str, Recommendation]:
        return {r.id: r for r in self.recommendations}

    def recommendation(self, rec_id: str) -> Recommendation:
        try:
            return self.by_id[rec_id]
        except KeyError:
            raise InputError(
                f"unknown recommendation '{rec_id}' (expected one of: {', '.join(self.by_id)})"
            ) from None

    @cached_property
    def scope_assumptions(self) -> tuple[Assumption, ...]:
        """The assumptions in the software's reading of the population."""
        wanted = self.scope.reading.assumptions
        return tuple(a for a in self.assumptions if a.id in wanted)

    def in_section(self, section_id: str) -> tuple[Recommendation, ...]:
        return tuple(r for r in self.recommendations if r.section == section_id)

    def message(self, key: str, lang: Lang, **params: object) -> str:
        """A guideline message in ``lang`` with its ``{placeholders}`` filled in."""
        return self.messages[key](lang).format(**params)

    def label(self, vocabulary: str, code: str, lang: Lang) -> str:
        """The clinician-facing label of a case-vocabulary code."""
        return self.vocabulary[vocabulary][code](lang)


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what}: duplicate id '{item}'")
        seen.add(item)


def load_guideline(path: Path) -> Guideline:
    """Load and validate a guideline data file; errors name the file, the field and the fault."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return Guideline.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{path}: {describe_validation_error(exc)}") from None
