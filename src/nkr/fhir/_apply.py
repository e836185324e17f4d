"""``PlanDefinition/$apply`` (HL7 CPG 2.0 ``cpg-plandefinition-apply``), generic.

In: a Parameters resource with ``subject`` (``Patient/<id>``, one or more), the patients' data
as ``data`` (a Bundle) and optionally ``userLanguage`` (``da`` or ``en``). Each subject's
resources (its Patient, and what refers to it as ``subject`` or ``patient``) are read by
:func:`nkr.fhir._read.record_from_resources` into a :class:`~nkr.fhir.PatientRecord`; request
resources in ``status = draft`` are its draft orders, as CDS Hooks' ``draftOrders``. The
guideline reads the record (``package.read_record``) and assesses the case
(``package.evaluate``): the same functions as the CDS Hooks cards.

Out: per subject one ``collection`` Bundle with a CarePlan, a RequestGroup whose actions are
the recommendations (of the PlanDefinition applied) that apply now (status applies, caution,
due or overdue, as the action's ``code`` says), a request (``intent = option``) per activity
of each, and a DetectedIssue per caution (``implicated``: the request and the draft order it
is about) and per notice. docs/fhir-artifacts.md documents the representation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from nkr._assessment import Assessment, RecommendationResult, RecStatus
from nkr._errors import InputError
from nkr._guideline import Lang
from nkr.cdshooks._kit import TOPIC_SYSTEM
from nkr.fhir._artifacts import STATUS_CS, Artifacts
from nkr.fhir._read import record_from_resources

if TYPE_CHECKING:
    from nkr._package import GuidelinePackage
    from nkr.fhir._reading import FhirReading

Resource = dict[str, Any]

# The statuses that put a recommendation in the RequestGroup: it applies now.
APPLY_NOW: Final = frozenset(
    {RecStatus.APPLIES, RecStatus.CAUTION, RecStatus.DUE, RecStatus.OVERDUE}
)
# Request resources whose draft is a draft order (CDS Hooks' draftOrders).
_REQUESTS: Final = frozenset(
    {
        "ServiceRequest",
        "MedicationRequest",
        "CommunicationRequest",
        "DeviceRequest",
        "NutritionOrder",
        "VisionPrescription",
        "SupplyRequest",
        "ImmunizationRecommendation",
    }
)
_PARAM: Final = "Parameters.parameter"
EXT_INSTANTIATES: Final = "http://hl7.org/fhir/StructureDefinition/workflow-instantiatesCanonical"
EXT_INTENT: Final = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-CommunicationRequest.intent"
)


def _missing(name: str) -> InputError:
    return InputError(f"{_PARAM}.where(name = '{name}')", f"the parameter '{name}' is required")


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """The parameters of one call, checked."""

    subjects: tuple[str, ...]
    data: Resource
    data_at: str
    lang: Lang
    url: str | None


def _string(param: Mapping[str, Any], at: str, *kinds: str) -> str:
    for kind in kinds:
        value = param.get(f"value{kind}")
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{at}.value{kind}", "expected a non-empty string")
            return value.strip()
    raise InputError(at, f"expected value{' or value'.join(kinds)}")


def parse_parameters(body: bytes) -> ApplyRequest:
    """The Parameters of a call; InputError at the parameter at fault."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InputError("Parameters", "the body is not JSON") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Parameters":
        raise InputError("Parameters.resourceType", "expected a Parameters resource")
    params = doc.get("parameter", [])
    if not isinstance(params, list):
        raise InputError(_PARAM, "expected a list of parameters")
    subjects: list[str] = []
    data: tuple[Resource, str] | None = None
    lang: Lang = "da"
    url: str | None = None
    for i, param in enumerate(params):
        at = f"{_PARAM}[{i}]"
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise InputError(f"{at}.name", "expected a parameter with a name")
        name = param["name"]
        if name == "subject":
            subject = _string(param, at, "String", "Reference")
            if not subject.startswith("Patient/") or len(subject) <= len("Patient/"):
                raise InputError(f"{at}.valueString", "expected a reference 'Patient/<id>'")
            subjects.append(subject)
        elif name == "data":
            resource = param.get("resource")
            if not isinstance(resource, dict) or resource.get("resourceType") != "Bundle":
                raise InputError(f"{at}.resource", "expected a Bundle of the patients' data")
            if data is not None:
                raise InputError(at, "the parameter 'data' is given twice")
            data = (resource, f"{at}.resource")
        elif name == "userLanguage":
            given = param.get("valueCode") or param.get("valueString")
            concept = param.get("valueCodeableConcept")
            if given is None and isinstance(concept, dict):
                codings = concept.get("coding") or [{}]
                given = codings[0].get("code") if isinstance(codings[0], dict) else None
            code = str(given or "").lower().partition("-")[0]
            if code not in ("da", "en"):
                raise InputError(f"{at}.valueCode", "expected the language 'da' or 'en'")
            lang = "da" if code == "da" else "en"
        elif name == "url":
            url = _string(param, at, "Canonical", "Uri", "String").partition("|")[0]
    if not subjects:
        raise _missing("subject")
    if data is None:
        raise _missing("data")
    return ApplyRequest(tuple(subjects), data[0], data[1], lang, url)


