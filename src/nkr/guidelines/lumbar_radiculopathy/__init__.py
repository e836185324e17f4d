"""Sundhedsstyrelsen's NKR on non-surgical treatment of recent-onset lumbar radiculopathy.

One package: its content (``guideline.toml``), its case (:mod:`.case`), its rules
(:mod:`.rules`), its reading of FHIR (:mod:`.fhir`, value sets in ``valuesets/``), its CDS
Hooks services and card rules (:mod:`.cards`), its assessment form, handout and samples
(:mod:`.web`) and its texts (``texts.toml``). :func:`package` builds the one object that the
registry finds through the entry point ``nkr.guidelines``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nkr._assessment import Assessment
from nkr._cpg import CpgSpec, load_cpg
from nkr._errors import InputError, describe_validation_error
from nkr._guideline import Guideline, Lang, load_guideline
from nkr._package import ServiceSpec
from nkr._texts import Texts, generic_texts, load_texts
from nkr.guidelines.lumbar_radiculopathy import cards as card_rules
from nkr.guidelines.lumbar_radiculopathy.case import CASE_FORMAT_VERSION, Case, parse_case
from nkr.guidelines.lumbar_radiculopathy.rules import RULES, Course, evaluate

if TYPE_CHECKING:
    from nkr._synth import Synthesis
    from nkr.audit._model import Episode, Indicator
    from nkr.cdshooks._kit import CardKit
    from nkr.fhir._read import PatientRecord
    from nkr.fhir._reading import FhirReading
    from nkr.fhir._valuesets import ValueSets
    from nkr.guidelines.lumbar_radiculopathy.audit import Measures
    from nkr.web._spec import FormSpec, Handout, Sample

HERE: Final = Path(__file__).parent
GUIDELINE_FILE: Final = HERE / "guideline.toml"
TEXTS_FILE: Final = HERE / "texts.toml"
FHIR_NOTES_FILE: Final = HERE / "fhir_notes.toml"
CPG_FILE: Final = HERE / "cpg.toml"

# The guideline does not define "severe and disabling pain". Where nkr derives it from a 0-10
# pain score (NRS), this is the threshold it assumes unless a deployment configures another.
DEFAULT_PAIN_THRESHOLD: Final = 7

__all__ = [
    "CASE_FORMAT_VERSION",
    "DEFAULT_PAIN_THRESHOLD",
    "GUIDELINE_FILE",
    "Case",
    "Course",
    "LumbarRadiculopathy",
    "Options",
    "evaluate",
    "guideline",
    "package",
    "parse_case",
]


class Options(BaseModel):
    """What a deployment can set for this guideline (``NKR_PAIN_THRESHOLD``, and the
    generic ``NKR_VALUESET_DIR`` for extra local codes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pain_threshold: int = Field(default=DEFAULT_PAIN_THRESHOLD, ge=0, le=10)
    valueset_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Options:
        raw = {
            name: env[f"NKR_{name.upper()}"]
            for name in cls.model_fields
            if f"NKR_{name.upper()}" in env
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            where, _, problem = describe_validation_error(exc).partition(": ")
            raise InputError(f"setting NKR_{where.upper()}: {problem}") from None


@cache
def guideline() -> Guideline:
    """The guideline's content as published, loaded and validated once; its rules must
    cover it exactly. (Assumption texts keep their placeholders: see
    :attr:`LumbarRadiculopathy.content` for them filled in.)"""
    return RULES.check(load_guideline(GUIDELINE_FILE), GUIDELINE_FILE)


def _filled(g: Guideline, options: Options) -> Guideline:
    """The content with the deployment's values in the assumption texts."""
    assumptions = tuple(
        a.model_copy(
            update={
                "text": a.text.model_copy(
                    update={
                        lang: a.text(lang).format(pain_threshold=options.pain_threshold)
                        for lang in ("da", "en")
                    }
                )
            }
        )
        for a in g.assumptions
    )
    return g.model_copy(update={"assumptions": assumptions})


class LumbarRadiculopathy:
    """The guideline package (:class:`nkr._package.GuidelinePackage`)."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()

    @property
    def id(self) -> str:
        return self.content.id

    @property
    def slug(self) -> str:
        return self.content.slug

    @cached_property
    def content(self) -> Guideline:
        return _filled(guideline(), self.options)

    @cached_property
    def texts(self) -> Texts:
        return load_texts(TEXTS_FILE, FHIR_NOTES_FILE, fallback=generic_texts())

    def parse_case(self, data: bytes | str | dict[str, Any]) -> Case:
        return parse_case(data)

    def evaluate(self, case: Any, on: dt.date) -> Assessment:
        if not isinstance(case, Case):
            raise TypeError(f"expected this guideline's Case, got {type(case).__name__}")
        return evaluate(case, self.content, on)

    # -- FHIR (nkr.guidelines.lumbar_radiculopathy.fhir) ---------------------------------

    @cached_property
    def valuesets(self) -> ValueSets:
        from nkr.guidelines.lumbar_radiculopathy import fhir

        return fhir.load(self.options.valueset_dir)

    @cached_property
    def prefetch(self) -> Mapping[str, str]:
        from nkr.guidelines.lumbar_radiculopathy import fhir

        return fhir.PREFETCH

    def read_record(self, record: PatientRecord, on: dt.date) -> FhirReading:
        return self._reader(record, on)

    @cached_property
    def cpg(self) -> CpgSpec:
        return load_cpg(CPG_FILE, self.content, self.valuesets.ids)

    @cached_property
    def _reader(self) -> Callable[[PatientRecord, dt.date], FhirReading]:
        # Bound once: the reading module (and nkr.fhir, with FastAPI behind it) is imported on
        # first use only, so that the command line need not load it; calls skip the import.
        from nkr.guidelines.lumbar_radiculopathy import fhir

        return functools.partial(
            fhir.read_record,
            valuesets=self.valuesets,
            pain_threshold=self.options.pain_threshold,
        )

    # -- population audit (nkr.guidelines.lumbar_radiculopathy.audit) --------------------

    @cached_property
    def indicators(self) -> tuple[Indicator, ...]:
        return self._measures.indicators

    @cached_property
    def _measures(self) -> Measures:
        from nkr.guidelines.lumbar_radiculopathy import audit

        return audit.load_measures(self.content)

    def judge(self, record: PatientRecord, patient: str) -> tuple[Episode, ...]:
        return self._judge(record, patient)

    @cached_property
    def _judge(self) -> Callable[[PatientRecord, str], tuple[Episode, ...]]:
        from nkr.guidelines.lumbar_radiculopathy import audit, fhir

        return functools.partial(
            audit.judge,
            content=self.content,
            valuesets=self.valuesets,
            read=functools.partial(
                fhir.read_with_conditions,
                valuesets=self.valuesets,
                pain_threshold=self.options.pain_threshold,
            ),
            evaluate=self.evaluate,
            measures=self._measures,
        )

    # -- CDS Hooks (nkr.guidelines.lumbar_radiculopathy.cards) ---------------------------

    @cached_property
    def services(self) -> tuple[ServiceSpec, ...]:
        return card_rules.services(self)

    def cards(self, hook: str, assessment: Assessment, kit: CardKit) -> None:
        card_rules.cards(self, hook, assessment, kit)

    def topic_label(self, topic: str, lang: Lang) -> str | None:
        return card_rules.topic_label(self, topic, lang)

    # -- web app (nkr.guidelines.lumbar_radiculopathy.web) -------------------------------

    @cached_property
    def form(self) -> FormSpec:
        from nkr.guidelines.lumbar_radiculopathy import web

        return web.form(self)

    @cached_property
    def handout(self) -> Handout:
        from nkr.guidelines.lumbar_radiculopathy import web

        return web.handout()

    @cached_property
    def samples(self) -> Mapping[str, Sample]:
        from nkr.guidelines.lumbar_radiculopathy import web

        return web.samples()

    # -- population audit (nkr.guidelines.lumbar_radiculopathy.synth) --------------------

    @cached_property
    def synthesis(self) -> Synthesis:
        from nkr.guidelines.lumbar_radiculopathy.synth import LumbarSynthesis

        scope = self.content.scope
        return LumbarSynthesis(
            scope.max_symptom_days, scope.min_age_years, self.options.pain_threshold
        )


def package(env: Mapping[str, str] | None = None) -> LumbarRadiculopathy:
    """The entry point ``nkr.guidelines``: the package, with the deployment's options."""
    return LumbarRadiculopathy(Options.from_env({} if env is None else env))
