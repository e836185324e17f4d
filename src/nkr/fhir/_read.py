"""The one reading of FHIR: typed msgspec structs for the FHIR R4 parts that guidelines read,
the CDS Hooks request around them, and the patient record a guideline reads its case from.

msgspec decodes a body into these structs in one pass, in C: it checks the JSON type of every
field a guideline reads and skips every other field without building it. A resource type the
structs do not read (a blood pressure's Observation is read; an Encounter is not) decodes as
an empty :class:`Other` and is skipped; a ``resourceType`` that is no FHIR R4 type is an error.

Errors are :class:`~nkr.InputError` with a JSON path (``$.prefetch.conditions.entry[0]
.resource.code.coding[1].system``) and a problem that never quotes a value from the record.
What types cannot express (a FHIR date's form, an impossible date) is checked where it is read,
by the helpers below, with the path too. Generic FHIR only: nothing here knows a guideline.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeAlias, TypeVar, cast

import msgspec
import orjson
from msgspec import UNSET, Meta, Struct, UnsetType

from nkr._errors import InputError

# -- data types ---------------------------------------------------------------------------------
# gc=False: decoded JSON is a tree, never a reference cycle, so the structs need not be tracked
# by the garbage collector (which makes decoding cheaper).


class Coding(Struct, gc=False):
    # UNSET when the Coding has no "system" at all (which a status code may leave out).
    system: str | UnsetType | None = UNSET
    code: str | None = None


class CodeableConcept(Struct, gc=False):
    coding: list[Coding] | None = None


class Period(Struct, gc=False):
    start: str | None = None
    end: str | None = None


class Quantity(Struct, gc=False):
    value: int | float | None = None


class Reference(Struct, gc=False):
    reference: str | None = None


# -- resources ----------------------------------------------------------------------------------


class Resource(Struct, tag_field="resourceType", gc=False):
    id: str | None = None

    @property
    def resource_type(self) -> str:
        return RESOURCE_TYPE[type(self)]


class Patient(Resource, tag="Patient"):
    birthDate: str | None = None
    managingOrganization: Reference | None = None


class Condition(Resource, tag="Condition"):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    onsetDateTime: str | None = None
    onsetPeriod: Period | None = None
    recordedDate: str | None = None


class Observation(Resource, tag="Observation"):
    status: str | None = None
    code: CodeableConcept | None = None
    valueQuantity: Quantity | None = None
    valueInteger: int | float | None = None
    effectiveDateTime: str | None = None
    effectiveInstant: str | None = None
    effectivePeriod: Period | None = None
    issued: str | None = None


class Procedure(Resource, tag="Procedure"):
    status: str | None = None
    code: CodeableConcept | None = None
    performedDateTime: str | None = None
    performedPeriod: Period | None = None


class ServiceRequest(Resource, tag="ServiceRequest"):
    status: str | None = None
    code: CodeableConcept | None = None
    authoredOn: str | None = None
    occurrenceDateTime: str | None = None


class MedicationRequest(Resource, tag="MedicationRequest"):
    status: str | None = None
    medicationCodeableConcept: CodeableConcept | None = None


class DeviceRequest(Resource, tag="DeviceRequest"):
    status: str | None = None
    codeCodeableConcept: CodeableConcept | None = None


class OperationOutcome(Resource, tag="OperationOutcome"):
    """A search's warning in a searchset Bundle: skipped."""


class Other(Resource):
    """A resource of a FHIR R4 type that no guideline reads: accepted and skipped."""


class Link(Struct, gc=False):
    relation: str | None = None
    url: str | None = None


class Entry(Struct, gc=False):
    resource: AnyResource | None = None


class Bundle(Resource, tag="Bundle"):
    type: str | None = None
    entry: list[Entry] | None = None
    link: list[Link] | None = None

    def next_url(self) -> str | None:
        for link in self.link or ():
            if link.relation == "next":
                return link.url
        return None


