"""``nkr synth``: a synthetic FHIR Bulk Data export, made by a guideline's plan.

Generic: the guideline's plan (:class:`Synthesis`, the package member ``synthesis``) decides
every patient and writes their resources as JSON lines into a :class:`Sink`, with what the
audit must find for that patient (:meth:`Sink.expect`). This module moves the lines to disk
and adds up the expectations:

- one NDJSON file per resource type (``Condition.ndjson``), split into parts
  (``Condition.1.ndjson`` ...) when the export is large, each part written by one worker
  process; gzip on request (deterministic: no time stamp or name in the header);
- ``manifest.json`` in the Bulk Data ``$export`` completion format;
- ``ground_truth.json``: the counts the audit must find (AUDIT_SPEC.md), from the plan itself.

Deterministic: part ``p`` draws from ``random.Random`` seeded by the seed and ``p`` alone, so
the same seed and number of patients give byte-identical files whatever the number of worker
processes. Streaming: patients are made and written in blocks, and only the counts are kept,
so memory does not grow with the number of patients. Atomic: the export is written into a
temporary folder beside ``--out`` and renamed to it when complete.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import multiprocessing
import os
import random
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

import orjson

from nkr._errors import InputError
from nkr._files import umask

# Patients per part file (the unit of work of a worker process; from SPLIT_FROM patients on,
# at least two parts) and per write (a block). The parts depend on the number of patients
# only, never on the machine, so that the files do too.
PART_SIZE: Final = 125_000
SPLIT_FROM: Final = 20_000
BLOCK_SIZE: Final = 2_000
MAX_PATIENTS: Final = 100_000_000

# Injected with --problems: how many lines of each kind the audit must report. They are
# written into part 1 of the Observation file (a type every plan of nkr writes), after the
# first block of patients.
PROBLEM_TYPE: Final = "Observation"
PROBLEMS: Final[dict[str, tuple[str, ...]]] = {
    "malformed": (
        '{"resourceType":"Observation","id":"problem-malformed-1","status":"final",',
        "this line is not JSON",
        '{"resourceType":"Observation","id":"problem-malformed-3"',
    ),
    "no-patient": (
        '{"resourceType":"Observation","id":"problem-no-patient-1","status":"final"}',
        '{"resourceType":"Observation","id":"problem-no-patient-2","status":"final",'
        '"code":{"text":"synthetic problem: no subject"}}',
    ),
    # Of a patient of the export (PATIENT: the first one), so that they are nothing else.
    "unknown-type": (
        '{"resourceType":"SyntheticNonsense","id":"problem-unknown-type-1",'
        '"subject":{"reference":"PATIENT"}}',
        '{"resourceType":"Observations","id":"problem-unknown-type-2","status":"final",'
        '"subject":{"reference":"PATIENT"}}',
    ),
}
# The kick-off request the export stands for (a reserved, never-resolving domain).
REQUEST_BASE: Final = "https://synth.nkr.invalid/fhir/$export"


class Synthesis(Protocol):
    """A guideline's plan for synthetic patients (``nkr synth``): which patients, which
    resources, and what the audit must find for each. Pure but for the sink: everything it
    draws comes from the ``rng`` it is given, nothing from the clock."""

    @property
    def indicators(self) -> tuple[str, ...]:
        """The ids of the indicators the plan's expectations name, in the guideline's order."""
        ...

    @property
    def exclusions(self) -> tuple[str, ...]:
        """The exclusion codes an episode can have, in the order they are decided."""
        ...

    @property
    def transaction_time(self) -> str:
        """The export's ``transactionTime``: an instant after every date the plan writes."""
        ...

    def shared(self, sink: Sink) -> None:
        """Write the resources of no one patient (Organizations), once per export."""
        ...

    def patients(self, rng: random.Random, first: int, count: int, sink: Sink) -> None:
        """Write patients ``first`` to ``first + count - 1`` and expect each exactly once."""
        ...


@dataclass(slots=True)
class Tally:
    """What the expectations add up to (small: counts by indicator and stratum)."""

    patients: int = 0
    episodes: int = 0
    in_scope: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)
    # (indicator, stratum, key) -> [numerator, denominator]
    cells: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        self.patients += other.patients
        self.episodes += other.episodes
        self.in_scope += other.in_scope
        for code, n in other.exclusions.items():
            self.exclusions[code] = self.exclusions.get(code, 0) + n
        for key, (num, den) in other.cells.items():
            cell = self.cells.setdefault(key, [0, 0])
            cell[0] += num
            cell[1] += den


