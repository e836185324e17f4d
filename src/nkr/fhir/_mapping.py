"""FHIR R4 resources (prefetch and draft orders) to the engine's patient case.

Pure: no I/O and no clock; the same resources, date and value sets always give the same case.
Parsing is light (plain dicts, checked only where the mapping reads them) because this runs on
every CDS Hooks request; full FHIR validation would cost more than the whole request may. This
module is the full reading: the reference, and the one that names every error. The CDS Hooks
service first tries the quick reading (:mod:`nkr.fhir._typed`: the request decoded straight
into typed structs), which shares this module's rules (``assemble``, ``classify``,
``current_status``, ``Treatments``, ``age_from_birth_date``) and leaves anything odd to it.

How the data is read, and why (each choice that a clinician should know about becomes a note):

- Age: from ``Patient.birthDate``. A partial date (``YYYY`` or ``YYYY-MM``) gives the lowest
  age the patient can have on the assessment date, so a possible minor is never assessed as
  an adult. No birth date (or no Patient) means no assessment.
- Lumbar radiculopathy: a Condition whose code is in ``lumbar-radiculopathy``, with
  ``clinicalStatus`` active, recurrence or relapse (or absent), and ``verificationStatus``
  neither refuted nor entered-in-error (provisional and differential diagnoses count: the
  guideline covers suspected root involvement too).
- Onset: ``onsetDateTime`` or ``onsetPeriod.start`` (a partial date counts from its first day),
  else ``recordedDate`` with a note. With several such Conditions the earliest onset is used:
  re-coding an episode (say M54.1 after an MRI shows M51.1) must not restart the 12 weeks,
  and an earlier start never delays a due spine-surgeon assessment.
- Signs: the case needs a sign of root involvement, and FHIR data rarely records signs one by
  one. The coded diagnosis is taken to mean radicular leg pain: an explicit assumption, shown
  as a note every time.
- Red flags: Conditions in ``red-flags`` (same status rules), each code mapped to the case's
  red flag by the value set.
- Severe, disabling pain: the latest Observation in ``pain-intensity`` (status final, amended or
  corrected; ``valueQuantity.value`` or ``valueInteger`` from 0 to 10; dated by
  ``effective[x]`` or else ``issued``; undated scores are ignored; on a tie the higher score
  wins) at or above ``pain_threshold``. The threshold is the software's assumption; the note
  says so.
- Non-surgical treatment tried: Procedures that are completed or in progress, and
  ServiceRequests that are completed, in the exercise and mobilisation value sets; acupuncture
  and glucocorticoid injection count as "other". Bed rest and MRI are not treatment tried.
- Spine-surgeon assessment: a completed Procedure in ``spine-surgeon-referral`` means done; an
  in-progress Procedure or an active or completed ServiceRequest there means referred.
- Planned interventions: every draft order (ServiceRequest, Procedure, MedicationRequest,
  DeviceRequest) whose code is in an intervention value set, kept with its resource id.

Wrong shapes raise :class:`~nkr.InputError` naming the resource and the field; unknown codes
simply do not match. Error messages never quote patient values.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from nkr._errors import InputError, describe_validation_error
from nkr._guideline import Lang, Localized
from nkr._i18n import load_messages
from nkr.fhir._valuesets import ValueSets, shipped_valuesets
from nkr.guidelines.lumbar_radiculopathy import guideline
from nkr.guidelines.lumbar_radiculopathy.case import (
    Case,
    Planned,
    RedFlag,
    SurgeonAssessment,
    Treatment,
)

Resource = dict[str, Any]

_NOTES_FILE: Final = (
    Path(__file__).parents[1] / "guidelines" / "lumbar_radiculopathy" / "fhir_notes.toml"
)

RADICULOPATHY: Final = "lumbar-radiculopathy"
RED_FLAGS: Final = "red-flags"
PAIN_INTENSITY: Final = "pain-intensity"
SPINE_SURGEON: Final = "spine-surgeon-referral"

# Value set -> the case's planned intervention, for draft orders.
PLANNED_BY_VALUESET: Final[Mapping[str, Planned]] = {
    "mri-lumbar-spine": "mri",
    "glucocorticoid-injection": "glucocorticoid_injection",
    "acupuncture": "acupuncture",
    "bed-rest": "bed_rest",
    "supervised-exercise": "supervised_exercise",
    "specific-exercise": "specific_exercise",
    "manual-mobilisation": "manual_mobilisation",
    SPINE_SURGEON: "spine_surgeon_referral",
}
# Value set -> the case's non-surgical treatment, for Procedures and ServiceRequests done.
TREATMENT_BY_VALUESET: Final[Mapping[str, Treatment]] = {
    "supervised-exercise": "supervised_exercise",
    "specific-exercise": "specific_exercise",
    "manual-mobilisation": "manual_mobilisation",
    "acupuncture": "other",
    "glucocorticoid-injection": "other",
}

CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_ACTIVE = frozenset({"active", "recurrence", "relapse"})
_NOT_TRUE = frozenset({"refuted", "entered-in-error"})
OBSERVATION_DONE = frozenset({"final", "amended", "corrected"})
_PROCEDURE_DONE = frozenset({"completed", "in-progress"})
_REFERRAL_ACTIVE = frozenset({"active", "completed"})
# Where each draft-order type keeps the code of what is ordered.
_ORDER_CODE_FIELD: Final[Mapping[str, str]] = {
    "ServiceRequest": "code",
    "Procedure": "code",
    "MedicationRequest": "medicationCodeableConcept",
    "DeviceRequest": "codeCodeableConcept",
}
_SYSTEM_LABELS: Final[Mapping[str, str]] = {
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "urn:oid:1.2.208.176.2.4": "SKS",
    "urn:oid:1.2.208.176.2.4.12": "SKS",
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
}

# The case's upper bound on age.
_MAX_AGE: Final = 130
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
_QUICK_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)?)?",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class DraftOrder:
    """A draft order that maps to a planned intervention of the case."""

    intervention: Planned
    resource_type: str
    resource_id: str | None
    resource: Resource


@dataclass(frozen=True, slots=True)
class FhirCase:
    # None when the patient has no active, not refuted lumbar radiculopathy Condition, or when
    # the case cannot be built from the data (no birth date, no onset date: a note says why).
    case: Case | None
    # What the card should tell the clinician about how the data was read, in both languages
    # (e.g. "onset taken from recordedDate"; "severe pain from NRS 8 on 2026-11-20, threshold 7,
    # an assumption").
    notes: tuple[Note, ...]
    draft_orders: tuple[DraftOrder, ...]


@cache
def _note_texts() -> dict[str, Localized]:
    return load_messages(_NOTES_FILE)


class Note:
    """A note on how the data was read, formatted in a language when asked for (a card
    needs one language; the texts are in ``fhir_notes.toml``)."""

    __slots__ = ("key", "params", "per_lang")

    def __init__(self, key: str, params: dict[str, object], *, per_lang: bool = False) -> None:
        self.key = key
        # Values are the same in every language, or (with per_lang) some are Localized texts.
        self.params = params
        self.per_lang = per_lang

    def __call__(self, lang: Lang) -> str:
        params = self.params
        if self.per_lang:
            params = {
                name: value(lang) if isinstance(value, Localized) else value
                for name, value in params.items()
            }
        return _note_texts()[self.key](lang).format_map(params)

    @property
    def da(self) -> str:
        return self("da")

    @property
    def en(self) -> str:
        return self("en")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Note):
            return NotImplemented
        return (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Note({self.key!r}, {self.params!r})"


def _note(key: str, **params: object) -> Note:
    return Note(key, params)


class _Res:
    """A resource being read, and how to name it in an error message."""

    __slots__ = ("data", "id", "type", "where")

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a FHIR resource (JSON object)")
        rtype = data.get("resourceType")
        if not isinstance(rtype, str) or not rtype:
            raise InputError(f"{where}.resourceType: required, a string")
        rid = data.get("id")
        if rid is not None and not isinstance(rid, str):
            raise InputError(f"{rtype} ({where}).id: expected a string")
        self.data: Resource = data
        self.type: str = rtype
        self.id: str | None = rid
        self.where = where

    @property
    def label(self) -> str:
        rid, where = self.id, self.where
        return f"{self.type}/{rid} ({where})" if rid else f"{self.type} ({where}, no id)"

    def error(self, path: str, problem: str) -> InputError:
        return InputError(f"{self.label}: {path}: {problem}")

    def string(self, path: str) -> str | None:
        value = self.data.get(path)
        if value is not None and not isinstance(value, str):
            raise self.error(path, "expected a string")
        return value

    def codings(self, path: str, value: object) -> list[tuple[str, str]]:
        """The (system, code) pairs of a CodeableConcept, checking its shape."""
        if value is None:
            return []
        if not isinstance(value, dict):
            raise self.error(path, "expected a CodeableConcept (JSON object)")
        codings = value.get("coding")
        if codings is None:
            return []
        if not isinstance(codings, list):
            raise self.error(f"{path}.coding", "expected a list of Codings")
        pairs: list[tuple[str, str]] = []
        for j, coding in enumerate(codings):
            if not isinstance(coding, dict):
                raise self.error(f"{path}.coding[{j}]", "expected a Coding (JSON object)")
            system, code = coding.get("system"), coding.get("code")
            if system is not None and not isinstance(system, str):
                raise self.error(f"{path}.coding[{j}].system", "expected a string")
            if code is not None and not isinstance(code, str):
                raise self.error(f"{path}.coding[{j}].code", "expected a string")
            if system is not None and code is not None:
                pairs.append((system, code))
        return pairs

    def status_codes(self, field: str, system: str) -> frozenset[str]:
        """Codes of a status CodeableConcept in its standard system (or with no system)."""
        value = self.data.get(field)
        if value is None:
            return frozenset()
        codings = value.get("coding") if type(value) is dict else value
        if codings is None:
            return frozenset()
        if type(codings) is list and type(value) is dict:  # the common shape, read in one pass
            codes: list[str] = []
            for coding in codings:
                if type(coding) is not dict:
                    break
                coded_system, code = coding.get("system"), coding.get("code")
                if (coded_system is not None and type(coded_system) is not str) or (
                    code is not None and type(code) is not str
                ):
                    break
                if code is not None and ("system" not in coding or coded_system == system):
                    codes.append(code)
            else:
                return frozenset(codes)
        self.codings(field, value)  # shape check, naming the problem
        return frozenset(
            c["code"]
            for c in value.get("coding") or ()
            if isinstance(c.get("code"), str) and c.get("system", system) == system
        )

    def when(self, path: str, value: object) -> dt.datetime:
        return _parse_datetime(value, self, path)

    def day(self, path: str, value: object) -> dt.date:
        """The first day of a FHIR date or dateTime, as written."""
        if type(value) is str:
            day = quick_day(value)
            if day is not None:
                return day
        return _parse_datetime(value, self, path).date()


class NeedsFullReading(Exception):
    """The quick reading (``nkr.fhir._typed``) met something only the full reading of the
    JSON can judge: read the request again in full, which answers or names the error."""


def quick_day(value: str) -> dt.date | None:
    """The first day of a FHIR date or dateTime in one of the common forms, as written; None
    for anything the general parser must judge."""
    if len(value) == 10:
        if _QUICK_DATETIME.fullmatch(value) is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None  # an impossible date: the general parser says so
    instant = quick_datetime(value)
    return None if instant is None else instant.date()


def quick_datetime(value: str) -> dt.datetime | None:
    """A FHIR date or dateTime in one of the common forms, as the general parser reads it;
    None for any other form, or a value the general parser must judge (an impossible date,
    a leap second)."""
    if _QUICK_DATETIME.fullmatch(value) is None:
        return None
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if instant.tzinfo is None or instant.microsecond:
        instant = instant.replace(microsecond=0, tzinfo=instant.tzinfo or dt.UTC)
    return instant


def _parse_datetime(value: object, res: _Res, path: str) -> dt.datetime:
    """A FHIR date or dateTime as an instant for ordering: a partial date counts from its
    first day, no offset means UTC, fractions of a second are dropped. Its ``date()`` is the
    first day as written."""
    if type(value) is str:
        instant = quick_datetime(value)
        if instant is not None:
            return instant
    return _parse_datetime_general(value, res, path)


def _parse_datetime_general(value: object, res: _Res, path: str) -> dt.datetime:
    if not isinstance(value, str):
        raise res.error(path, "expected a FHIR dateTime string")
    m = _DATETIME.fullmatch(value)
    if m is None:
        raise res.error(
            path, "not a FHIR dateTime (expected YYYY, YYYY-MM, YYYY-MM-DD or a date-time)"
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
        instant = dt.datetime(
            date.year,
            date.month,
            date.day,
            int(hour or 0),
            int(minute or 0),
            min(int(second or 0), 59),  # a leap second orders like the second before it
            tzinfo=tz,
        )
    except ValueError:
        raise res.error(path, "impossible date or time") from None
    return instant


def coded_label(pairs: list[tuple[str, str]]) -> str:
    system, code = pairs[0]
    return f"{_SYSTEM_LABELS.get(system, system)} {code}"


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(slots=True)
class Age:
    birth_date: dt.date | None
    age: int | None


def _patient_age(patient: object, on: dt.date, notes: list[Note]) -> Age | None:
    if patient is None:
        notes.append(_note("no-birth-date"))
        return None
    res = _Res(patient, "patient")
    if res.type != "Patient":
        raise InputError(f"patient.resourceType: expected 'Patient', got {res.type!r}")
    return age_from_birth_date(res.string("birthDate"), on, notes, res)


def _error(res: _Res | None, path: str, problem: str) -> Exception:
    """The error naming the resource and field; without the resource (the quick reading), the
    signal to read the request in full, which names it."""
    return NeedsFullReading() if res is None else res.error(path, problem)


def age_from_birth_date(
    given: str | None, on: dt.date, notes: list[Note], res: _Res | None
) -> Age | None:
    """The patient's age from ``Patient.birthDate`` (see the module's notes)."""
    if given is None:
        notes.append(_note("no-birth-date"))
        return None
    m = _DATE.fullmatch(given)
    if m is None:
        raise _error(res, "birthDate", "not a FHIR date (expected YYYY, YYYY-MM or YYYY-MM-DD)")
    year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
    try:
        earliest = dt.date(year, month, day)
    except ValueError:
        raise _error(res, "birthDate", "impossible date") from None
    if earliest > on:
        raise _error(res, "birthDate", "after the assessment date")
    if _age(earliest, on) > _MAX_AGE:
        raise _error(res, "birthDate", f"more than {_MAX_AGE} years before the assessment date")
    if m[3] is not None:
        return Age(earliest, None)
    last_month = 12 if m[2] is None else month
    latest = dt.date(year, last_month, calendar.monthrange(year, last_month)[1])
    lowest = _age(min(latest, on), on)
    notes.append(_note("birth-date-partial", given=given, age=lowest))
    return Age(None, lowest)


@dataclass(slots=True)
class Diagnosis:
    """A lumbar radiculopathy diagnosis and its onset."""

    onset: dt.date
    from_recorded: bool
    coded: str
    # The resource for error messages (None on the quick reading) and the onset's field.
    res: _Res | None
    path: str


def current_status(clinical: frozenset[str], verification: frozenset[str]) -> bool:
    """Whether a Condition with these status codes counts (see the module's notes)."""
    if clinical and clinical.isdisjoint(_ACTIVE):
        return False
    return verification.isdisjoint(_NOT_TRUE)


def _is_current(res: _Res) -> bool:
    return current_status(
        res.status_codes("clinicalStatus", CLINICAL_SYSTEM),
        res.status_codes("verificationStatus", VERIFICATION_SYSTEM),
    )


def _diagnosis(res: _Res, pairs: list[tuple[str, str]]) -> Diagnosis | None:
    data = res.data
    if "onsetDateTime" in data:
        return Diagnosis(
            res.day("onsetDateTime", data["onsetDateTime"]),
            False,
            coded_label(pairs),
            res,
            "onsetDateTime",
        )
    period = data.get("onsetPeriod")
    if period is not None:
        if not isinstance(period, dict):
            raise res.error("onsetPeriod", "expected a Period (JSON object)")
        if period.get("start") is not None:
            start = res.day("onsetPeriod.start", period["start"])
            return Diagnosis(start, False, coded_label(pairs), res, "onsetPeriod.start")
    if data.get("recordedDate") is not None:
        recorded = res.day("recordedDate", data["recordedDate"])
        return Diagnosis(recorded, True, coded_label(pairs), res, "recordedDate")
    return None


class Pain(NamedTuple):
    # Ordered as the scores are: the latest wins, and on a tie the higher score.
    instant: dt.datetime
    score: float


def _pain_score(res: _Res, vs: ValueSets) -> Pain | None:
    data = res.data
    pairs = res.codings("code", data.get("code"))
    if not any(PAIN_INTENSITY in vs.ids_of(system, code) for system, code in pairs):
        return None
    if res.string("status") not in OBSERVATION_DONE:
        return None
    score: object = None
    path = ""
    if "valueQuantity" in data:
        quantity = data["valueQuantity"]
        if not isinstance(quantity, dict):
            raise res.error("valueQuantity", "expected a Quantity (JSON object)")
        score, path = quantity.get("value"), "valueQuantity.value"
    elif "valueInteger" in data:
        score, path = data["valueInteger"], "valueInteger"
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise res.error(path, "expected a number")
    if not 0 <= score <= 10:
        raise res.error(path, "expected a pain score from 0 to 10")
    when: dt.datetime | None = None
    for field in ("effectiveDateTime", "effectiveInstant"):
        if data.get(field) is not None:
            when = res.when(field, data[field])
    period = data.get("effectivePeriod")
    if when is None and period is not None:
        if not isinstance(period, dict):
            raise res.error("effectivePeriod", "expected a Period (JSON object)")
        for end in ("end", "start"):
            if period.get(end) is not None:
                when = res.when(f"effectivePeriod.{end}", period[end])
                break
    if when is None and data.get("issued") is not None:
        when = res.when("issued", data["issued"])
    if when is None:
        return None
    return Pain(when, float(score))


def matched_ids(
    pairs: list[tuple[str, str]], index: Mapping[tuple[str, str], frozenset[str]]
) -> frozenset[str]:
    """The ids of every value set holding one of ``pairs``."""
    matched: frozenset[str] = frozenset()
    for pair in pairs:
        ids = index.get(pair)
        if ids:
            matched = matched | ids if matched else ids
    return matched


def check_draft_orders(draft_orders: list[Resource]) -> None:
    """Check every draft order's shape as :func:`read_draft_orders` does (resourceType, id,
    the code field of its type), without matching codes. order-select reads only the selected
    orders, but a malformed entry of draftOrders is a malformed request, selected or not."""
    for i, raw in enumerate(draft_orders):
        res = _Res(raw, f"draftOrders[{i}]")
        field = _ORDER_CODE_FIELD.get(res.type)
        if field is not None:
            res.codings(field, res.data.get(field))


def read_draft_orders(draft_orders: list[Resource], vs: ValueSets) -> tuple[DraftOrder, ...]:
    found: list[DraftOrder] = []
    for i, raw in enumerate(draft_orders):
        res = _Res(raw, f"draftOrders[{i}]")
        field = _ORDER_CODE_FIELD.get(res.type)
        if field is None:
            continue
        matched = matched_ids(res.codings(field, res.data.get(field)), vs.index)
        for vs_id, planned in PLANNED_BY_VALUESET.items():
            if vs_id in matched:
                found.append(DraftOrder(planned, res.type, res.id, raw))
    return tuple(found)


@dataclass(slots=True)
class Conditions:
    """What the Conditions say: the radiculopathy diagnoses, whether one had no date, and
    each red flag with the first diagnosis code that raised it."""

    diagnoses: list[Diagnosis]
    undated: bool
    flags: dict[RedFlag, str]

    def add(
        self,
        radiculopathy: list[tuple[str, str]],
        red: list[tuple[str, str]],
        vs: ValueSets,
        onset: Callable[[list[tuple[str, str]]], Diagnosis | None],
    ) -> None:
        """A Condition that counts: its radiculopathy codes (a diagnosis, dated by ``onset``)
        and its red-flag codes."""
        if radiculopathy:
            diagnosis = onset(radiculopathy)
            if diagnosis is None:
                self.undated = True
            else:
                self.diagnoses.append(diagnosis)
        for system, code in red:
            flag = vs.red_flag(system, code)
            if flag is not None and flag not in self.flags:
                self.flags[flag] = coded_label([(system, code)])


def classify(
    pairs: list[tuple[str, str]], index: Mapping[tuple[str, str], frozenset[str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A Condition's codes in the radiculopathy value set, and those in the red-flag one."""
    radiculopathy: list[tuple[str, str]] = []
    red: list[tuple[str, str]] = []
    for pair in pairs:
        ids = index.get(pair)
        if ids:
            if RADICULOPATHY in ids:
                radiculopathy.append(pair)
            if RED_FLAGS in ids:
                red.append(pair)
    return radiculopathy, red


def _read_conditions(conditions: list[Resource], vs: ValueSets) -> Conditions:
    found = Conditions([], False, {})
    for i, raw in enumerate(conditions):
        res = _Res(raw, f"conditions[{i}]")
        if res.type != "Condition":
            continue
        radiculopathy, red = classify(res.codings("code", res.data.get("code")), vs.index)
        if (radiculopathy or red) and _is_current(res):
            found.add(radiculopathy, red, vs, lambda pairs: _diagnosis(res, pairs))  # noqa: B023 - called at once
    return found


def _latest_pain(observations: list[Resource], vs: ValueSets) -> Pain | None:
    latest: Pain | None = None
    for i, raw in enumerate(observations):
        res = _Res(raw, f"observations[{i}]")
        if res.type != "Observation":
            continue
        pain = _pain_score(res, vs)
        if pain is not None and (latest is None or pain > latest):
            latest = pain
    return latest


def _pain_note(latest: Pain | None, threshold: int) -> Note:
    if latest is None:
        return _note("pain-no-score")
    return _note(
        "pain-severe" if latest.score >= threshold else "pain-not-severe",
        score=f"{latest.score:g}",
        date=latest.instant.date().isoformat(),
        threshold=threshold,
    )


def _red_flag_notes(flags: Mapping[RedFlag, str]) -> list[Note]:
    labels = guideline()
    notes: list[Note] = []
    for flag, coded in flags.items():
        label = Localized.model_construct(
            da=labels.label("red_flags", flag, "da"), en=labels.label("red_flags", flag, "en")
        )
        params = {"diagnosis": coded, "flag": label}
        notes.append(Note("red-flag-from-diagnosis", params, per_lang=True))
    return notes


# Per resource type: the statuses that mean a treatment was given, and those that mean the
# patient is referred to a spine surgeon (a completed Procedure there means assessed).
_DONE_AND_REFERRED: Final = {
    "Procedure": (_PROCEDURE_DONE, frozenset({"in-progress"})),
    "ServiceRequest": (frozenset({"completed"}), _REFERRAL_ACTIVE),
}


@dataclass(slots=True)
class Treatments:
    """The non-surgical treatment tried and where the spine-surgeon assessment stands, from
    Procedures and ServiceRequests (see the module's notes)."""

    tried: set[Treatment]
    surgeon: SurgeonAssessment

    def add(self, rtype: str, status: str | None, matched: frozenset[str]) -> None:
        """One Procedure or ServiceRequest with this status, whose code is in ``matched``."""
        done, referred = _DONE_AND_REFERRED[rtype]
        if status in done:
            for vs_id in matched:
                treatment = TREATMENT_BY_VALUESET.get(vs_id)
                if treatment is not None:
                    self.tried.add(treatment)
        if SPINE_SURGEON in matched:
            if rtype == "Procedure" and status == "completed":
                self.surgeon = "done"
            elif self.surgeon == "none" and status in referred:
                self.surgeon = "referred"


def _treatment_and_surgeon(
    procedures: list[Resource], service_requests: list[Resource], vs: ValueSets
) -> Treatments:
    found = Treatments(set(), "none")
    for key, rtype, resources in (
        ("procedures", "Procedure", procedures),
        ("serviceRequests", "ServiceRequest", service_requests),
    ):
        for i, raw in enumerate(resources):
            res = _Res(raw, f"{key}[{i}]")
            if res.type != rtype:
                continue
            matched = matched_ids(res.codings("code", res.data.get("code")), vs.index)
            if matched:
                found.add(rtype, res.string("status"), matched)
    return found


def case_from_fhir(
    *,
    patient: Resource | None,
    conditions: list[Resource],
    observations: list[Resource],
    procedures: list[Resource],
    service_requests: list[Resource],
    draft_orders: list[Resource],
    on: dt.date,
    pain_threshold: int,
    valuesets: ValueSets | None = None,
) -> FhirCase:
    """Build the patient case from FHIR R4 resources. Raises ``nkr.InputError`` naming the
    resource and field when a resource has the wrong shape.

    ``on`` is the assessment date (the clinic's local date); ``valuesets`` defaults to the
    shipped value sets, without a deployment's extras. Resources of another type than the list
    expects (such as OperationOutcome entries of a search) are skipped. The draft orders are
    read even when there is no case, so a caller can always see what was ordered; the other
    resources are read only when there is a case.
    """
    vs = valuesets or shipped_valuesets()
    return assemble(
        orders=read_draft_orders(draft_orders, vs),
        conditions=_read_conditions(conditions, vs),
        age=lambda notes: _patient_age(patient, on, notes),
        latest_pain=lambda: _latest_pain(observations, vs),
        treatments=lambda: _treatment_and_surgeon(procedures, service_requests, vs),
        on=on,
        pain_threshold=pain_threshold,
    )


def assemble(
    *,
    orders: tuple[DraftOrder, ...],
    conditions: Conditions,
    age: Callable[[list[Note]], Age | None],
    latest_pain: Callable[[], Pain | None],
    treatments: Callable[[], Treatments],
    on: dt.date,
    pain_threshold: int,
) -> FhirCase:
    """The case from what a reading found: the draft orders and Conditions, then (only when
    there is a diagnosis) the patient's age, the latest pain score and the treatment."""
    if not conditions.diagnoses:
        return FhirCase(None, (_note("no-onset-date"),) if conditions.undated else (), orders)

    notes: list[Note] = []
    known_age = age(notes)
    if known_age is None:
        return FhirCase(None, tuple(notes), orders)

    first = min(conditions.diagnoses, key=lambda d: d.onset)
    if first.onset > on:
        raise _error(first.res, first.path, "after the assessment date")
    if known_age.birth_date is not None and first.onset < known_age.birth_date:
        raise _error(first.res, first.path, "before the patient's birthDate")
    if first.from_recorded:
        notes.append(
            _note("onset-from-recorded-date", diagnosis=first.coded, date=first.onset.isoformat())
        )
    if len(conditions.diagnoses) > 1:
        count = len(conditions.diagnoses)
        notes.append(_note("earliest-onset", count=count, date=first.onset.isoformat()))
    notes.append(_note("sign-from-diagnosis", diagnosis=first.coded))
    notes.extend(_red_flag_notes(conditions.flags))

    latest = latest_pain()
    notes.append(_pain_note(latest, pain_threshold))
    found = treatments()

    try:
        case = Case(
            birth_date=known_age.birth_date,
            age=known_age.age,
            symptom_onset=first.onset,
            signs=frozenset({"radicular_leg_pain"}),
            red_flags=frozenset(conditions.flags),
            severe_disabling_pain=latest is not None and latest.score >= pain_threshold,
            non_surgical_treatment=frozenset(found.tried),
            spine_surgeon_assessment=found.surgeon,
            planned=frozenset(o.intervention for o in orders),
        )
    except ValidationError as exc:  # pragma: no cover - the checks above come first
        raise InputError(describe_validation_error(exc)) from None
    return FhirCase(case, tuple(notes), orders)