READ: Final[tuple[type[Resource], ...]] = (
    Patient,
    Condition,
    Observation,
    Procedure,
    ServiceRequest,
    MedicationRequest,
    DeviceRequest,
    OperationOutcome,
    Bundle,
)
# Every other resource type of FHIR R4 (4.0.1).
_R4_NAMES: Final = """
Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure CapabilityStatement
CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse
ClinicalImpression CodeSystem Communication CommunicationRequest CompartmentDefinition
Composition ConceptMap Consent Contract Coverage CoverageEligibilityRequest
CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric
DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference
EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest EnrollmentResponse
EpisodeOfCare EventDefinition Evidence EvidenceVariable ExampleScenario
ExplanationOfBenefit FamilyMemberHistory Flag Goal GraphDefinition Group GuidanceResponse
HealthcareService ImagingStudy Immunization ImmunizationEvaluation
ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice Library Linkage List
Location Measure MeasureReport Media Medication MedicationAdministration MedicationDispense
MedicationKnowledge MedicationStatement MedicinalProduct MedicinalProductAuthorization
MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient
MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged
MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition
MessageHeader MolecularSequence NamingSystem NutritionOrder ObservationDefinition
OperationDefinition Organization OrganizationAffiliation Parameters PaymentNotice
PaymentReconciliation Person PlanDefinition Practitioner PractitionerRole Provenance
Questionnaire QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition
ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment
RiskEvidenceSynthesis Schedule SearchParameter Slot Specimen SpecimenDefinition
StructureDefinition StructureMap Subscription Substance SubstanceNucleicAcid
SubstancePolymer SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial
SubstanceSpecification SupplyDelivery SupplyRequest Task TerminologyCapabilities TestReport
TestScript ValueSet VerificationResult VisionPrescription
"""
_R4_OTHERS: Final = _R4_NAMES.split()
_OTHERS: Final[tuple[type[Other], ...]] = tuple(
    cast("type[Other]", msgspec.defstruct(name, [], bases=(Other,), tag=name, gc=False))
    for name in _R4_OTHERS
)
# Each struct's resourceType.
RESOURCE_TYPE: Final[Mapping[type[Resource], str]] = {
    kind: str(kind.__struct_config__.tag) for kind in (*READ, *_OTHERS)
}
# The struct of each resourceType.
BY_TYPE: Final[Mapping[str, type[Resource]]] = {name: kind for kind, name in RESOURCE_TYPE.items()}

if TYPE_CHECKING:
    AnyResource: TypeAlias = Resource
else:
    # Every R4 type, told apart by "resourceType" (a tagged union: one dict lookup).
    AnyResource = reduce(or_, (*READ, *_OTHERS))


# -- the CDS Hooks request ----------------------------------------------------------------------

NonEmpty = Annotated[str, Meta(pattern=r"\S")]
# RFC 6750 allows less; anything printable without spaces can at least be sent in a header.
BearerToken = Annotated[str, Meta(pattern=r"^[\x21-\x7e]{1,8192}$")]


class Context(Struct, gc=False):
    userId: NonEmpty
    patientId: NonEmpty
    encounterId: NonEmpty | None = None
    draftOrders: AnyResource | None = None
    selections: list[str] | None = None


class FhirAuthorization(Struct, gc=False):
    access_token: BearerToken
    token_type: Literal["Bearer"] = "Bearer"


class Extension(Struct, gc=False):
    lang: str | None = msgspec.field(default=None, name="nkr-lang")


class _Envelope(Struct, gc=False):
    hook: NonEmpty
    hookInstance: NonEmpty
    context: Context
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    extension: Extension | None = None


class HookCall(_Envelope, gc=False):
    """A CDS Hooks 2.0 service request, as decoded (the envelope is checked by
    ``nkr.cdshooks._request``). ``prefetch`` maps each key the request carries to a resource,
    a Bundle, or None ("no data")."""

    prefetch: dict[str, AnyResource | None] | None = None


_CALL: Final = msgspec.json.Decoder(HookCall)
_RESOURCE: Final = msgspec.json.Decoder(AnyResource)
_OR_NULL: Final = msgspec.json.Decoder(AnyResource | None)


class _RawPrefetch(Struct):
    prefetch: dict[str, msgspec.Raw] | None = None


_RAW_PREFETCH: Final = msgspec.json.Decoder(_RawPrefetch)

# -- errors -------------------------------------------------------------------------------------