class Sink:
    """Where a plan writes one part of the export: JSON lines per resource type (appended to
    the list :meth:`lines` gives; written out after each block of patients) and what each
    patient must give (:meth:`expect`)."""

    def __init__(self, exclusions: Iterable[str]) -> None:
        self._buffers: dict[str, list[str]] = {}
        self.tally = Tally(exclusions=dict.fromkeys(exclusions, 0))
        self.first_patient: str | None = None

    def lines(self, resource_type: str) -> list[str]:
        """The list to append ``resource_type``'s lines to (one JSON object each, no newline)."""
        found = self._buffers.get(resource_type)
        if found is None:
            found = self._buffers[resource_type] = []
        return found

    def expect(
        self,
        patient: str,
        organization: str | None,
        start: dt.date | None,
        exclusion: str | None,
        denominators: Iterable[str] = (),
        numerators: Iterable[str] = (),
    ) -> None:
        """One patient (``Patient/ID``): its managing organization's reference, its episode's
        start (None: no episode), why the episode is out of scope (None: in scope), and the
        indicators whose denominator and numerator it meets."""
        tally = self.tally
        if not tally.patients:
            self.first_patient = patient
        tally.patients += 1
        if start is None:
            return
        tally.episodes += 1
        if exclusion is not None:
            tally.exclusions[exclusion] += 1
            return
        tally.in_scope += 1
        cells = tally.cells
        month = start.isoformat()[:7]
        org = organization or "unknown"
        for index, ids in ((1, denominators), (0, numerators)):
            for indicator in ids:
                for key in ((indicator, "overall", ""), (indicator, "month", month)):
                    cell = cells.get(key)
                    if cell is None:
                        cell = cells[key] = [0, 0]
                    cell[index] += 1
                key = (indicator, "organization", org)
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = [0, 0]
                cell[index] += 1

    def take(self) -> dict[str, list[str]]:
        """The lines written since the last take, by type (and empty buffers again)."""
        taken = {k: v for k, v in self._buffers.items() if v}
        self._buffers = {}
        return taken


# -- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    synthesis: Synthesis
    patients: int
    seed: int
    parts: int
    folder: Path
    compress: bool
    problems: bool


def _file_name(resource_type: str, part: int | None, compress: bool) -> str:
    middle = "" if part is None else f".{part}"
    return f"{resource_type}{middle}.ndjson{'.gz' if compress else ''}"


class _Files:
    """The open files of one part, by resource type, with their line counts."""

    def __init__(self, job: _Job, part: int | None) -> None:
        self._job = job
        self._part = part
        self._open: dict[str, IO[bytes]] = {}
        self.counts: dict[str, int] = {}

    def write(self, taken: dict[str, list[str]]) -> None:
        for resource_type, lines in taken.items():
            out = self._open.get(resource_type)
            if out is None:
                name = _file_name(resource_type, self._part, self._job.compress)
                raw: IO[bytes] = open(self._job.folder / name, "wb")  # noqa: SIM115
                if self._job.compress:
                    raw = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)  # type: ignore[assignment]
                out = self._open[resource_type] = raw
                self.counts[name] = 0
            out.write(("\n".join(lines) + "\n").encode())
            name = _file_name(resource_type, self._part, self._job.compress)
            self.counts[name] += len(lines)

    def close(self) -> None:
        for out in self._open.values():
            inner = getattr(out, "fileobj", None)
            out.close()
            if inner is not None:
                inner.close()


_JOB: _Job | None = None


def _run_part(part: int) -> tuple[dict[str, int], Tally]:
    """Part ``part`` (from 0) of the job of this process: its patients, written to its files."""
    job = _JOB
    assert job is not None
    size = math.ceil(job.patients / job.parts)
    begin, end = part * size, min(job.patients, (part + 1) * size)
    rng = random.Random(f"nkr-synth:{job.seed}:{part}")
    sink = Sink(job.synthesis.exclusions)
    files = _Files(job, None if job.parts == 1 else part + 1)
    try:
        for first in range(begin, end, BLOCK_SIZE):
            job.synthesis.patients(rng, first, min(BLOCK_SIZE, end - first), sink)
            if job.problems and part == 0 and first == begin:
                problems = (line for v in PROBLEMS.values() for line in v)
                patient = sink.first_patient or ""
                sink.lines(PROBLEM_TYPE).extend(p.replace("PATIENT", patient) for p in problems)
            files.write(sink.take())
    finally:
        files.close()
    return files.counts, sink.tally


def _workers(parts: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(parts, cores))


def _run(job: _Job, workers: int) -> tuple[dict[str, int], Tally]:
    global _JOB
    _JOB = job
    counts: dict[str, int] = {}
    tally = Tally(exclusions=dict.fromkeys(job.synthesis.exclusions, 0))
    try:
        if workers == 1:
            results: Iterable[tuple[dict[str, int], Tally]] = map(_run_part, range(job.parts))
            for part_counts, part_tally in results:
                counts.update(part_counts)
                tally.add(part_tally)
        else:
            # Forked: the workers inherit the job (the plan need not be picklable).
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for part_counts, part_tally in pool.imap_unordered(_run_part, range(job.parts)):
                    counts.update(part_counts)
                    tally.add(part_tally)
    finally:
        _JOB = None
    return counts, tally


