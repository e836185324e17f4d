"""The patient handout: plain-language paragraphs from ``handout.toml``, each tied to the
recommendations it is based on, plus general safety advice that is not from the guideline."""

from __future__ import annotations

import string
import tomllib
from functools import cache
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nkr._guideline import Guideline, Lang, Localized, Slug
from nkr.web._text import long_date

HANDOUT_FILE = Path(__file__).with_name("handout.toml")

# The placeholders the patient status line may use, filled from the guideline data.
STATUS_PLACEHOLDERS = frozenset({"version", "published_year", "since"})


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
    """When to get a doctor at once. Deliberately has no ``based_on``: it is general Danish
    practice (the Danish doctors' handbook on sundhed.dk), not a guideline recommendation."""

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

    def text(self, guideline: Guideline, lang: Lang) -> str:
        """The status line for ``guideline`` in ``lang``."""
        status = guideline.status
        values = {"version": guideline.version, "published_year": str(guideline.published.year)}
        if status.in_force:
            return self.in_force(lang).format(**values)
        if status.since is None:
            raise ValueError("the guideline is not in force but has no 'since' date")
        return self.not_in_force(lang).format(**values, since=long_date(status.since, lang))


class Handout(_Model):
    title: Localized
    intro: Localized
    safety_netting: SafetyNetting
    status: PatientStatus
    paragraphs: tuple[Paragraph, ...] = Field(min_length=1)


@cache
def handout() -> Handout:
    """The handout's content, validated once."""
    raw = tomllib.loads(HANDOUT_FILE.read_text(encoding="utf-8"))
    return Handout.model_validate(raw)