_AT = re.compile(r"^(?P<problem>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_GOT = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_NAMES: Final = {"str": "a string", "int": "an integer", "float": "a number", "null": "null"}


def _problem(text: str, path: str) -> tuple[str, str]:
    """msgspec's message as (location, problem), never quoting a value."""
    missing = _MISSING.match(text)
    if missing:
        return f"{path}.{missing['field']}", "required field is missing"
    got = _GOT.match(text)
    if got:
        expected = " or ".join(_NAMES.get(e, f"a JSON {e}") for e in got["expected"].split(" | "))
        return path, f"expected {expected}, got {_NAMES.get(got['got'], 'a JSON ' + got['got'])}"
    if text.startswith("Invalid value") and path.endswith(".resourceType"):
        return path, "not a FHIR R4 resource type"
    if text.startswith(("Invalid value", "Invalid enum value")):
        return path, "not one of the expected values"
    if "matching regex" in text:
        return (
            path,
            "expected a non-empty string" if text.endswith("S'") else "not in the expected form",
        )
    return path, text.split("'", 1)[0].rstrip() or "invalid value"


def validation_error(exc: msgspec.ValidationError, prefix: str = "$") -> InputError:
    """A msgspec validation error as an InputError located under ``prefix``."""
    m = _AT.match(str(exc))
    assert m is not None
    path = prefix + (m["path"] or "$")[1:]
    location, problem = _problem(m["problem"], path)
    return InputError(location, problem)


def _decode_error(exc: msgspec.DecodeError, where: str, what: str = "") -> InputError:
    # msgspec names the byte where the JSON breaks, never the text around it.
    reason = str(exc).removeprefix("JSON is ")
    return InputError(where, f"{what + ' is ' if what else ''}not valid JSON ({reason})")


@functools.cache
def _keyed(keys: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """A decoder of requests whose prefetch has exactly these keys as fields: one pass reads
    them and skips any other key unread (and names the key in an error's path)."""
    fields = [
        (f"k{i}", AnyResource | None | UnsetType, msgspec.field(default=UNSET, name=key))
        for i, key in enumerate(keys)
    ]
    prefetch = msgspec.defstruct("Prefetch", fields, gc=False)
    call = msgspec.defstruct(
        "KeyedCall", [("prefetch", prefetch | None, None)], bases=(_Envelope,), gc=False
    )
    return msgspec.json.Decoder(call)


def decode_call(body: bytes, keys: Iterable[str] | None = None) -> HookCall:
    """A CDS Hooks request body, typed; raises InputError naming the JSON path. With ``keys``
    (a service's prefetch keys), only those prefetch keys are read: any other key is left out
    unread, as a key no template names means nothing to the service."""
    try:
        # msgspec skips the fields it is not asked for without checking their UTF-8 (ASCII is
        # UTF-8, and is checked without copying the body).
        if not body.isascii():
            body.decode()
        if keys is not None:
            names = tuple(keys)
            return _from_keyed(_keyed(names).decode(body), names)
        return _CALL.decode(body)
    except msgspec.ValidationError as exc:
        if str(exc).endswith("`") and "- at `$.prefetch[...]" in str(exc):
            raise _prefetch_error(body) from None
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise _decode_error(exc, "$", "the request body") from None
    except UnicodeDecodeError:
        raise InputError("$", "the request body is not valid JSON (not UTF-8)") from None
    except RecursionError:
        raise InputError("$", "the request body is not valid JSON (nested too deeply)") from None


def _from_keyed(call: Any, keys: tuple[str, ...]) -> HookCall:
    prefetch: dict[str, Any] | None = None
    if call.prefetch is not None:
        given = call.prefetch
        prefetch = {}
        for i, key in enumerate(keys):
            value = getattr(given, f"k{i}")
            if value is not UNSET:
                prefetch[key] = value
    return HookCall(
        hook=call.hook,
        hookInstance=call.hookInstance,
        context=call.context,
        fhirServer=call.fhirServer,
        fhirAuthorization=call.fhirAuthorization,
        extension=call.extension,
        prefetch=prefetch,
    )


def _prefetch_error(body: bytes) -> InputError:
    """The error in a prefetch key, named: msgspec does not name a mapping's keys in its
    paths, so the keys are decoded one by one (only on this error's path)."""
    for key, raw in (_RAW_PREFETCH.decode(body).prefetch or {}).items():
        try:
            _OR_NULL.decode(raw)
        except msgspec.ValidationError as exc:
            # The key is the caller's own name (never patient data), shown shortened.
            return validation_error(exc, f"$.prefetch.{key[:64]}")
    return InputError("$.prefetch", "not a mapping of keys to FHIR resources")  # pragma: no cover


def decode_resource(data: bytes | memoryview | Mapping[str, Any], where: str = "$") -> Any:
    """One resource (JSON bytes, or already parsed), typed; InputError located at ``where``."""
    try:
        if isinstance(data, bytes | bytearray | memoryview):
            return _RESOURCE.decode(data)
        try:
            # Parsed JSON, encoded again and decoded: msgspec.convert into the tagged union of
            # resource types takes ~300 times as long (~0.4 ms a resource).
            return _RESOURCE.decode(orjson.dumps(data))
        except (TypeError, orjson.JSONEncodeError):
            return msgspec.convert(data, AnyResource)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, where) from None
    except msgspec.DecodeError as exc:
        raise _decode_error(exc, where) from None
    except RecursionError:
        raise InputError(where, "nested too deeply") from None


# -- the patient record (the data-provider seam) ------------------------------------------------

R = TypeVar("R", bound=Resource)


class PatientRecord:
    """One patient's FHIR data, typed: the Patient, every resource a guideline reads by type,
    and the draft orders of the call. Built by :func:`record_from_prefetch` (a CDS Hooks
    request, with fetched keys) or :func:`record_from_resources` (plain resources).

    A resource's JSON path (for an error's location) is found when asked for, by looking the
    resource up where it was read: the hot path builds no location it does not need."""

    __slots__ = ("_by_type", "_sources", "draft_orders", "patient")

    def __init__(
        self,
        patient: Patient | None,
        by_type: dict[type[Resource], list[Any]],
        draft_orders: Sequence[Resource],
        sources: Callable[[], Iterable[tuple[str, Any]]],
    ) -> None:
        self.patient = patient
        self.draft_orders = draft_orders
        self._by_type = by_type
        self._sources = sources

    def of(self, kind: type[R]) -> list[R]:
        """The resources of type ``kind``, in the order read."""
        found: list[R] = self._by_type.get(kind, _NONE)
        return found

    def types(self) -> frozenset[type[Resource]]:
        """The resource types the record holds (other than Patient)."""
        return frozenset(self._by_type)

    def path(self, resource: Resource) -> str:
        """The JSON path where ``resource`` was read (``$.prefetch.conditions.entry[0]
        .resource``)."""
        for at, value in self._sources():
            if value is resource:
                return at
            if type(value) is Bundle:
                for i, entry in enumerate(value.entry or ()):
                    if entry.resource is resource:
                        return f"{at}.entry[{i}].resource"
        raise LookupError("not a resource of this record")  # pragma: no cover - a bug

    def error(self, resource: Resource, field: str, problem: str) -> InputError:
        """An InputError at ``field`` of ``resource``."""
        return InputError(f"{self.path(resource)}.{field}", problem)


_NONE: Final[list[Any]] = []
_SKIPPED: Final[frozenset[type[Resource] | type[None]]] = frozenset(
    {Other, OperationOutcome, Bundle, type(None), *_OTHERS}
)


def _group(
    values: Iterable[Any], by_type: dict[type[Resource], list[Any]], patient: list[Patient]
) -> None:
    """Each resource by its type; a Bundle's entries (one level: a Bundle in a Bundle is
    skipped), the Patients apart, the types no guideline reads left out."""
    get = by_type.get
    for value in values:
        if type(value) is not Bundle:
            kind: Any = type(value)
            if kind is Patient:
                patient.append(value)
            elif kind not in _SKIPPED:
                by_type.setdefault(kind, []).append(value)
            continue
        for entry in value.entry or ():
            resource = entry.resource
            kind = type(resource)
            found = get(kind)
            if found is not None:
                found.append(resource)
            elif kind is Patient:
                patient.append(resource)  # type: ignore[arg-type]
            elif kind not in _SKIPPED:
                by_type[kind] = [resource]


def record_from_prefetch(
    prefetch: Mapping[str, Any],
    draft_orders: Sequence[Resource] = (),
    *,
    drafts: Bundle | None = None,
) -> PatientRecord:
    """The record of a request's prefetch (with any fetched keys): each key's resource, or
    its Bundle's entries, located under ``$.prefetch.<key>``; the draft orders are entries of
    ``drafts`` (``$.context.draftOrders``)."""
    by_type: dict[type[Resource], list[Any]] = {}
    patient: list[Patient] = []
    _group([v for v in prefetch.values() if v is not None], by_type, patient)

    def sources() -> Iterable[tuple[str, Any]]:
        yield from ((f"$.prefetch.{key}", value) for key, value in prefetch.items())
        yield "$.context.draftOrders", drafts

    return PatientRecord(patient[0] if patient else None, by_type, draft_orders, sources)


def record_from_resources(
    resources: Iterable[bytes | Mapping[str, Any] | Resource],
    *,
    where: str = "$",
    draft_orders: Iterable[bytes | Mapping[str, Any] | Resource] = (),
    locations: Sequence[str] | None = None,
    draft_locations: Sequence[str] | None = None,
) -> PatientRecord:
    """The record of plain resources (JSON bytes such as bulk NDJSON lines, parsed JSON, or
    structs), the ``i``-th located at ``<where>[i]`` (a Bundle's entries under it), and of
    draft orders (at ``$.draftOrders[i]``); or each where ``locations`` and
    ``draft_locations`` say (a Parameters' Bundle entries, for ``$apply``)."""
    located: list[tuple[str, Any]] = []
    for i, raw in enumerate(resources):
        at = f"{where}[{i}]" if locations is None else locations[i]
        located.append((at, raw if isinstance(raw, Resource) else decode_resource(raw, at)))
    drafts: list[Resource] = []
    for i, raw in enumerate(draft_orders):
        at = f"$.draftOrders[{i}]" if draft_locations is None else draft_locations[i]
        drafts.append(raw if isinstance(raw, Resource) else decode_resource(raw, at))
        located.append((at, drafts[-1]))
    by_type: dict[type[Resource], list[Any]] = {}
    patient: list[Patient] = []
    _group([r for _, r in located[: len(located) - len(drafts)]], by_type, patient)
    return PatientRecord(patient[0] if patient else None, by_type, drafts, lambda: located)


def record_from_lines(
    lines: Sequence[bytes | memoryview],
) -> tuple[PatientRecord, list[tuple[int, InputError]]]:
    """The record of one patient's lines of a bulk export (NDJSON, a resource a line), and
    each line that does not decode as a FHIR R4 resource, by its index, with its error (it is
    left out of the record). The resource of line ``i`` is located at ``$[i]``; locations are
    built only when asked for (this runs once for every patient of an export)."""
    resources: list[Any] = []
    index: list[int] = []
    errors: list[tuple[int, InputError]] = []
    decode = _RESOURCE.decode
    for i, line in enumerate(lines):
        try:
            resources.append(decode(line))
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            try:
                decode_resource(line)
            except InputError as exc:
                errors.append((i, exc))
            continue
        index.append(i)
    if not errors:
        return record_from_decoded(resources), errors
    by_type: dict[type[Resource], list[Any]] = {}
    patient: list[Patient] = []
    _group(resources, by_type, patient)

    def sources() -> Iterable[tuple[str, Any]]:
        return ((f"$[{i}]", r) for i, r in zip(index, resources, strict=True))

    return PatientRecord(patient[0] if patient else None, by_type, (), sources), errors


def record_from_decoded(resources: Sequence[Any]) -> PatientRecord:
    """The record of one patient's lines of a bulk export already decoded (by this module's
    decoder of resources, as :func:`record_from_lines` does, e.g. a batch of lines at once):
    the resource ``i`` is located at ``$[i]``."""
    by_type: dict[type[Resource], list[Any]] = {}
    patient: list[Patient] = []
    _group(resources, by_type, patient)

    def sources() -> Iterable[tuple[str, Any]]:
        return ((f"$[{i}]", r) for i, r in enumerate(resources))

    return PatientRecord(patient[0] if patient else None, by_type, (), sources)


def decode_lines(data: bytes | memoryview) -> list[Any]:
    """Newline-delimited resources (NDJSON) decoded at once, typed; raises
    ``msgspec.ValidationError`` or ``msgspec.DecodeError`` when a line does not decode (then
    :func:`record_from_lines` tells which, line by line)."""
    return _RESOURCE.decode_lines(data)


# -- codes --------------------------------------------------------------------------------------


def codings(concept: CodeableConcept | None) -> list[tuple[str, str]]:
    """The (system, code) pairs of a CodeableConcept (codings without both are left out)."""
    if concept is None or not concept.coding:
        return []
    return [
        (c.system, c.code) for c in concept.coding if type(c.system) is str and c.code is not None
    ]


def status_codes(concept: CodeableConcept | None, system: str) -> frozenset[str]:
    """The codes of a status CodeableConcept in its standard ``system``, or with no system."""
    if concept is None or not concept.coding:
        return frozenset()
    return frozenset(
        c.code
        for c in concept.coding
        if c.code is not None and (c.system is UNSET or c.system == system)
    )


_SYSTEM_LABELS: Final[Mapping[str, str]] = {
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "urn:oid:1.2.208.176.2.4": "SKS",
    "urn:oid:1.2.208.176.2.4.12": "SKS",
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
}


def coding_label(system: str, code: str) -> str:
    """A code as people write it: ``ICD-10 A00.0`` (an unknown system by its URI)."""
    return f"{_SYSTEM_LABELS.get(system, system)} {code}"


# -- dates --------------------------------------------------------------------------------------

# ASCII digits only, as FHIR's own regexes for date and dateTime: without re.ASCII, ``\d``
# matches every Unicode decimal digit and ``int`` reads them, so "١٩٧٩-03-14" (Arabic-Indic) or
# "２０２０-03-14" (full-width) would pass as dates.
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)
# The forms EHRs send nearly always (a whole date, or a date-time to the second with an offset
# the general parser accepts): these ``datetime.fromisoformat`` reads, in C, exactly as the
# general parser would; for anything else it is not asked.
_QUICK = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)?)?",
    re.ASCII,
)


