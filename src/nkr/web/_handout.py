"""The patient handout: plain-language paragraphs from ``handout.toml``, each tied to the
recommendations it is based on."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from nkr._guideline import Localized, Slug

HANDOUT_FILE = Path(__file__).with_name("handout.toml")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Paragraph(_Model):
    id: Slug
    based_on: tuple[Slug, ...] = Field(min_length=1)
    heading: Localized
    text: Localized


class Handout(_Model):
    title: Localized
    intro: Localized
    paragraphs: tuple[Paragraph, ...] = Field(min_length=1)


@cache
def handout() -> Handout:
    """The handout's content, validated once."""
    raw = tomllib.loads(HANDOUT_FILE.read_text(encoding="utf-8"))
    return Handout.model_validate(raw)
