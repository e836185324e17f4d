"""The quick reading: a request's prefetch decoded straight into typed structs.

Nearly every request an EHR sends is well-formed, and most of its resources are plainly
unrelated to the guideline (a patient's blood pressures and weights). msgspec decodes the
request body into the structs below in one pass, in C: it checks the JSON type of every field
the mapping reads, and skips every other field without building it. The mapping then reads the
structs with the same rules as the full reading (:mod:`nkr.fhir._mapping`, whose shared
pieces it calls).

The quick reading answers only where the full reading would answer the same. Anything else -
a body msgspec cannot decode into these types (malformed JSON, a field of the wrong type, a
resource type the structs do not know), or a value only the full reading judges (an uncommon
date form, a score out of range, an onset after the assessment date) - makes the caller read
the request again in full: :func:`decode_request` returns None, or :func:`case_from_typed`
raises :class:`~nkr.fhir._mapping.NeedsFullReading`. The full reading then answers, or names
the resource and field in its error. Tests compare the two readings over generated requests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
import orjson
from msgspec import UNSET, Struct, UnsetType

from nkr.fhir._mapping import (
    CLINICAL_SYSTEM,
    OBSERVATION_DONE,
    PAIN_INTENSITY,
    VERIFICATION_SYSTEM,
    Conditions,
    Diagnosis,
    FhirCase,
    NeedsFullReading,
    Pain,
    Resource,
    Treatments,
    age_from_birth_date,
    assemble,
    classify,
    coded_label,
    current_status,
    quick_datetime,
    quick_day,
    read_draft_orders,
)
from nkr.fhir._valuesets import ValueSets

# -- the structs: only the fields the mapping reads ---------------------------------------------
# gc=False: decoded JSON is a tree, never a reference cycle, so the structs need not be tracked
# by the garbage collector (which makes decoding cheaper).


class Coding(Struct, gc=False):
    # UNSET when the Coding has no "system" at all (which a status code may leave out).
    system: str | UnsetType | None = UNSET
    code: str | None = None


class Concept(Struct, gc=False):
    coding: list[Coding] | None = None


class Period(Struct, gc=False):
    start: str | None = None
    end: str | None = None


class Quantity(Struct, gc=False):
    value: int | float | None = None


class _Resource(Struct, tag_field="resourceType", gc=False):
    id: str | None = None


class Condition(_Resource, tag="Condition"):
    clinicalStatus: Concept | None = None
    verificationStatus: Concept | None = None
    code: Concept | None = None
    # UNSET when absent: a null onsetDateTime is an error for the full reading to name.
    onsetDateTime: str | UnsetType | None = UNSET
    onsetPeriod: Period | None = None
    recordedDate: str | None = None


class Observation(_Resource, tag="Observation"):
    status: str | None = None
    code: Concept | None = None
    valueQuantity: Quantity | UnsetType | None = UNSET
    valueInteger: int | float | None = None
    effectiveDateTime: str | None = None
    effectiveInstant: str | None = None
    effectivePeriod: Period | None = None
    issued: str | None = None


class Procedure(_Resource, tag="Procedure"):
    status: str | None = None
    code: Concept | None = None


class ServiceRequest(_Resource, tag="ServiceRequest"):
    status: str | None = None
    code: Concept | None = None


class OperationOutcome(_Resource, tag="OperationOutcome"):
    """A search's warning in a searchset Bundle: skipped, as the full reading skips it."""


class Entry(Struct, gc=False):
    resource: Condition | Observation | Procedure | ServiceRequest | OperationOutcome | None = None


class Bundle(Struct, gc=False):
    resourceType: Literal["Bundle"]
    entry: list[Entry] | None = None


class Patient(Struct, gc=False):
    resourceType: Literal["Patient"]
    id: str | None = None
    birthDate: str | None = None


_ABSENT: Final = msgspec.Raw()


class Prefetch(Struct, gc=False):
    """The prefetch keys; UNSET for a key the request leaves out, None for "no data"."""

    patient: Patient | UnsetType | None = UNSET
    conditions: Bundle | UnsetType | None = UNSET
    observations: Bundle | UnsetType | None = UNSET
    procedures: Bundle | UnsetType | None = UNSET
    serviceRequests: Bundle | UnsetType | None = UNSET

    def complete(self) -> bool:
        return UNSET not in (
            self.patient,
            self.conditions,
            self.observations,
            self.procedures,
            self.serviceRequests,
        )

    def by_key(self) -> dict[str, object]:
        return {
            "patient": self.patient,
            "conditions": self.conditions,
            "observations": self.observations,
            "procedures": self.procedures,
            "serviceRequests": self.serviceRequests,
        }