def _of_subject(resource: Mapping[str, Any], subject: str) -> bool:
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource.get('id')}" == subject
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict):
            return ref.get("reference") == subject
    return True


def read_subject(
    package: GuidelinePackage, data: Resource, data_at: str, subject: str, on: dt.date
) -> FhirReading:
    """The guideline's reading of one subject's resources in ``data``."""
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise InputError(f"{data_at}.entry", "expected a list of entries")
    resources: list[Any] = []
    at: list[str] = []
    drafts: list[Any] = []
    drafts_at: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{data_at}.entry[{i}].resource"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise InputError(where, "expected a resource")
        if not _of_subject(resource, subject):
            continue
        draft = resource.get("status") == "draft" and resource.get("resourceType") in _REQUESTS
        (drafts if draft else resources).append(resource)
        (drafts_at if draft else at).append(where)
    record = record_from_resources(
        resources, draft_orders=drafts, locations=at, draft_locations=drafts_at
    )
    return package.read_record(record, on)


class _Out:
    """One subject's Bundle, built up."""

    def __init__(self, subject: str) -> None:
        self.subject = {"reference": subject}
        self.entries: list[Resource] = []

    def add(self, resource: Resource) -> dict[str, str]:
        rid = str(uuid.uuid4())
        resource = {"resourceType": resource.pop("resourceType"), "id": rid, **resource}
        self.entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": resource})
        return {"reference": f"urn:uuid:{rid}"}


def _request(
    definition: Resource, title: str, subject: Mapping[str, str], not_done: bool
) -> Resource:
    """An option request for an activity. An R4 CommunicationRequest has neither
    ``instantiatesCanonical`` nor ``intent``: it carries them as the CPG profile
    (cpg-communicationrequest) does, as extensions."""
    if definition["kind"] == "CommunicationRequest":
        request: Resource = {
            "resourceType": "CommunicationRequest",
            "extension": [{"url": EXT_INSTANTIATES, "valueCanonical": definition["url"]}],
            "modifierExtension": [{"url": EXT_INTENT, "valueCode": "option"}],
            "status": "draft",
            "subject": subject,
            "payload": [{"contentString": title}],
        }
    else:
        request = {
            "resourceType": definition["kind"],
            "instantiatesCanonical": [definition["url"]],
            "status": "draft",
            "intent": "option",
            "code": definition["code"],
            "subject": subject,
        }
    if not_done:
        request["doNotPerform"] = True
    return request


