"""A tiny, independent recount of what an export holds, straight from its JSON lines (for the
tests only): the audit's definitions (AUDIT_SPEC.md) applied to plain dicts, written without
nkr's reader, rules or the generator's plan."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

VALUESETS = (Path(__file__).parents[2] / "src/nkr/guidelines/lumbar_radiculopathy/valuesets").glob(
    "*.json"
)
MEMBERS: dict[tuple[str, str], set[str]] = defaultdict(set)
for _path in VALUESETS:
    _data = json.loads(_path.read_text())
    for _code in _data["codes"]:
        MEMBERS[(_code["system"], _code["code"])].add(_data["id"])

WINDOW = 84
IN_WINDOW = {
    "mri": {"mri-lumbar-spine"},
    "glucocorticoid-injection": {"glucocorticoid-injection"},
    "acupuncture": {"acupuncture"},
    "bed-rest": {"bed-rest"},
    "exercise-or-mobilisation": {"supervised-exercise", "specific-exercise", "manual-mobilisation"},
}
SURGEON = "spine-surgeon-by-day-84"
TREATMENTS = {
    "supervised-exercise",
    "specific-exercise",
    "manual-mobilisation",
    "acupuncture",
    "glucocorticoid-injection",
}

Resource = dict[str, Any]


def first_day(value: str) -> dt.date:
    """The first day of a FHIR date or dateTime, as written."""
    head = value[:10]
    if len(head) == 4:
        head += "-01-01"
    elif len(head) == 7:
        head += "-01"
    return dt.date.fromisoformat(head)


def instant(value: str) -> dt.datetime:
    if len(value) <= 10:
        return dt.datetime.combine(first_day(value), dt.time(), dt.UTC)
    return dt.datetime.fromisoformat(value)


def valuesets(concept: Mapping[str, Any] | None) -> set[str]:
    found: set[str] = set()
    for coding in (concept or {}).get("coding", []):
        found |= MEMBERS.get((coding.get("system"), coding.get("code")), set())
    return found


def _codes(concept: Mapping[str, Any] | None) -> set[str]:
    return {c["code"] for c in (concept or {}).get("coding", [])}


def condition_counts(c: Resource) -> bool:
    clinical = _codes(c.get("clinicalStatus"))
    if clinical and not clinical & {"active", "recurrence", "relapse"}:
        return False
    return not _codes(c.get("verificationStatus")) & {"refuted", "entered-in-error"}


def dated(r: Resource) -> dt.date | None:
    """A resource's date for "known on A" (AUDIT_SPEC.md)."""
    kind = r["resourceType"]
    if kind == "Condition":
        value = r.get("onsetDateTime") or (r.get("onsetPeriod") or {}).get("start")
        value = value or r.get("recordedDate")
    elif kind == "Observation":
        value = r.get("effectiveDateTime") or r.get("issued")
    elif kind == "Procedure":
        value = r.get("performedDateTime") or (r.get("performedPeriod") or {}).get("start")
    elif kind == "ServiceRequest":
        value = r.get("authoredOn") or r.get("occurrenceDateTime")
    else:
        return None
    return None if value is None else first_day(value)


def known_on(resources: Iterable[Resource], on: dt.date) -> list[Resource]:
    return [r for r in resources if (d := dated(r)) is None or d <= on]


def start(resources: Iterable[Resource]) -> dt.date | None:
    """The episode's start S: the earliest onset of a counting, dated qualifying Condition."""
    days = [
        d
        for r in resources
        if r["resourceType"] == "Condition"
        and "lumbar-radiculopathy" in valuesets(r.get("code"))
        and condition_counts(r)
        and (d := dated(r)) is not None
    ]
    return min(days, default=None)