class Request(Struct, gc=False):
    """A CDS Hooks request: the prefetch typed; every other field kept as raw JSON and read by
    orjson, exactly as the full reading reads it (a Raw of length 0: the field is absent)."""

    hook: msgspec.Raw = _ABSENT
    hookInstance: msgspec.Raw = _ABSENT
    context: msgspec.Raw = _ABSENT
    prefetch: Prefetch | UnsetType | None = UNSET
    fhirServer: msgspec.Raw = _ABSENT
    fhirAuthorization: msgspec.Raw = _ABSENT
    extension: msgspec.Raw = _ABSENT

    def envelope(self) -> dict[str, Any]:
        """The request's fields other than the prefetch, as the full reading's JSON has them."""
        fields: dict[str, Any] = {}
        for name, raw in (
            ("hook", self.hook),
            ("hookInstance", self.hookInstance),
            ("context", self.context),
            ("fhirServer", self.fhirServer),
            ("fhirAuthorization", self.fhirAuthorization),
            ("extension", self.extension),
        ):
            if raw:
                fields[name] = orjson.loads(memoryview(raw))
        return fields


@dataclass(frozen=True, slots=True)
class Decoded:
    """A request the quick reading can read: its fields other than the prefetch (plain JSON
    values), and the prefetch, every key present."""

    envelope: dict[str, Any]
    prefetch: Prefetch


_DECODER: Final = msgspec.json.Decoder(Request)
_NO_IDS: Final[frozenset[str]] = frozenset()


def decode_request(body: bytes) -> Decoded | None:
    """The request, typed; None when only the full reading can read it."""
    try:
        # msgspec skips the fields it is not asked for without checking their UTF-8, and the
        # full reading's parser rejects invalid UTF-8 anywhere: checked here the same way.
        body.decode()
        request = _DECODER.decode(body)
        envelope = request.envelope()
    except (msgspec.DecodeError, ValueError, RecursionError):
        # Malformed JSON, invalid UTF-8 (UnicodeDecodeError), what orjson refuses in the
        # envelope (JSONDecodeError), or nesting deeper than msgspec follows.
        return None
    if isinstance(request.prefetch, Prefetch) and request.prefetch.complete():
        return Decoded(envelope, request.prefetch)
    return None  # no prefetch, or keys to fetch: the full reading fetches them


# -- the mapping over the structs ---------------------------------------------------------------


def _pairs(concept: Concept | None) -> list[tuple[str, str]]:
    """The (system, code) pairs of a CodeableConcept, as ``_Res.codings`` gives them."""
    if concept is None or not concept.coding:
        return []
    return [
        (c.system, c.code) for c in concept.coding if type(c.system) is str and c.code is not None
    ]


def _status_codes(concept: Concept | None, system: str) -> frozenset[str]:
    """As ``_Res.status_codes``: the codes in the standard system, or with no system."""
    if concept is None or not concept.coding:
        return frozenset()
    return frozenset(
        c.code
        for c in concept.coding
        if c.code is not None and (c.system is UNSET or c.system == system)
    )


def _entries(bundle: Bundle | UnsetType | None) -> list[Entry]:
    """A Bundle's entries (each one's ``resource`` may be None: then it is skipped)."""
    if not isinstance(bundle, Bundle) or not bundle.entry:
        return []
    return bundle.entry


def _day(value: str | None) -> dt.date:
    day = None if value is None else quick_day(value)
    if day is None:
        raise NeedsFullReading
    return day


def _diagnosis(condition: Condition, pairs: list[tuple[str, str]]) -> Diagnosis | None:
    """As the full reading: the onset from onsetDateTime, onsetPeriod.start, or else the
    recordedDate."""
    if condition.onsetDateTime is not UNSET:
        onset = _day(condition.onsetDateTime)
        return Diagnosis(onset, False, coded_label(pairs), None, "onsetDateTime")
    period = condition.onsetPeriod
    if period is not None and period.start is not None:
        return Diagnosis(_day(period.start), False, coded_label(pairs), None, "onsetPeriod.start")
    if condition.recordedDate is not None:
        recorded = _day(condition.recordedDate)
        return Diagnosis(recorded, True, coded_label(pairs), None, "recordedDate")
    return None


