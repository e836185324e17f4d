"""A case of the table as the FHIR an EHR would send: the CDS Hooks request of one hook, with
its prefetch. One small translation per guideline; a case that FHIR cannot say (a sign other
than a coded diagnosis gives, a red flag without a shipped code) has no ``cards`` in the
table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from tests.cases.table import TableCase

Resource = dict[str, Any]

ICD10 = "http://hl7.org/fhir/sid/icd-10"
SKS = "urn:oid:1.2.208.176.2.4"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
LOCAL = "urn:nkr:local-orders"
PATIENT = {"reference": "Patient/p1"}

# The codes of the lumbar guideline's shipped value sets that the cases use.
LUMBAR_ORDERS: dict[str, tuple[str, str]] = {
    "mri": (SNOMED, "41333006"),
    "glucocorticoid_injection": (LOCAL, "glucocorticoid-injection"),
    "acupuncture": (SKS, "BAFA80"),
    "bed_rest": (SKS, "BLXA"),
    "supervised_exercise": (SNOMED, "229065009"),
    "specific_exercise": (LOCAL, "specific-exercise"),
    "manual_mobilisation": (SKS, "BLNG1"),
    "spine_surgeon_referral": (LOCAL, "spine-surgeon-referral"),
}
LUMBAR_RED_FLAGS: dict[str, tuple[str, str]] = {
    "cauda_equina": (ICD10, "G83.4"),
    "suspected_fracture": (ICD10, "S32.0"),
    "suspected_infection": (SKS, "DM462"),
}


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


def _order(rid: str, kind: str, status: str, resource_type: str = "ServiceRequest") -> Resource:
    system, code = LUMBAR_ORDERS.get(kind, (LOCAL, kind))
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
    conditions = [_condition("c1", ICD10, "M54.1", onset)] if c.get("signs") else []
    conditions += [
        _condition(f"rf{i}", *LUMBAR_RED_FLAGS[flag], onset)
        for i, flag in enumerate(c.get("red_flags", []))
    ]
    observations = []
    if c.get("severe_disabling_pain"):
        observations.append(
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": _coded(LOINC, "72514-3"),
                "subject": PATIENT,
                "effectiveDateTime": (case.date - dt.timedelta(days=1)).isoformat(),
                "valueQuantity": {"value": 8, "unit": "{score}"},
            }
        )
    procedures = [
        _order(f"pr{i}", kind, "completed", "Procedure")
        for i, kind in enumerate(c.get("non_surgical_treatment", []))
    ]
    requests = []
    surgeon = c.get("spine_surgeon_assessment", "none")
    if surgeon == "referred":
        requests.append(_order("sr1", "spine_surgeon_referral", "active"))
    elif surgeon == "done":
        procedures.append(_order("pr-s", "spine-surgeon-assessment", "completed", "Procedure"))
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1", "birthDate": _birth_date(case)},
        "conditions": _bundle(conditions),
        "observations": _bundle(observations),
        "procedures": _bundle(procedures),
        "serviceRequests": _bundle(requests),
    }
    drafts = [_order(f"d{i}", kind, "draft") for i, kind in enumerate(sorted(c.get("planned", [])))]
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
    return prefetch, []


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