# Where a value is: its JSON path, or the record, the resource and the field (the path is
# found only when an error needs it: the hot path builds no location).
Where = str | tuple[PatientRecord, Resource, str]


def _where(path: Where) -> str:
    if isinstance(path, str):
        return path
    record, resource, field = path
    return f"{record.path(resource)}.{field}"


class PartialDate(msgspec.Struct, frozen=True, gc=False):
    """A FHIR ``date``: its first and last possible day, and whether it gives the day."""

    first: dt.date
    last: dt.date
    precision: Literal["year", "month", "day"]


def read_date(value: str, path: Where) -> PartialDate:
    """A FHIR ``date`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``); InputError at ``path``."""
    m = _DATE.fullmatch(value)
    if m is None:
        raise InputError(_where(path), "not a FHIR date (expected YYYY, YYYY-MM or YYYY-MM-DD)")
    year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
    try:
        first = dt.date(year, month, day)
    except ValueError:
        raise InputError(_where(path), "impossible date") from None
    if m[3] is not None:
        return PartialDate(first, first, "day")
    last_month = 12 if m[2] is None else month
    last = dt.date(year, last_month, calendar.monthrange(year, last_month)[1])
    return PartialDate(first, last, "year" if m[2] is None else "month")


def read_datetime(value: str, path: Where) -> dt.datetime:
    """A FHIR ``date`` or ``dateTime`` as an instant for ordering: a partial date counts from
    its first day, no offset means UTC, fractions of a second are dropped (its ``date()`` is
    the first day as written). InputError at ``path``."""
    if _QUICK.fullmatch(value) is not None:
        try:
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            pass  # an impossible date: the general parser says so
        else:
            if instant.tzinfo is None or instant.microsecond:
                instant = instant.replace(microsecond=0, tzinfo=instant.tzinfo or dt.UTC)
            return instant
    m = _DATETIME.fullmatch(value)
    if m is None:
        raise InputError(
            _where(path), "not a FHIR dateTime (expected YYYY, YYYY-MM, YYYY-MM-DD or a date-time)"
        )
    year, month, day, hour, minute, second, zone = m.groups()
    try:
        date = dt.date(int(year), int(month or 1), int(day or 1))
        tz = dt.UTC
        if zone and zone != "Z":
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 14 or minutes > 59:
                raise ValueError("time zone out of range")
            sign = -1 if zone[0] == "-" else 1
            tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        return dt.datetime(
            date.year,
            date.month,
            date.day,
            int(hour or 0),
            int(minute or 0),
            min(int(second or 0), 59),  # a leap second orders like the second before it
            tzinfo=tz,
        )
    except ValueError:
        raise InputError(_where(path), "impossible date or time") from None


