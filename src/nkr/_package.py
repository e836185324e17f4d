"""The guideline interface: what every guideline package provides, and the registry that finds
the installed ones.

A guideline is one Python package exposing one object that implements
:class:`GuidelinePackage`: its content (the quick guide as data), its patient case and the
rules that assess it, its reading of FHIR, its CDS Hooks services and card rules, its
assessment form, handout, texts and samples. Everything clinical lives there. The adapters
(command line, web app, CDS Hooks, FHIR) are generic: they take a package from the registry,
turn their input into its case and render what its rules decide.

The registry finds packages through Python entry points in the group ``nkr.guidelines``: an
entry point names a function that takes the ``NKR_*`` environment and returns the package.
So a hospital or another team ships a guideline as an installable package of its own::

    [project.entry-points."nkr.guidelines"]
    my-guideline = "my_package:package"
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Protocol

from nkr._assessment import Assessment
from nkr._errors import InputError
from nkr._guideline import Guideline, Lang, Localized
from nkr._settings import DEFAULT_GUIDELINE

if TYPE_CHECKING:
    from nkr._synth import Synthesis
    from nkr._texts import Texts
    from nkr.audit._model import Episode, Indicator
    from nkr.cdshooks._kit import CardKit
    from nkr.fhir._read import PatientRecord
    from nkr.fhir._reading import FhirReading
    from nkr.fhir._valuesets import ValueSets
    from nkr.web._spec import FormSpec, Handout, Sample

ENTRY_POINT_GROUP: Final = "nkr.guidelines"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One CDS Hooks service of a guideline: its id (unique across guidelines), its hook and
    the texts of the discovery document."""

    id: str
    hook: str
    title: Localized
    description: Localized


class GuidelinePackage(Protocol):
    """Everything guideline-specific, behind one object. Implementations are immutable once
    built; every method is pure unless it says otherwise."""

    @property
    def id(self) -> str:
        """The guideline's id (its data file's ``id``), as ``--guideline`` selects it."""
        ...

    @property
    def slug(self) -> str:
        """The guideline's URL slug: its web pages live under ``/<slug>/``."""
        ...

    @property
    def content(self) -> Guideline:
        """The quick guide as data (verbatim wording, grades, scope, legend, assumptions)."""
        ...

    @property
    def texts(self) -> Texts:
        """The guideline's interface texts: card, form and handout words, FHIR notes."""
        ...

    # -- the case and the rules ----------------------------------------------------------------

    def parse_case(self, data: bytes | str | dict[str, Any]) -> Any:
        """The patient case from JSON; raises :class:`~nkr.InputError` naming the field."""
        ...

    def evaluate(self, case: Any, on: dt.date) -> Assessment:
        """Assess ``case`` on ``on``: pure, one short rule per recommendation."""
        ...

    # -- FHIR ------------------------------------------------------------------------------

    @property
    def valuesets(self) -> ValueSets:
        """The value sets the reading of FHIR uses, with a deployment's extra codes."""
        ...

    @property
    def prefetch(self) -> Mapping[str, str]:
        """The CDS Hooks prefetch templates, by key (the same for each of its services)."""
        ...

    def read_record(self, record: PatientRecord, on: dt.date) -> FhirReading:
        """The patient's typed FHIR record as this guideline's case (or None with notes on
        why), with notes on how the record was read and the draft orders it recognises."""
        ...

    # -- population audit ------------------------------------------------------------------

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        """The quality indicators the audit computes, from the guideline's data."""
        ...

    def judge(self, record: PatientRecord, patient: str) -> tuple[Episode, ...]:
        """The episodes of care in one patient's whole record (``patient``: its reference,
        ``Patient/ID``), each judged as the cards would on its assessment date; raises
        :class:`~nkr.InputError` located in ``record`` on a value that cannot be right."""
        ...

    # -- CDS Hooks -------------------------------------------------------------------------

    @property
    def services(self) -> tuple[ServiceSpec, ...]:
        """The guideline's CDS Hooks services."""
        ...

    def cards(self, hook: str, assessment: Assessment, kit: CardKit) -> None:
        """The card rules: which cards an assessment gives on ``hook``, built with ``kit``."""
        ...

    def topic_label(self, topic: str, lang: Lang) -> str | None:
        """A card topic's name for people (None: not a topic of this guideline)."""
        ...

    # -- web app ---------------------------------------------------------------------------

    @property
    def form(self) -> FormSpec:
        """The assessment form's fields, turned into a case by :meth:`parse_case`."""
        ...

    @property
    def handout(self) -> Handout:
        """The patient handout, each paragraph tied to the recommendations it rests on."""
        ...

    @property
    def samples(self) -> Mapping[str, Sample]:
        """Sample patients as FHIR resources, for the integrators' page."""
        ...

    # -- population audit ----------------------------------------------------------------

    @property
    def synthesis(self) -> Synthesis:
        """The plan of ``nkr synth``: synthetic patients as FHIR resources, with what an
        audit of them must find (decided by the plan, never read back)."""
        ...


