"""A FICTIONAL guideline package, for nkr's tests only: the proof that the guideline interface
(:class:`nkr.GuidelinePackage`) is complete. Nothing here is clinical.

It is found the way every guideline is: an entry point in the group ``nkr.guidelines``, here
declared by the ``*.dist-info`` folder beside this package, which only the tests put on
``sys.path``. Its content, case and rules are here; what it gives the FHIR, CDS Hooks and web
adapters is in :mod:`.adapters` (its functions are the class's members as they stand).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nkr import (
    Assessment,
    Guideline,
    GuidelinePackage,
    Texts,
    generic_texts,
    load_guideline,
    load_texts,
)
from nkr_fictional_guideline import adapters
from nkr_fictional_guideline.case import FictionalCase, parse_case
from nkr_fictional_guideline.rules import RULES, evaluate

HERE: Final = Path(__file__).parent
GUIDELINE_FILE: Final = HERE / "guideline.toml"


class FictionalGuideline:
    """The fictional guideline package (:class:`nkr.GuidelinePackage`)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    @property
    def id(self) -> str:
        return self.content.id

    @property
    def slug(self) -> str:
        return self.content.slug

    @cached_property
    def content(self) -> Guideline:
        return RULES.check(load_guideline(GUIDELINE_FILE), GUIDELINE_FILE)

    @cached_property
    def texts(self) -> Texts:
        return load_texts(HERE / "texts.toml", fallback=generic_texts())

    def parse_case(self, data: bytes | str | dict[str, Any]) -> FictionalCase:
        return parse_case(data)

    def evaluate(self, case: Any, on: dt.date) -> Assessment:
        if not isinstance(case, FictionalCase):
            raise TypeError(f"expected the fictional case, got {type(case).__name__}")
        return evaluate(case, self.content, on)

    valuesets = cached_property(adapters.valuesets)
    prefetch = adapters.PREFETCH
    read_record = adapters.read_record
    indicators = cached_property(adapters.indicators)
    judge = adapters.judge
    services = cached_property(adapters.services)
    cards = adapters.cards
    topic_label = adapters.topic_label
    form = cached_property(adapters.form)
    handout = cached_property(adapters.handout)
    samples = cached_property(adapters.samples)
    synthesis = cached_property(adapters.synthesis)


def package(env: Mapping[str, str]) -> FictionalGuideline:
    """The entry point ``nkr.guidelines``."""
    return FictionalGuideline(env)


if TYPE_CHECKING:
    # mypy checks that the class implements the interface, member by member.
    _: GuidelinePackage = FictionalGuideline({})
