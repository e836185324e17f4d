"""The per-patient step of the audit, shared by every engine: one patient's NDJSON lines,
decoded by the one typed reader (:mod:`nkr.fhir._read`) and judged by the guideline package
(:meth:`nkr.GuidelinePackage.judge`), the same reading and rules as the cards.

An engine (DuckDB here, Spark in :mod:`nkr.audit._spark`) only moves the data: it finds each
line's patient (:data:`PATIENT_PATHS`), puts a patient's lines together and hands them, in
Arrow record batches of :data:`LINES_SCHEMA`, to :func:`judge_batch`; it gets back the
episodes (:data:`EPISODES_SCHEMA`), one row per indicator an episode is in the denominator of
(:data:`MEASURED_SCHEMA`, what :mod:`nkr.audit._sql` computes the figures from) and the
problems, each with its file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from nkr._errors import InputError
from nkr._package import GuidelinePackage
from nkr.audit._model import Episode
from nkr.fhir._read import PatientRecord, decode_lines, record_from_decoded, record_from_lines

ProblemKind = Literal["malformed", "unknown-type", "no-patient", "invalid"]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """A line the audit could not use, or a patient whose record has a value that cannot be
    right (``invalid``: the reading's error, at the field). Never a patient's value."""

    kind: ProblemKind
    file: str
    line: int
    detail: str


# Where a resource names its patient (generic FHIR): a Patient is its own (``Patient/`` + id),
# every other resource by ``subject.reference`` or else ``patient.reference``; a reference is
# read as ``Patient/ID`` (an absolute URL or a version is cut off: PATIENT_REFERENCE).
PATIENT_PATHS: Final = ("$.resourceType", "$.id", "$.subject.reference", "$.patient.reference")
PATIENT_REFERENCE: Final = r"(?:^|/)(Patient/[A-Za-z0-9\-\.]{1,64})(?:/_history/[^/]*)?$"
# The resource types of FHIR R4's Patient compartment: one of them without a patient is a
# problem; any other type (Organization, Practitioner, Medication ...) is shared data, counted.
COMPARTMENT: Final = frozenset(
    [
        "Account",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "AuditEvent",
        "Basic",
        "BodyStructure",
        "CarePlan",
        "CareTeam",
        "ChargeItem",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "Communication",
        "CommunicationRequest",
        "Composition",
        "Condition",
        "Consent",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "Encounter",
        "EnrollmentRequest",
        "EpisodeOfCare",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "Invoice",
        "List",
        "MeasureReport",
        "Media",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "MolecularSequence",
        "NutritionOrder",
        "Observation",
        "Patient",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RequestGroup",
        "ResearchSubject",
        "RiskAssessment",
        "ServiceRequest",
        "Specimen",
        "SupplyDelivery",
        "SupplyRequest",
        "VisionPrescription",
    ]
)

# A patient's lines: the patient's reference, the file (an index into the engine's list of
# files) and line number (from 1) of each line, and the line. A patient's rows are together.
LINES_SCHEMA: Final = pa.schema(
    [
        ("patient", pa.string()),
        ("file", pa.int32()),
        ("line", pa.int64()),
        ("text", pa.string()),
    ]
)
EPISODES_SCHEMA: Final = pa.schema(
    [
        ("patient", pa.string()),
        ("organization", pa.string()),
        ("start", pa.date32()),
        ("assessed_on", pa.date32()),
        ("month", pa.string()),
        ("in_scope", pa.bool_()),
        ("exclusion", pa.string()),
        ("statuses", pa.map_(pa.string(), pa.string())),
        ("denominators", pa.list_(pa.string())),
        ("numerators", pa.list_(pa.string())),
    ]
)
# The organization stratum's key of an episode without a managing organization.
UNKNOWN_ORGANIZATION: Final = "unknown"
MEASURED_SCHEMA: Final = pa.schema(
    [
        ("indicator", pa.string()),
        ("start", pa.date32()),
        ("month", pa.string()),
        ("organization", pa.string()),
        ("numerator", pa.int32()),
    ]
)

_INDEX: Final = re.compile(r"^\$\[(\d+)\](.*)$")


@dataclass
class Judged:
    """What judging some patients gave."""

    episodes: list[Episode] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    patients: int = 0
    # Patients whose record gives no episode (no dated, counting diagnosis).
    without_episode: int = 0


def judge_patient(
    package: GuidelinePackage,
    patient: str,
    lines: Sequence[bytes | memoryview],
    places: Sequence[tuple[str, int]],
    out: Judged,
) -> None:
    """Judge one patient: ``lines`` are its resources as NDJSON lines, ``places`` the file and
    line number of each. The episodes and problems go to ``out``. A line that does not decode
    is a ``malformed`` problem and left out; a record the reading refuses is one ``invalid``
    problem, at the line and field it names, and gives no episode."""
    _judge_lines(package, patient, lines, places.__getitem__, out)


def _judge_lines(
    package: GuidelinePackage,
    patient: str,
    lines: Sequence[bytes | memoryview],
    place: Callable[[int], tuple[str, int]],
    out: Judged,
) -> None:
    # ``place(i)``: where the i-th line is, asked for only for a problem.
    record, errors = record_from_lines(lines)
    for i, exc in errors:
        file, line = place(i)
        out.problems.append(Problem(kind="malformed", file=file, line=line, detail=str(exc)))
    _judge_record(package, patient, record, len(lines), place, out)


def _judge_record(
    package: GuidelinePackage,
    patient: str,
    record: PatientRecord,
    count: int,
    place: Callable[[int], tuple[str, int]],
    out: Judged,
) -> None:
    out.patients += 1
    try:
        episodes = package.judge(record, patient)
    except InputError as exc:
        out.problems.append(_invalid(exc, place, count))
        return
    if not episodes:
        out.without_episode += 1
    out.episodes.extend(episodes)


def _invalid(exc: InputError, place: Callable[[int], tuple[str, int]], count: int) -> Problem:
    m = _INDEX.match(exc.location or "")
    if m is None or int(m[1]) >= count:
        file, line = place(0)
        return Problem(kind="invalid", file=file, line=line, detail=str(exc))
    file, line = place(int(m[1]))
    where = m[2].removeprefix(".") or "$"
    return Problem(kind="invalid", file=file, line=line, detail=f"{where}: {exc.problem}")


def judge_batch(
    package: GuidelinePackage, batch: pa.RecordBatch, files: Sequence[str], out: Judged
) -> None:
    """Judge every patient of ``batch`` (:data:`LINES_SCHEMA`, a patient's rows together);
    ``files`` names the files by index."""
    n = batch.num_rows
    if n == 0:
        return
    bounds = _bounds(batch.column(0))
    patients = batch.column(0).take(bounds[:-1]).to_pylist()
    file_ids = batch.column(1).to_pylist()
    numbers = batch.column(2).to_pylist()
    text = batch.column(3)
    decoded = _decoded(text)
    if decoded is None:
        offsets, data = _buffers(text)
    for k, patient in enumerate(patients):
        begin, end = bounds[k], bounds[k + 1]

        def place(j: int, first: int = begin) -> tuple[str, int]:
            return files[file_ids[first + j]], numbers[first + j]

        if decoded is not None:
            record = record_from_decoded(decoded[begin:end])
            _judge_record(package, patient, record, end - begin, place, out)
        else:
            lines = [data[offsets[j] : offsets[j + 1]] for j in range(begin, end)]
            _judge_lines(package, patient, lines, place, out)


def _bounds(patients: pa.Array) -> list[int]:
    """Where each patient's rows begin, and the end (the rows of a patient are together)."""
    n = len(patients)
    if patients.null_count:
        values = patients.to_pylist()
        return [0, *(i for i in range(1, n) if values[i] != values[i - 1]), n]
    changed = pc.not_equal(patients.slice(1), patients.slice(0, n - 1))
    return [0, *pc.add(pc.indices_nonzero(changed), 1).to_pylist(), n]


def _decoded(text: pa.Array) -> list[Any] | None:
    """Every line of ``text`` decoded at once (one call of the typed reader for the batch),
    or None when a line does not decode as one resource (then each patient's lines are
    decoded one by one, and the line that does not is a problem)."""
    # A line that starts with "{" is not blank: when the count of the resources decoded is
    # that of the lines, each line gave exactly one.
    if text.null_count or not pc.all(pc.starts_with(text, "{")).as_py():
        return None
    offsets, data = _buffers(pc.binary_join_element_wise(text, "", "\n"))
    try:
        resources = decode_lines(data[offsets[0] : offsets[-1]])
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    return resources if len(resources) == len(text) else None


def _buffers(text: pa.Array) -> tuple[list[int], memoryview]:
    """The offsets and the bytes of a string array (no copy of the bytes)."""
    if text.null_count:
        text = text.fill_null("")
    _, offsets, data = text.buffers()
    assert offsets is not None
    assert data is not None
    width = 8 if pa.types.is_large_string(text.type) else 4
    view = memoryview(offsets).cast("q" if width == 8 else "i")
    start = text.offset
    return view[start : start + len(text) + 1].tolist(), memoryview(data)


def episodes_batch(episodes: Sequence[Episode]) -> pa.RecordBatch:
    """Episodes as a record batch of :data:`EPISODES_SCHEMA`."""
    keys: list[str] = []
    values: list[str] = []
    denominators: list[str] = []
    numerators: list[str] = []
    ends: tuple[list[int], list[int], list[int]] = ([0], [0], [0])
    for e in episodes:
        statuses = e.statuses
        keys.extend(statuses)
        values.extend(statuses.values())
        denominators.extend(sorted(e.denominators))
        numerators.extend(sorted(e.numerators))
        ends[0].append(len(keys))
        ends[1].append(len(denominators))
        ends[2].append(len(numerators))
    status_ends, den_ends, num_ends = (pa.array(x, pa.int32()) for x in ends)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([e.patient for e in episodes], pa.string()),
            pa.array([e.organization for e in episodes], pa.string()),
            pa.array([e.start for e in episodes], pa.date32()),
            pa.array([e.assessed_on for e in episodes], pa.date32()),
            pa.array([e.month for e in episodes], pa.string()),
            pa.array([e.in_scope for e in episodes], pa.bool_()),
            pa.array([e.exclusion for e in episodes], pa.string()),
            pa.MapArray.from_arrays(
                status_ends, pa.array(keys, pa.string()), pa.array(values, pa.string())
            ).cast(EPISODES_SCHEMA[7].type),
            pa.ListArray.from_arrays(den_ends, pa.array(denominators, pa.string())),
            pa.ListArray.from_arrays(num_ends, pa.array(numerators, pa.string())),
        ],
        schema=EPISODES_SCHEMA,
    )


def measured_batch(episodes: Sequence[Episode]) -> pa.RecordBatch:
    """One row per episode and indicator whose denominator it meets (:data:`MEASURED_SCHEMA`):
    what the figures are computed from."""
    indicator: list[str] = []
    start = []
    month = []
    organization = []
    numerator = []
    for e in episodes:
        if not e.denominators:
            continue
        m = e.month
        org = e.organization or UNKNOWN_ORGANIZATION
        for ind in e.denominators:
            indicator.append(ind)
            start.append(e.start)
            month.append(m)
            organization.append(org)
            numerator.append(1 if ind in e.numerators else 0)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(indicator, pa.string()),
            pa.array(start, pa.date32()),
            pa.array(month, pa.string()),
            pa.array(organization, pa.string()),
            pa.array(numerator, pa.int32()),
        ],
        schema=MEASURED_SCHEMA,
    )
