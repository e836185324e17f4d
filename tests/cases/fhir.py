"""A case of the table as the FHIR an EHR would send: the CDS Hooks request of one hook, with
its prefetch. One small translation per guideline; a case that FHIR cannot say (a sign other
than a coded diagnosis gives, a red flag without a shipped code) has no ``cards`` in the
table."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Final

import nkr.guidelines.lumbar_radiculopathy as lumbar
from tests.cases.table import TableCase

Resource = dict[str, Any]

PATIENT = {"reference": "Patient/p1"}
LUMBAR_VALUESETS: Final = Path(lumbar.__file__).parent / "valuesets"
# The value set of each planned intervention or treatment of the lumbar case.
LUMBAR_ORDER_VALUESETS: Final = {
    "mri": "mri-lumbar-spine",
    "glucocorticoid_injection": "glucocorticoid-injection",
    "acupuncture": "acupuncture",
    "bed_rest": "bed-rest",
    "supervised_exercise": "supervised-exercise",
    "specific_exercise": "specific-exercise",
    "manual_mobilisation": "manual-mobilisation",
    "spine_surgeon_referral": "spine-surgeon-referral",
}


@cache
def _codes(vs_id: str) -> list[tuple[str, str, str | None]]:
    """The codes of one of the lumbar guideline's shipped value sets, in file order: the
    cases use the guideline's own codes, never a copy of them."""
    doc = json.loads((LUMBAR_VALUESETS / f"{vs_id}.json").read_text(encoding="utf-8"))
    return [(c["system"], c["code"], c.get("red_flag")) for c in doc["codes"]]


def _first(vs_id: str, code: str | None = None) -> tuple[str, str]:
    system, found, _ = next(c for c in _codes(vs_id) if code is None or c[1] == code)
    return system, found


def _red_flag(flag: str) -> tuple[str, str]:
    return next((s, c) for s, c, f in _codes("red-flags") if f == flag)


def _coded(system: str, code: str) -> Resource:
    return {"coding": [{"system": system, "code": code}]}


def _bundle(resources: list[Resource]) -> Resource:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def _birth_date(case: TableCase) -> str:
    given = case.case.get("birth_date")
    if given is not None:
        return str(given)
    age = int(case.case["age"])
    on = case.date
    born = (
        on.replace(year=on.year - age)
        if (on.month, on.day) != (2, 29)
        else dt.date(on.year - age, 3, 1)
    )
    return born.isoformat()


def _condition(cid: str, system: str, code: str, onset: str) -> Resource:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": _coded(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
        ),
        "code": _coded(system, code),
        "subject": PATIENT,
        "onsetDateTime": onset,
    }


def _order(
    rid: str, coding: tuple[str, str], status: str, resource_type: str = "ServiceRequest"
) -> Resource:
    system, code = coding
    res: Resource = {
        "resourceType": resource_type,
        "id": rid,
        "status": status,
        "code": _coded(system, code),
        "subject": PATIENT,
    }
    if resource_type == "ServiceRequest":
        res["intent"] = "order"
    return res


def lumbar_prefetch(case: TableCase) -> tuple[dict[str, Resource], list[Resource]]:
    c = case.case
    onset = str(c["symptom_onset"])
    diagnosis = _first("lumbar-radiculopathy")
    conditions = [_condition("c1", *diagnosis, onset)] if c.get("signs") else []
    conditions += [
        _condition(f"rf{i}", *_red_flag(flag), onset)
        for i, flag in enumerate(c.get("red_flags", []))
    ]
    observations = []
    if c.get("severe_disabling_pain"):
        observations.append(
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": _coded(*_first("pain-intensity")),
                "subject": PATIENT,
                "effectiveDateTime": (case.date - dt.timedelta(days=1)).isoformat(),
                "valueQuantity": {"value": 8, "unit": "{score}"},
            }
        )
    procedures = [
        _order(f"pr{i}", _first(LUMBAR_ORDER_VALUESETS[kind]), "completed", "Procedure")
        for i, kind in enumerate(c.get("non_surgical_treatment", []))
    ]
    requests = []
    surgeon = c.get("spine_surgeon_assessment", "none")
    if surgeon == "referred":
        referral = _first("spine-surgeon-referral", "spine-surgeon-referral")
        requests.append(_order("sr1", referral, "active"))
    elif surgeon == "done":
        assessed = _first("spine-surgeon-referral", "spine-surgeon-assessment")
        procedures.append(_order("pr-s", assessed, "completed", "Procedure"))
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "birthDate": _birth_date(case)},
        "conditions": _bundle(conditions),
        "observations": _bundle(observations),
        "procedures": _bundle(procedures),
        "serviceRequests": _bundle(requests),
    }
    drafts = [
        _order(f"d{i}", _first(LUMBAR_ORDER_VALUESETS[kind]), "draft")
        for i, kind in enumerate(sorted(c.get("planned", [])))
    ]
    return prefetch, drafts


def fictional_prefetch(case: TableCase) -> tuple[dict[str, Resource], list[Resource]]:
    c = case.case
    score = {
        "resourceType": "Observation",
        "id": "s1",
        "status": "final",
        "code": _coded("urn:nkr:test:fiktiv", "score"),
        "subject": PATIENT,
        "effectiveDateTime": str(c["first_visit"]),
        "valueInteger": c["score"],
    }
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "birthDate": _birth_date(case)},
        "observations": _bundle([score]),
    }
    pill = ("urn:nkr:test:fiktiv", "pille")
    drafts = [_order(f"d{i}", pill, "draft") for i, _ in enumerate(c.get("planned", []))]
    return prefetch, drafts


PREFETCH: dict[str, Callable[[TableCase], tuple[dict[str, Resource], list[Resource]]]] = {
    "nkr-lumbal-radikulopati": lumbar_prefetch,
    "test-fiktiv-retningslinje": fictional_prefetch,
}


def hook_request(case: TableCase, hook: str) -> Resource:
    """The CDS Hooks request of ``hook`` for ``case``: the record as prefetch, its planned
    interventions as draft orders (all selected) on the order hooks."""
    prefetch, drafts = PREFETCH[case.guideline](case)
    context: Resource = {"userId": "Practitioner/1", "patientId": "p1"}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = _bundle(drafts)
    if hook == "order-select":
        context["selections"] = [f"ServiceRequest/{d['id']}" for d in drafts]
    return {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": context,
        "prefetch": prefetch,
    }


def apply_parameters(case: TableCase, lang: str | None = None) -> Resource:
    """The ``$apply`` Parameters of ``case``: the subject, and its record and planned
    interventions (draft requests) as the ``data`` Bundle."""
    prefetch, drafts = PREFETCH[case.guideline](case)
    resources: list[Resource] = []
    for value in prefetch.values():
        if value.get("resourceType") == "Bundle":
            resources += [e["resource"] for e in value.get("entry", [])]
        else:
            resources.append(value)
    resources += drafts
    data = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
    parameters: list[Resource] = [
        {"name": "subject", "valueString": PATIENT["reference"]},
        {"name": "data", "resource": data},
    ]
    if lang is not None:
        parameters.append({"name": "userLanguage", "valueCode": lang})
    return {"resourceType": "Parameters", "parameter": parameters}
