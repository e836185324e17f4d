"""A FICTIONAL guideline package, for nkr's tests only: the proof that the guideline interface
(:class:`nkr.GuidelinePackage`) is complete. Nothing here is clinical.

It is found the way every guideline is: an entry point in the group ``nkr.guidelines``, here
declared by the ``*.dist-info`` folder beside this package, which only the tests put on
``sys.path``. Its content, case and rules are here; what it gives the FHIR, CDS Hooks and web
adapters is in :mod:`.adapters`.
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
    Lang,
    ServiceSpec,
    Texts,
    generic_texts,
    load_guideline,
    load_texts,
)
from nkr_fictional_guideline import adapters
from nkr_fictional_guideline.case import FictionalCase, parse_case
from nkr_fictional_guideline.rules import RULES, evaluate

if TYPE_CHECKING:
    from nkr.cdshooks._kit import CardKit
    from nkr.fhir._read import PatientRecord
    from nkr.web._spec import FormSpec, Handout, Sample

    from nkr.fhir._reading import FhirReading
    from nkr.fhir._valuesets import ValueSets

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

    # -- FHIR, CDS Hooks and the web app: see adapters.py -----------------------------------

    @cached_property
    def valuesets(self) -> ValueSets:
        return adapters.valuesets()

    @property
    def prefetch(self) -> Mapping[str, str]:
        return adapters.PREFETCH

    def read_record(self, record: PatientRecord, on: dt.date) -> FhirReading:
        return adapters.read_record(self, record, on)

    @cached_property
    def services(self) -> tuple[ServiceSpec, ...]:
        return adapters.services(self)

    def cards(self, hook: str, assessment: Assessment, kit: CardKit) -> None:
        adapters.cards(self, hook, assessment, kit)

    def topic_label(self, topic: str, lang: Lang) -> str | None:
        return adapters.topic_label(self, topic, lang)

    @cached_property
    def form(self) -> FormSpec:
        return adapters.form(self)

    @cached_property
    def handout(self) -> Handout:
        return adapters.handout(self)

    @cached_property
    def samples(self) -> Mapping[str, Sample]:
        return adapters.samples()


def package(env: Mapping[str, str]) -> FictionalGuideline:
    """The entry point ``nkr.guidelines``."""
    return FictionalGuideline(env)