def first_day(value: str, path: Where) -> dt.date:
    """The first day of a FHIR ``date`` or ``dateTime``, as written."""
    if len(value) == 10 and _QUICK.fullmatch(value) is not None:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    return read_datetime(value, path).date()


# -- what a record held on a day ----------------------------------------------------------------


def _condition_date(c: Condition) -> tuple[str | None, str]:
    if c.onsetDateTime is not None:
        return c.onsetDateTime, "onsetDateTime"
    if c.onsetPeriod is not None and c.onsetPeriod.start is not None:
        return c.onsetPeriod.start, "onsetPeriod.start"
    return c.recordedDate, "recordedDate"


def _observation_date(o: Observation) -> tuple[str | None, str]:
    if o.effectiveDateTime is not None:
        return o.effectiveDateTime, "effectiveDateTime"
    if o.effectiveInstant is not None:
        return o.effectiveInstant, "effectiveInstant"
    period = o.effectivePeriod
    if period is not None and period.end is not None:
        return period.end, "effectivePeriod.end"
    if period is not None and period.start is not None:
        return period.start, "effectivePeriod.start"
    return o.issued, "issued"


def _procedure_date(p: Procedure) -> tuple[str | None, str]:
    if p.performedDateTime is not None:
        return p.performedDateTime, "performedDateTime"
    if p.performedPeriod is not None:
        return p.performedPeriod.start, "performedPeriod.start"
    return None, ""