def _manifest(synthesis: Synthesis, seed: int, counts: dict[str, int]) -> dict[str, Any]:
    output = []
    for name in sorted(counts, key=_file_order):
        output.append({"type": name.split(".", 1)[0], "url": name, "count": counts[name]})
    return {
        "transactionTime": synthesis.transaction_time,
        "request": f"{REQUEST_BASE}?_seed={seed}",
        "requiresAccessToken": False,
        "output": output,
        "error": [],
    }


def _file_order(name: str) -> tuple[str, int]:
    parts = name.split(".")
    return parts[0], int(parts[1]) if parts[1].isdigit() else 0


def ground_truth(
    synthesis: Synthesis, guideline_id: str, seed: int, tally: Tally, problems: bool
) -> dict[str, Any]:
    """The ground truth file's content (AUDIT_SPEC.md): counts unsuppressed, strata with a
    denominator of 0 left out."""
    indicators: dict[str, Any] = {}
    for indicator in synthesis.indicators:
        overall = tally.cells.get((indicator, "overall", ""), [0, 0])
        strata: dict[str, dict[str, list[int]]] = {"month": {}, "organization": {}}
        for (ind, stratum, key), cell in tally.cells.items():
            if ind == indicator and stratum != "overall" and cell[1] > 0:
                strata[stratum][key] = list(cell)
        indicators[indicator] = {
            "overall": list(overall),
            "by_month": dict(sorted(strata["month"].items())),
            "by_organization": dict(sorted(strata["organization"].items())),
        }
    truth: dict[str, Any] = {
        "guideline": guideline_id,
        "seed": seed,
        "patients": tally.patients,
        "episodes": tally.episodes,
        "in_scope": tally.in_scope,
        "exclusions": dict(tally.exclusions),
        "indicators": indicators,
    }
    if problems:
        truth["problems"] = {kind: len(lines) for kind, lines in PROBLEMS.items()}
    return truth


@dataclass(frozen=True, slots=True)
class Written:
    """What ``synthesize`` wrote: the folder, its files with their line counts, the truth."""

    folder: Path
    counts: dict[str, int]
    truth: dict[str, Any]

    @property
    def resources(self) -> int:
        return sum(self.counts.values())


def _prepare(out: Path) -> Path:
    """A new temporary folder beside ``out`` (which must be absent or an empty folder)."""
    if out.is_symlink() or out.exists():
        if not out.is_dir() or out.is_symlink():
            raise InputError(f"--out: {out} exists and is not a folder")
        if any(out.iterdir()):
            raise InputError(f"--out: {out} is not empty (give a new or empty folder)")
    parent = out.absolute().parent
    if not parent.is_dir():
        raise InputError(f"--out: {parent} is not a folder")
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise InputError(f"--out: cannot write in {parent}: {exc.strerror}") from None
    folder.chmod(0o777 & ~umask())
    return folder


def synthesize(
    synthesis: Synthesis,
    guideline_id: str,
    patients: int,
    out: Path,
    *,
    seed: int = 1,
    problems: bool = False,
    compress: bool = False,
    workers: int | None = None,
) -> Written:
    """Write the export of ``patients`` synthetic patients into the new folder ``out``
    (absent or empty; nothing is left there unless it is complete). Raises InputError on
    bad arguments and an ``out`` that cannot be written."""
    if not 1 <= patients <= MAX_PATIENTS:
        raise InputError(f"--patients: expected a whole number from 1 to {MAX_PATIENTS}")
    folder = _prepare(out)
    try:
        parts = math.ceil(patients / PART_SIZE)
        if parts == 1 and patients >= SPLIT_FROM:
            parts = 2
        job = _Job(synthesis, patients, seed, parts, folder, compress, problems)
        shared = Sink(())
        synthesis.shared(shared)
        files = _Files(job, None)
        try:
            files.write(shared.take())
        finally:
            files.close()
        counts, tally = _run(job, workers or _workers(parts))
        counts.update(files.counts)
        truth = ground_truth(synthesis, guideline_id, seed, tally, problems)
        manifest = _manifest(synthesis, seed, counts)
        for name, data in (("manifest.json", manifest), ("ground_truth.json", truth)):
            (folder / name).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        try:
            folder.rename(out)
        except OSError as exc:
            raise InputError(f"--out: cannot create {out}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Written(out, counts, truth)