def subject_bundle(
    package: GuidelinePackage,
    artifacts: Artifacts,
    plan: Resource,
    subject: str,
    reading: FhirReading,
    on: dt.date,
    lang: Lang,
) -> Resource:
    """The Bundle of one subject: CarePlan, RequestGroup, requests and DetectedIssues."""
    out = _Out(subject)
    g = package.content
    notes = [{"text": n.text(package.texts, lang, g)} for n in reading.notes]
    assessment: Assessment | None = (
        None if reading.case is None else package.evaluate(reading.case, on)
    )
    actions: list[Resource] = []
    if assessment is not None:
        for notice in assessment.notices:
            text = f"{assessment.text(notice.title, lang)}: {assessment.text(notice.text, lang)}"
            out.add(
                {
                    "resourceType": "DetectedIssue",
                    "status": "preliminary",
                    "code": {"coding": [{"system": TOPIC_SYSTEM, "code": notice.topic}]},
                    "severity": "high" if notice.critical else "moderate",
                    "patient": out.subject,
                    "identifiedDateTime": on.isoformat(),
                    "detail": text,
                }
            )
        covered = set(artifacts.covers[plan["id"]])
        for result in assessment.results:
            if result.recommendation.id in covered and result.status in APPLY_NOW:
                actions.append(_action(package, artifacts, result, assessment, reading, out, lang))
    group: Resource = {
        "resourceType": "RequestGroup",
        "instantiatesCanonical": [plan["url"]],
        "status": "draft",
        "intent": "proposal",
        "subject": out.subject,
        "authoredOn": on.isoformat(),
    }
    if notes:
        group["note"] = notes
    if actions:
        group["action"] = actions
    group_ref = out.add(group)
    care_plan: Resource = {
        "resourceType": "CarePlan",
        "instantiatesCanonical": [plan["url"]],
        "status": "draft",
        "intent": "proposal",
        "title": artifacts.titles[plan["url"]](lang),
        "subject": out.subject,
        "created": on.isoformat(),
        "activity": [{"reference": group_ref}],
    }
    # A guideline no longer in force says so, as every page and card does.
    status = [] if g.status.in_force else [{"text": g.status.text(lang)}]
    if status or notes:
        care_plan["note"] = status + notes
    out.add(care_plan)
    # The CarePlan first, as the CPG's apply returns it.
    out.entries.insert(0, out.entries.pop())
    return {"resourceType": "Bundle", "type": "collection", "entry": out.entries}


def _action(
    package: GuidelinePackage,
    artifacts: Artifacts,
    result: RecommendationResult,
    assessment: Assessment,
    reading: FhirReading,
    out: _Out,
    lang: Lang,
) -> Resource:
    rec = result.recommendation
    status_url = artifacts.canonicals.url("CodeSystem", STATUS_CS)
    definition = artifacts.recommendations[rec.id]
    action: Resource = {
        "id": rec.id,
        "extension": artifacts.grades[rec.id],
        "title": rec.label(lang),
        "description": rec.wording(lang),
        "textEquivalent": assessment.text(result.reason, lang),
        "code": [{"coding": [{"system": status_url, "code": result.status.value}]}],
        "documentation": [
            {
                "type": "derived-from",
                "display": rec.label(lang),
                "resource": definition["url"],
            }
        ],
    }
    for deadline in assessment.deadlines:
        if deadline.recommendation == rec.id:
            action["timingDateTime"] = deadline.date.isoformat()
    links = package.cpg.recommendations.get(rec.id)
    refs: list[dict[str, str]] = []
    if links is not None:
        not_done = links.not_performed(rec.direction)
        for activity_id in links.activities:
            activity = artifacts.activities[activity_id]
            title = artifacts.titles[activity["url"]](lang)
            request = _request(activity, title, out.subject, activity_id in not_done)
            refs.append(out.add(request))
        if len(refs) == 1:
            action["resource"] = refs[0]
        else:
            action["selectionBehavior"] = links.selection
            action["action"] = [{"resource": ref} for ref in refs]
    if result.status is RecStatus.CAUTION:
        implicated = [*refs]
        implicated += [
            {"reference": o.reference}
            for o in reading.orders
            if o.reference is not None and o.concerns == result.concerns
        ]
        out.add(
            {
                "resourceType": "DetectedIssue",
                "status": "preliminary",
                "code": {"coding": [{"system": status_url, "code": "caution"}]},
                "severity": "moderate",
                "patient": out.subject,
                "identifiedDateTime": assessment.date.isoformat(),
                "implicated": implicated,
                "detail": assessment.text(result.reason, lang),
                "reference": artifacts.guideline.source.url,
            }
        )
    return action


def apply(
    package: GuidelinePackage,
    artifacts: Artifacts,
    plan: Resource,
    call: ApplyRequest,
    on: dt.date,
) -> Resource:
    """The answer to one call: the subject's Bundle, or for several subjects a Parameters
    with one ``return`` Bundle each."""
    bundles = [
        subject_bundle(
            package,
            artifacts,
            plan,
            subject,
            read_subject(package, call.data, call.data_at, subject, on),
            on,
            call.lang,
        )
        for subject in call.subjects
    ]
    if len(bundles) == 1:
        return bundles[0]
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "return", "resource": b} for b in bundles],
    }