def lowest_age(birth: str, on: dt.date) -> int:
    if len(birth) == 4:
        last = dt.date(int(birth), 12, 31)
    elif len(birth) == 7:
        year, month = int(birth[:4]), int(birth[5:])
        nxt = dt.date(year + month // 12, month % 12 + 1, 1)
        last = nxt - dt.timedelta(days=1)
    else:
        last = dt.date.fromisoformat(birth)
    last = min(last, on)
    return on.year - last.year - ((on.month, on.day) < (last.month, last.day))


def done(r: Resource) -> bool:
    if r["resourceType"] == "Procedure":
        return r["status"] in {"completed", "in-progress"}
    return r["resourceType"] == "ServiceRequest" and r["status"] in {"active", "completed"}


def tried(r: Resource) -> bool:
    if r["resourceType"] == "Procedure":
        return r["status"] in {"completed", "in-progress"}
    return r["resourceType"] == "ServiceRequest" and r["status"] in {"completed"}


def judge(
    patient: Resource | None, resources: list[Resource], threshold: int = 7
) -> tuple[dt.date, str | None, set[str], set[str]] | None:
    """(S, exclusion, denominators, numerators) of one patient's episode, or None."""
    s = start(resources)
    if s is None:
        return None
    a = s + dt.timedelta(days=WINDOW)
    known = known_on(resources, a)
    if patient is None or "birthDate" not in patient:
        return s, "no-birth-date", set(), set()
    if lowest_age(patient["birthDate"], a) < 18:
        return s, "under-18", set(), set()
    if any(
        r["resourceType"] == "Condition"
        and "red-flags" in valuesets(r.get("code"))
        and condition_counts(r)
        for r in known
    ):
        return s, "red-flag", set(), set()
    care = [r for r in known if r["resourceType"] in {"Procedure", "ServiceRequest"}]
    denominators = set(IN_WINDOW)
    numerators = {
        indicator
        for indicator, sets in IN_WINDOW.items()
        if any(
            valuesets(r.get("code")) & sets and done(r) and (d := dated(r)) and s <= d <= a
            for r in care
        )
    }
    scores = [
        (instant(r.get("effectiveDateTime") or r["issued"]), value)
        for r in known
        if r["resourceType"] == "Observation"
        and "pain-intensity" in valuesets(r.get("code"))
        and r["status"] in {"final", "amended", "corrected"}
        and (r.get("effectiveDateTime") or r.get("issued"))
        and (value := r.get("valueInteger", (r.get("valueQuantity") or {}).get("value")))
        is not None
    ]
    severe = bool(scores) and max(scores)[1] >= threshold
    if severe and any(valuesets(r.get("code")) & TREATMENTS and tried(r) for r in care):
        denominators.add(SURGEON)
        if any("spine-surgeon-referral" in valuesets(r.get("code")) and done(r) for r in care):
            numerators.add(SURGEON)
    return s, None, denominators, numerators


def by_patient(
    lines: Iterable[bytes | str],
) -> tuple[dict[str, Resource], dict[str, list[Resource]]]:
    """Patients by id, and every other resource by its subject's id."""
    patients: dict[str, Resource] = {}
    others: dict[str, list[Resource]] = defaultdict(list)
    for line in lines:
        r = json.loads(line)
        if r["resourceType"] == "Patient":
            patients[r["id"]] = r
        elif r["resourceType"] != "Organization":
            others[r["subject"]["reference"].removeprefix("Patient/")].append(r)
    return patients, others


def recount(lines: Iterable[bytes | str]) -> dict[str, Any]:
    """The ground truth's counts (all but guideline and seed), recounted."""
    patients, others = by_patient(lines)
    ids = set(patients) | set(others)
    exclusions = {"no-birth-date": 0, "under-18": 0, "red-flag": 0}
    cells: dict[str, dict[str, Any]] = {
        i: {"overall": [0, 0], "by_month": {}, "by_organization": {}} for i in [*IN_WINDOW, SURGEON]
    }
    episodes = in_scope = 0
    for pid in ids:
        patient = patients.get(pid)
        judged = judge(patient, others.get(pid, []))
        if judged is None:
            continue
        episodes += 1
        s, exclusion, denominators, numerators = judged
        if exclusion is not None:
            exclusions[exclusion] += 1
            continue
        in_scope += 1
        org = ((patient or {}).get("managingOrganization") or {}).get("reference", "unknown")
        for indicator in denominators:
            hit = int(indicator in numerators)
            for cell in (
                cells[indicator]["overall"],
                cells[indicator]["by_month"].setdefault(s.isoformat()[:7], [0, 0]),
                cells[indicator]["by_organization"].setdefault(org, [0, 0]),
            ):
                cell[0] += hit
                cell[1] += 1
    for c in cells.values():
        c["by_month"] = dict(sorted(c["by_month"].items()))
        c["by_organization"] = dict(sorted(c["by_organization"].items()))
    return {
        "patients": len(ids),
        "episodes": episodes,
        "in_scope": in_scope,
        "exclusions": exclusions,
        "indicators": cells,
    }
