"""``PlanDefinition/$apply`` and the CapabilityStatement, in-process: what a call gives for a
patient (one Bundle per subject with a CarePlan, a RequestGroup of the recommendations that
apply now, option requests, a DetectedIssue per caution), and an OperationOutcome naming the
location for every bad call."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from starlette.testclient import TestClient

import nkr._clock
from tests.cases.fhir import apply_parameters
from tests.cases.table import CASES, TableCase
from tests.conftest import AppFactory
from tests.guidelines.install import fictional

__all__ = ["fictional"]

FHIR_JSON = "application/fhir+json"
LUMBAR = "nkr-lumbal-radikulopati"
PATHWAY = f"/fhir/PlanDefinition/{LUMBAR}/$apply"
STATUS = "urn:nkr:codesystem:nkr-recommendation-status"


def _case(name: str) -> TableCase:
    return next(c for c in CASES if c.name == name)


@pytest.fixture
def on_case_date(monkeypatch: pytest.MonkeyPatch) -> Any:
    def at(day: dt.date) -> None:
        noon = dt.datetime(day.year, day.month, day.day, 11, 0, tzinfo=dt.UTC)
        monkeypatch.setattr(nkr._clock, "utc_now", lambda: noon)

    return at


def post(client: TestClient | httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": FHIR_JSON, **headers})


def _of(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def _applying(bundle: dict[str, Any]) -> dict[str, str]:
    (group,) = _of(bundle, "RequestGroup")
    return {
        a["id"]: next(c["code"] for c in a["code"][0]["coding"] if c["system"] == STATUS)
        for a in group.get("action", [])
    }


def test_metadata_lists_exactly_what_is_served(app_client: TestClient) -> None:
    response = app_client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    statement = response.json()
    get_fhir_model_class("CapabilityStatement").model_validate(statement)
    (rest,) = statement["rest"]
    served = {r["type"]: r for r in rest["resource"]}
    assert set(served) == {"ValueSet", "PlanDefinition", "ActivityDefinition"}
    for resource_type, entry in served.items():
        assert [i["code"] for i in entry["interaction"]] == ["read", "search-type"]
        # Every search parameter listed is honoured, and a read answers.
        for param in entry["searchParam"]:
            assert (
                app_client.get(f"/fhir/{resource_type}", params={param["name"]: "x"}).status_code
                == 200
            )
        first = app_client.get(f"/fhir/{resource_type}").json()["entry"][0]["resource"]
        assert app_client.get(f"/fhir/{resource_type}/{first['id']}").json() == first
    assert served["PlanDefinition"]["operation"][0]["name"] == "apply"
    assert "operation" not in served["ValueSet"]


def test_plan_definitions_search_by_url_and_status(app_client: TestClient) -> None:
    url = f"urn:nkr:plandefinition:{LUMBAR}-mri"
    found = app_client.get("/fhir/PlanDefinition", params={"url": url}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [f"{LUMBAR}-mri"]
    assert app_client.get("/fhir/PlanDefinition", params={"status": "active"}).json()["total"] == 0
    retired = app_client.get("/fhir/PlanDefinition", params={"status": "retired"}).json()
    assert retired["total"] == 18
    activity = app_client.get(f"/fhir/ActivityDefinition/{LUMBAR}-mri").json()
    assert activity["kind"] == "ServiceRequest"
    missing = app_client.get("/fhir/ActivityDefinition/nope")
    assert missing.status_code == 404
    assert missing.json()["issue"][0]["expression"] == ["ActivityDefinition.id"]


def test_apply_gives_one_bundle_with_careplan_requestgroup_and_option_requests(
    app_client: TestClient, on_case_date: Any
) -> None:
    case = _case("bed rest, acupuncture and an injection planned: three cautions")
    on_case_date(case.date)
    response = post(app_client, PATHWAY, apply_parameters(case))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    bundle = response.json()
    get_fhir_model_class("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    assert bundle["type"] == "collection"
    care_plan = bundle["entry"][0]["resource"]
    assert care_plan["resourceType"] == "CarePlan"
    assert care_plan["instantiatesCanonical"] == [f"urn:nkr:plandefinition:{LUMBAR}"]
    assert care_plan["note"][0]["text"].startswith("Ikke gældende: ")
    (group,) = _of(bundle, "RequestGroup")
    assert care_plan["activity"][0]["reference"]["reference"] == f"urn:uuid:{group['id']}"
    statuses = _applying(bundle)
    assert statuses == {
        "physical-activity": "caution",
        "supervised-exercise": "applies",
        "specific-exercise": "applies",
        "combined-exercise": "applies",
        "manual-mobilisation": "applies",
        "acupuncture": "caution",
        "exercise-or-mobilisation": "applies",
        "mri": "applies",
        "glucocorticoid-injection": "caution",
    }
    requests = _of(bundle, "ServiceRequest")
    assert requests
    assert {r["intent"] for r in requests} == {"option"}
    # R4's CommunicationRequest has no intent: the CPG profile's extension says it.
    (talk,) = _of(bundle, "CommunicationRequest")
    assert talk["modifierExtension"] == [
        {
            "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-CommunicationRequest.intent",
            "valueCode": "option",
        }
    ]
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    for action in group["action"]:
        refs = (
            [action["resource"]]
            if "resource" in action
            else [a["resource"] for a in action["action"]]
        )
        assert {r["reference"] for r in refs} <= full_urls
    # A caution: a DetectedIssue implicating the option request and the draft order.
    issues = _of(bundle, "DetectedIssue")
    assert len(issues) == 3
    for issue in issues:
        assert issue["code"]["coding"][0] == {"system": STATUS, "code": "caution"}
        implicated = {i["reference"] for i in issue["implicated"]}
        assert any(r.startswith("urn:uuid:") for r in implicated)
        assert any(r.startswith("ServiceRequest/d") for r in implicated)
    # A recommendation against: its activity is not to be done.
    injection = next(
        r
        for r in _of(bundle, "ServiceRequest")
        if r["instantiatesCanonical"][0].endswith("-glucocorticoid-injection")
    )
    assert injection["doNotPerform"] is True


def test_apply_speaks_the_user_language(app_client: TestClient, on_case_date: Any) -> None:
    case = _case("GP, week 3, leg pain, no severe pain")
    on_case_date(case.date)
    da = post(app_client, PATHWAY, apply_parameters(case)).json()
    en = post(app_client, PATHWAY, apply_parameters(case, "en")).json()
    (group_da,) = _of(da, "RequestGroup")
    (group_en,) = _of(en, "RequestGroup")
    assert group_da["action"][0]["description"].startswith("Overvej")
    assert group_en["action"][0]["description"].startswith("Consider")


def test_a_strategy_or_a_recommendation_applies_only_its_own(
    app_client: TestClient, on_case_date: Any
) -> None:
    case = _case("MRI planned, week 4, no severe pain: caution and the condition")
    on_case_date(case.date)
    strategy = post(
        app_client, f"/fhir/PlanDefinition/{LUMBAR}-mri-strategy/$apply", apply_parameters(case)
    )
    assert _applying(strategy.json()) == {"mri": "caution"}
    one = post(
        app_client,
        f"/fhir/PlanDefinition/{LUMBAR}-supervised-exercise/$apply",
        apply_parameters(case),
    )
    assert _applying(one.json()) == {"supervised-exercise": "applies"}


def test_type_level_apply_takes_the_url(app_client: TestClient, on_case_date: Any) -> None:
    case = _case("MRI planned, week 4, no severe pain: caution and the condition")
    on_case_date(case.date)
    params = apply_parameters(case)
    params["parameter"].append(
        {"name": "url", "valueCanonical": f"urn:nkr:plandefinition:{LUMBAR}-mri|1.1"}
    )
    response = post(app_client, "/fhir/PlanDefinition/$apply", params)
    assert response.status_code == 200
    assert _applying(response.json()) == {"mri": "caution"}


def test_several_subjects_get_one_bundle_each(app_client: TestClient, on_case_date: Any) -> None:
    case = _case("GP, week 3, leg pain, no severe pain")
    on_case_date(case.date)
    params = apply_parameters(case)
    data = params["parameter"][1]["resource"]
    other = copy.deepcopy(data["entry"])
    for entry in other:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["id"] = "p2"
            resource["birthDate"] = "2015-01-01"  # a child: outside the guideline
        else:
            resource["subject"] = {"reference": "Patient/p2"}
    data["entry"] += other
    params["parameter"].insert(1, {"name": "subject", "valueString": "Patient/p2"})
    answer = post(app_client, PATHWAY, params).json()
    assert answer["resourceType"] == "Parameters"
    first, second = (p["resource"] for p in answer["parameter"])
    assert len(_applying(first)) == 9
    assert _applying(second) == {}
    assert _of(second, "CarePlan")[0]["subject"] == {"reference": "Patient/p2"}


@pytest.mark.usefixtures("fictional")
def test_apply_works_for_the_fictional_guideline(
    app_factory: AppFactory, on_case_date: Any
) -> None:
    from tests.conftest import in_process

    case = next(
        c for c in CASES if c.guideline == "test-fiktiv-retningslinje" and c.cards is not None
    )
    on_case_date(case.date)
    import tempfile
    from pathlib import Path

    with in_process({}, Path(tempfile.mkdtemp())) as client:
        response = post(
            client, "/fhir/PlanDefinition/test-fiktiv-retningslinje/$apply", apply_parameters(case)
        )
        assert response.status_code == 200, response.text
        bundle = response.json()
        get_fhir_model_class("Bundle").model_validate(bundle)
        expected = {
            r: s
            for r, s in case.expected_statuses(
                ["fiktiv-samtale", "fiktiv-pille", "fiktiv-opfoelgning"]
            ).items()
            if s in ("applies", "caution", "due", "overdue")
        }
        assert _applying(bundle) == expected


def _good(case_name: str = "GP, week 3, leg pain, no severe pain") -> dict[str, Any]:
    return apply_parameters(_case(case_name))


def _without(name: str) -> dict[str, Any]:
    params = _good()
    params["parameter"] = [p for p in params["parameter"] if p["name"] != name]
    return params


def _data_as(resource: Any) -> dict[str, Any]:
    params = _good()
    params["parameter"][1]["resource"] = resource
    return params


def _bad_entry() -> dict[str, Any]:
    params = _good()
    params["parameter"][1]["resource"]["entry"][0]["resource"]["birthDate"] = 1980
    return params


@pytest.mark.parametrize(
    ("path", "body", "status", "expression"),
    [
        (PATHWAY, _without("subject"), 400, "Parameters.parameter.where(name = 'subject')"),
        (PATHWAY, _without("data"), 400, "Parameters.parameter.where(name = 'data')"),
        (
            PATHWAY,
            _data_as({"resourceType": "Patient", "id": "p1"}),
            400,
            "Parameters.parameter[1].resource",
        ),
        (PATHWAY, _data_as([1, 2]), 400, "Parameters.parameter[1].resource"),
        (
            PATHWAY,
            _bad_entry(),
            400,
            "Parameters.parameter[1].resource.entry[0].resource.birthDate",
        ),
        (PATHWAY, {"resourceType": "Bundle"}, 400, "Parameters.resourceType"),
        (PATHWAY, b"{not json", 400, "Parameters"),
        (
            PATHWAY,
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "subject", "valueString": "Group/1"}],
            },
            400,
            "Parameters.parameter[0].valueString",
        ),
        (
            PATHWAY,
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "subject", "valueString": "Patient/p1"},
                    {"name": "userLanguage", "valueCode": "fr"},
                ],
            },
            400,
            "Parameters.parameter[1].valueCode",
        ),
        ("/fhir/PlanDefinition/no-such/$apply", _good(), 404, "PlanDefinition.id"),
        ("/fhir/PlanDefinition/$apply", _good(), 400, "Parameters.parameter.where(name = 'url')"),
    ],
    ids=[
        "no-subject",
        "no-data",
        "data-not-a-bundle",
        "data-not-an-object",
        "bad-resource-in-data",
        "not-parameters",
        "not-json",
        "subject-not-a-patient",
        "unknown-language",
        "unknown-plan-definition",
        "type-level-without-url",
    ],
)
def test_bad_calls_get_an_operation_outcome_naming_the_location(
    app_client: TestClient, path: str, body: Any, status: int, expression: str
) -> None:
    response = post(app_client, path, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = response.json()
    get_fhir_model_class("OperationOutcome").model_validate(outcome)
    (issue,) = outcome["issue"]
    assert issue["expression"] == [expression]
    assert response.headers["cache-control"] == "no-store"


def test_an_unknown_url_is_not_found(app_client: TestClient) -> None:
    params = _good()
    params["parameter"].append({"name": "url", "valueUri": "urn:nkr:plandefinition:nope"})
    response = post(app_client, "/fhir/PlanDefinition/$apply", params)
    assert response.status_code == 404
    assert response.json()["issue"][0]["expression"] == ["Parameters.parameter.where(name = 'url')"]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/fhir+xml",
        "application/fhir+json; charset=latin-1",
    ],
)
def test_a_body_not_sent_as_fhir_json_is_refused(app_client: TestClient, content_type: str) -> None:
    response = post(app_client, PATHWAY, _good(), **{"content-type": content_type})
    assert response.status_code == 415
    assert response.json()["issue"][0]["code"] == "not-supported"


def test_plain_json_is_accepted_too(app_client: TestClient, on_case_date: Any) -> None:
    on_case_date(_case("GP, week 3, leg pain, no severe pain").date)
    response = post(app_client, PATHWAY, _good(), **{"content-type": "application/json"})
    assert response.status_code == 200


def test_an_oversized_body_is_refused_by_the_apps_limit(app_factory: AppFactory) -> None:
    client = app_factory({"NKR_MAX_BODY_BYTES": "2000"})
    params = _good()
    params["parameter"].append({"name": "padding", "valueString": "x" * 5000})
    response = post(client, PATHWAY, params)
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-costly"


def test_metadata_names_every_fhir_route_of_the_app_and_no_other(app_client: TestClient) -> None:
    statement = app_client.get("/fhir/metadata").json()
    (rest,) = statement["rest"]
    listed = {r["type"] for r in rest["resource"]}
    operations = {(r["type"], o["name"]) for r in rest["resource"] for o in r.get("operation", [])}
    openapi = app_client.get("/openapi.json").json()["paths"]
    paths = [p for p in openapi if p.startswith("/fhir/") and p != "/fhir/metadata"]
    assert {p.split("/")[2] for p in paths} == listed
    assert {(p.split("/")[2], "apply") for p in paths if p.endswith("$apply")} == operations


def test_the_canonical_base_setting_reaches_what_is_served(
    app_factory: AppFactory, on_case_date: Any
) -> None:
    client = app_factory({"NKR_CANONICAL_BASE": "https://fhir.example.dk/nkr/"})
    base = "https://fhir.example.dk/nkr"
    plan = client.get(f"/fhir/PlanDefinition/{LUMBAR}-mri").json()
    assert plan["url"] == f"{base}/PlanDefinition/{LUMBAR}-mri"
    found = client.get("/fhir/PlanDefinition", params={"url": plan["url"]}).json()
    assert found["total"] == 1
    vs = client.get("/fhir/ValueSet/mri-lumbar-spine").json()
    assert vs["url"] == f"{base}/ValueSet/mri-lumbar-spine"
    case = _case("MRI planned, week 4, no severe pain: caution and the condition")
    on_case_date(case.date)
    bundle = post(client, f"/fhir/PlanDefinition/{LUMBAR}-mri/$apply", apply_parameters(case))
    (group,) = _of(bundle.json(), "RequestGroup")
    assert group["action"][0]["code"][0]["coding"][0]["system"] == (
        f"{base}/CodeSystem/nkr-recommendation-status"
    )


def test_a_bad_canonical_base_stops_the_export_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nkr._cli import main

    monkeypatch.setenv("NKR_CANONICAL_BASE", "not a url")
    assert main(["export", "fhir"]) == 2
    assert capsys.readouterr().err.startswith("nkr: error: setting NKR_CANONICAL_BASE: ")