def _request_date(r: ServiceRequest) -> tuple[str | None, str]:
    if r.authoredOn is not None:
        return r.authoredOn, "authoredOn"
    return r.occurrenceDateTime, "occurrenceDateTime"


# The field that dates each resource type (a period: its end when the period is an
# observation's, as the pain score is ordered by it; a procedure's: its start).
_DATED_BY: Final[Mapping[type[Resource], Callable[[Any], tuple[str | None, str]]]] = {
    Condition: _condition_date,
    Observation: _observation_date,
    Procedure: _procedure_date,
    ServiceRequest: _request_date,
}

# The field that dates each resource type when it is there (the first that _DATED_BY looks at).
_FIRST_FIELD: Final[Mapping[type[Resource], Callable[[Any], str | None]]] = {
    Condition: operator.attrgetter("onsetDateTime"),
    Observation: operator.attrgetter("effectiveDateTime"),
    Procedure: operator.attrgetter("performedDateTime"),
    ServiceRequest: operator.attrgetter("authoredOn"),
}


def resource_day(record: PatientRecord, resource: Resource) -> dt.date | None:
    """The day a resource is dated by, as written (the date part: the clinic's day), or
    None when it is undated or of a type that is not dated here. A Condition by its onset
    (``onsetDateTime``, else ``onsetPeriod.start``), else ``recordedDate``; an Observation by
    ``effective[x]``, else ``issued``; a Procedure by ``performedDateTime``, else
    ``performedPeriod.start``; a ServiceRequest by ``authoredOn``, else
    ``occurrenceDateTime``. InputError at the field when the date is not a FHIR date."""
    dated = _DATED_BY.get(type(resource))
    if dated is None:
        return None
    value, field = dated(resource)
    if value is None:
        return None
    if len(value) >= 10 and _QUICK.fullmatch(value) is not None:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass  # an impossible date: first_day says where
    return first_day(value, (record, resource, field))