# Every member of the interface, for the registry's check of what an entry point gives.
MEMBERS: Final = tuple(
    name for name in GuidelinePackage.__dict__ if not name.startswith("_") and name != "register"
)

Factory = Callable[[Mapping[str, str]], GuidelinePackage]


@dataclass(frozen=True, slots=True)
class Registry:
    """The installed guidelines, in a stable order (by id), and the default one."""

    packages: tuple[GuidelinePackage, ...]
    default_id: str

    def __post_init__(self) -> None:
        if not self.packages:
            raise InputError("no guideline is installed (entry points 'nkr.guidelines')")
        ids = [p.id for p in self.packages]
        slugs = [p.slug for p in self.packages]
        services = [s.id for p in self.packages for s in p.services]
        for what, values in (("id", ids), ("slug", slugs), ("CDS service id", services)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise InputError(f"guidelines: {what} {twice[0]!r} is used twice")
        if self.default_id not in ids:
            raise InputError(
                f"setting NKR_GUIDELINE: unknown guideline '{self.default_id}' "
                f"(installed: {', '.join(ids)})"
            )

    @property
    def default(self) -> GuidelinePackage:
        return self.get(self.default_id)

    def get(self, guideline_id: str | None) -> GuidelinePackage:
        """The guideline ``guideline_id`` (None: the default); raises InputError naming the
        installed ones."""
        if guideline_id is None:
            return self.default
        for package in self.packages:
            if package.id == guideline_id:
                return package
        raise InputError(
            f"--guideline: unknown guideline '{guideline_id[:80]}' "
            f"(installed: {', '.join(p.id for p in self.packages)})"
        )

    def by_slug(self, slug: str) -> GuidelinePackage | None:
        return next((p for p in self.packages if p.slug == slug), None)

    def service(self, service_id: str) -> tuple[GuidelinePackage, ServiceSpec] | None:
        for package in self.packages:
            for service in package.services:
                if service.id == service_id:
                    return package, service
        return None


def discover(environ: Mapping[str, str] | None = None) -> Registry:
    """Every guideline installed through entry points, built from the ``NKR_*`` environment.
    The default is ``NKR_GUIDELINE`` when set, else the only one installed, else the one nkr
    ships (:data:`nkr._settings.DEFAULT_GUIDELINE`)."""
    env = os.environ if environ is None else environ
    packages: list[GuidelinePackage] = []
    for entry in sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
    ):
        try:
            factory: Factory = entry.load()
        except (ImportError, AttributeError) as exc:
            raise InputError(
                f"guideline entry point '{entry.name}' ({entry.value}) cannot be loaded: {exc}"
            ) from None
        package = factory(env)
        # Checked on the type: reading the members would build them all now.
        missing = [name for name in MEMBERS if not hasattr(type(package), name)]
        if missing:
            raise InputError(
                f"guideline entry point '{entry.name}' ({entry.value}) does not give a "
                f"guideline package (nkr._package.GuidelinePackage): no {', '.join(missing)}"
            )
        packages.append(package)
    packages.sort(key=lambda p: p.id)
    chosen = env.get("NKR_GUIDELINE")
    if chosen is None:
        chosen = packages[0].id if len(packages) == 1 else DEFAULT_GUIDELINE
    return Registry(tuple(packages), chosen)


@cache
def registry() -> Registry:
    """The registry of this process, from its environment (found once)."""
    return discover()
