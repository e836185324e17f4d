"""FHIR R4 test data: small builders for the resources a CDS Hooks request carries.

Dates are relative to today in Denmark (the service's assessment date), so every boundary
(day 84 / 85, the 18th birthday) is exact whenever the tests run.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

Resource = dict[str, Any]

ICD10 = "http://hl7.org/fhir/sid/icd-10"
SKS = "urn:oid:1.2.208.176.2.4"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
LOCAL = "urn:nkr:local-orders"
# Codes a test deployment adds with NKR_VALUESET_DIR (the shipped red-flags value set has no
# code for these two red flags).
TEST_LOCAL = "urn:test:local-diagnoses"

SERVICE_IDS = {
    "patient-view": "nkr-lumbal-radikulopati-patient-view",
    "order-select": "nkr-lumbal-radikulopati-order-select",
    "order-sign": "nkr-lumbal-radikulopati-order-sign",
}

# What each draft-order type is coded as, and the card topic it raises.
ORDER_CODES: dict[str, tuple[str, str]] = {
    "mri": (SNOMED, "41333006"),
    "glucocorticoid_injection": (LOCAL, "glucocorticoid-injection"),
    "acupuncture": (SKS, "BAFA80"),
    "bed_rest": (SKS, "BLXA"),
    "supervised_exercise": (SNOMED, "229065009"),
    "specific_exercise": (LOCAL, "specific-exercise"),
    "manual_mobilisation": (SKS, "BLNG1"),
    "spine_surgeon_referral": (LOCAL, "spine-surgeon-referral"),
}
ORDER_TOPICS = {
    "mri": "mri",
    "glucocorticoid_injection": "glucocorticoid-injection",
    "acupuncture": "acupuncture",
    "bed_rest": "physical-activity",
}
RED_FLAG_CODES: dict[str, tuple[str, str]] = {
    "cauda_equina": (ICD10, "G83.4"),
    "suspected_fracture": (ICD10, "S32.0"),
    "suspected_infection": (SKS, "DM462"),
    "progressive_paresis": (TEST_LOCAL, "progressive-paresis"),
    "suspected_malignancy": (TEST_LOCAL, "suspected-malignancy"),
}
EXTRA_RED_FLAGS = {
    "id": "red-flags",
    "codes": [
        {
            "system": TEST_LOCAL,
            "code": "progressive-paresis",
            "provenance": "local: test deployment",
            "red_flag": "progressive_paresis",
        },
        {
            "system": TEST_LOCAL,
            "code": "suspected-malignancy",
            "provenance": "local: test deployment",
            "red_flag": "suspected_malignancy",
        },
    ],
}


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()


def days_ago(days: int) -> str:
    return (today() - dt.timedelta(days=days)).isoformat()


def birth_date_for_age(years: int, *, days_before_birthday: int = 0) -> str:
    """A birth date making the patient exactly ``years`` old today; with
    ``days_before_birthday``, that many days short of it (so one year younger)."""
    t = today()
    try:
        born = t.replace(year=t.year - years)
    except ValueError:  # 29 February
        born = dt.date(t.year - years, 3, 1)
    return (born + dt.timedelta(days=days_before_birthday)).isoformat()


def patient(pid: str = "p1", birth_date: str | None = None) -> Resource:
    return {
        "resourceType": "Patient",
        "id": pid,
        "birthDate": birth_date or birth_date_for_age(45),
    }


def condition(
    system: str,
    code: str,
    *,
    onset_days_ago: int | None = 20,
    recorded_days_ago: int | None = None,
    cid: str | None = None,
    clinical: str = "active",
    verification: str = "confirmed",
) -> Resource:
    res: Resource = {
        "resourceType": "Condition",
        "id": cid or f"c-{uuid.uuid4().hex[:8]}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if onset_days_ago is not None:
        res["onsetDateTime"] = days_ago(onset_days_ago)
    if recorded_days_ago is not None:
        res["recordedDate"] = days_ago(recorded_days_ago)
    return res


def radiculopathy(onset_days_ago: int | None = 20, **kwargs: Any) -> Resource:
    return condition(ICD10, "M54.1", onset_days_ago=onset_days_ago, **kwargs)


def red_flag(flag: str) -> Resource:
    system, code = RED_FLAG_CODES[flag]
    return condition(system, code, onset_days_ago=2)


def pain(score: int, days: int = 1, oid: str | None = None) -> Resource:
    return {
        "resourceType": "Observation",
        "id": oid or f"o-{uuid.uuid4().hex[:8]}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "72514-3"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": days_ago(days) + "T10:00:00+01:00",
        "valueQuantity": {"value": score, "unit": "{score}"},
    }


def vital(code: str, value: float, days: int) -> Resource:
    """An observation outside every value set (blood pressure, weight, ...)."""
    return {
        "resourceType": "Observation",
        "id": f"v-{uuid.uuid4().hex[:8]}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": days_ago(days) + "T09:30:00+01:00",
        "valueQuantity": {"value": value, "unit": "1"},
    }


def procedure(kind: str, status: str = "completed", days: int = 10) -> Resource:
    system, code = ORDER_CODES[kind]
    return {
        "resourceType": "Procedure",
        "id": f"pr-{uuid.uuid4().hex[:8]}",
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "performedDateTime": days_ago(days),
    }


def service_request(kind: str, rid: str, status: str = "draft") -> Resource:
    system, code = ORDER_CODES[kind]
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }


def bundle(resources: list[Resource]) -> Resource:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r} for r in resources],
    }


def hook_request(
    hook: str,
    *,
    pat: Resource | None = None,
    conditions: list[Resource] | None = None,
    observations: list[Resource] | None = None,
    procedures: list[Resource] | None = None,
    service_requests: list[Resource] | None = None,
    drafts: list[Resource] | None = None,
    selections: list[str] | None = None,
    prefetch: bool = True,
) -> dict[str, Any]:
    """A CDS Hooks 2.0 request for ``hook`` with every prefetch key filled in."""
    pat = pat or patient()
    context: dict[str, Any] = {"userId": "Practitioner/gp-1", "patientId": pat["id"]}
    if hook != "patient-view":
        drafts = drafts or []
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        }
    if hook == "order-select":
        context["selections"] = (
            selections
            if selections is not None
            else [f"{d['resourceType']}/{d['id']}" for d in drafts or []]
        )
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
    }
    if prefetch:
        body["prefetch"] = {
            "patient": pat,
            "conditions": bundle(conditions if conditions is not None else [radiculopathy()]),
            "observations": bundle(observations or []),
            "procedures": bundle(procedures or []),
            "serviceRequests": bundle(service_requests or []),
        }
    return body


def realistic_patient_resources() -> dict[str, list[Resource]]:
    """A patient with about 30 resources: the benchmark's and the load tests' prefetch.

    In scope (week 5), severe pain after supervised exercise: the spine-surgeon card is due.
    """
    conditions = [
        radiculopathy(onset_days_ago=30, cid="c-radic"),
        condition(ICD10, "I10", onset_days_ago=2000),
        condition(ICD10, "E11.9", onset_days_ago=1500),
        condition(ICD10, "J45.9", onset_days_ago=3000, clinical="inactive"),
    ]
    observations = [pain(9 - i % 3, days=1 + 2 * i) for i in range(6)]
    observations += [vital("8480-6", 120 + i, days=3 * i) for i in range(8)]
    observations += [vital("29463-7", 82.5 - i / 10, days=5 * i) for i in range(8)]
    procedures = [
        procedure("supervised_exercise", days=20),
        procedure("supervised_exercise", days=13),
        procedure("manual_mobilisation", days=9),
    ]
    service_requests = [
        service_request("supervised_exercise", "sr-1", status="completed"),
        service_request("manual_mobilisation", "sr-2", status="active"),
    ]
    return {
        "conditions": conditions,
        "observations": observations,
        "procedures": procedures,
        "serviceRequests": service_requests,
    }