def known_on(record: PatientRecord, on: dt.date) -> PatientRecord:
    """The record as it stood on ``on``: each resource dated on or before that day (by
    :func:`resource_day`), and every undated one. Locations stay those of ``record``; when
    no resource is dated after ``on``, ``record`` itself (its lists are not copied)."""
    by_type: dict[type[Resource], list[Any]] | None = None
    quick = _QUICK.fullmatch
    from_iso = dt.date.fromisoformat
    for kind, resources in record._by_type.items():
        dated = _DATED_BY.get(kind)
        if dated is None:
            continue
        first = _FIRST_FIELD[kind]
        kept: list[Any] | None = None
        for i, resource in enumerate(resources):
            # resource_day's reading, inline (it runs for every dated resource of an export).
            value = first(resource)
            if value is None:
                value = dated(resource)[0]
            if value is None:
                day = None
            elif len(value) >= 10 and quick(value) is not None:
                try:
                    day = from_iso(value[:10])
                except ValueError:
                    day = resource_day(record, resource)  # an impossible date: raises
            else:
                day = resource_day(record, resource)
            if day is not None and day > on:
                if kept is None:
                    kept = resources[:i]
            elif kept is not None:
                kept.append(resource)
        if kept is not None:
            if by_type is None:
                by_type = dict(record._by_type)
            if kept:
                by_type[kind] = kept
            else:
                del by_type[kind]
    if by_type is None:
        return record
    return PatientRecord(record.patient, by_type, record.draft_orders, record._sources)