def _conditions(prefetch: Prefetch, vs: ValueSets) -> Conditions:
    found = Conditions([], False, {})
    index = vs.index
    for entry in _entries(prefetch.conditions):
        condition = entry.resource
        if type(condition) is not Condition:
            continue
        radiculopathy, red = classify(_pairs(condition.code), index)
        if not (radiculopathy or red):
            continue
        clinical = _status_codes(condition.clinicalStatus, CLINICAL_SYSTEM)
        verification = _status_codes(condition.verificationStatus, VERIFICATION_SYSTEM)
        if current_status(clinical, verification):
            found.add(radiculopathy, red, vs, lambda pairs: _diagnosis(condition, pairs))  # noqa: B023 - called at once
    return found


def _latest_pain(prefetch: Prefetch, vs: ValueSets) -> Pain | None:
    """As the full reading, for scores dated by ``effectiveDateTime`` (any other dating is
    left to it)."""
    latest: Pain | None = None
    index = vs.index
    for entry in _entries(prefetch.observations):
        observation = entry.resource
        if type(observation) is not Observation:
            continue
        code = observation.code
        if code is None or not code.coding:
            continue
        for coding in code.coding:
            # A system left out (UNSET) or a code of null is in no value set.
            ids = index.get((coding.system, coding.code))  # type: ignore[arg-type]
            if ids and PAIN_INTENSITY in ids:
                break
        else:
            continue  # not a pain score
        if observation.status not in OBSERVATION_DONE:
            continue
        quantity = observation.valueQuantity
        if quantity is UNSET:
            score = observation.valueInteger
        elif quantity is None:
            raise NeedsFullReading
        else:
            score = quantity.value
        if score is None:
            continue
        if not 0 <= score <= 10 or observation.effectiveInstant is not None:
            raise NeedsFullReading
        when = observation.effectiveDateTime
        instant = None if when is None else quick_datetime(when)
        if instant is None:
            raise NeedsFullReading
        # Ordered as Pain orders: the latest wins, and on a tie the higher score.
        value = float(score)
        if (
            latest is None
            or instant > latest.instant
            or (instant == latest.instant and value > latest.score)
        ):
            latest = Pain(instant, value)
    return latest


def _treatments(prefetch: Prefetch, vs: ValueSets) -> Treatments:
    found = Treatments(set(), "none")
    index = vs.index
    for rtype, kind, bundle in (
        ("Procedure", Procedure, prefetch.procedures),
        ("ServiceRequest", ServiceRequest, prefetch.serviceRequests),
    ):
        for entry in _entries(bundle):
            resource = entry.resource
            if type(resource) is not kind or resource.code is None or not resource.code.coding:
                continue
            matched = _NO_IDS
            for coding in resource.code.coding:
                ids = index.get((coding.system, coding.code))  # type: ignore[arg-type]
                if ids:
                    matched = matched | ids if matched else ids
            if matched:
                found.add(rtype, resource.status, matched)
    return found


def case_from_typed(
    prefetch: Prefetch,
    *,
    draft_orders: list[Resource],
    on: dt.date,
    pain_threshold: int,
    valuesets: ValueSets,
) -> FhirCase:
    """:func:`~nkr.fhir.case_from_fhir` over the quick reading's structs (the draft orders
    are plain JSON, read by the full reading). Raises
    :class:`~nkr.fhir._mapping.NeedsFullReading` where only the full reading can answer."""
    patient = prefetch.patient
    birth_date = patient.birthDate if isinstance(patient, Patient) else None
    return assemble(
        orders=read_draft_orders(draft_orders, valuesets),
        conditions=_conditions(prefetch, valuesets),
        age=lambda notes: age_from_birth_date(birth_date, on, notes, None),
        latest_pain=lambda: _latest_pain(prefetch, valuesets),
        treatments=lambda: _treatments(prefetch, valuesets),
        on=on,
        pain_threshold=pain_threshold,
    )
