"""The OpenAPI document tells the truth: schemathesis's conformance checks against the real
server, from the app's own ``/openapi.json``.

Each operation (CDS Hooks and FHIR) gets positive cases (requests that follow the documented
schema) and negative ones (requests that break it), a bounded number of each. Every answer
must have a documented status, content type, body and headers; positive cases must be
accepted (2xx, or for feedback any documented answer) and negative ones refused with a 4xx.

What JSON Schema cannot say is arranged before the request is sent, only where the generated
value is already valid (so no negative case is turned into a valid one): ``selections`` of
order-select name entries of its ``draftOrders``, and feedback names a card this service
issued (so it is not refused as unknown, after the one-second wait for other workers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.specs.openapi import checks as openapi_checks

from nkr._app import create_app
from nkr._settings import Settings

from .conftest import Cds, ServerFactory
from .fhir_data import (
    SERVICE_IDS,
    hook_request,
    pain,
    radiculopathy,
    service_request,
)

EXAMPLES_PER_MODE = 20
CLOSED_PORT = "http://127.0.0.1:9"
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Check = Callable[..., bool | None]

# Refusals a negative case may get besides schemathesis's defaults: 412 (a prefetch key left
# out), 413 (too large) and 431 (headers too large) are refusals too.
CONFIG = {
    "checks": {
        "negative_data_rejection": {
            "expected-statuses": [400, 401, 404, 405, 409, 412, 413, 415, 422, 431]
        }
    }
}
CONFORMANCE: list[Check] = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]


# Every operation of the document: discovery, a call and a feedback operation per service,
# ValueSet search and read.
OPERATIONS = [
    ("GET", "/cds-services"),
    *[
        ("POST", f"/cds-services/{sid}{end}")
        for sid in SERVICE_IDS.values()
        for end in ("", "/feedback")
    ],
    ("GET", "/fhir/ValueSet"),
    ("GET", "/fhir/ValueSet/{vs_id}"),
    ("GET", "/fhir/metadata"),
    *[
        (method, f"/fhir/{rtype}{end}")
        for rtype in ("PlanDefinition", "ActivityDefinition")
        for method, end in (("GET", ""), ("GET", "/{resource_id}"))
    ],
    ("POST", "/fhir/PlanDefinition/{plan_id}/$apply"),
    ("POST", "/fhir/PlanDefinition/$apply"),
]
# Nothing in these GETs can be made invalid: no negative cases.
NO_NEGATIVE = {
    ("GET", "/cds-services"),
    ("GET", "/fhir/ValueSet/{vs_id}"),
    ("GET", "/fhir/metadata"),
    ("GET", "/fhir/PlanDefinition/{resource_id}"),
    ("GET", "/fhir/ActivityDefinition/{resource_id}"),
}


@pytest.fixture(scope="module")
def cds(server_factory: ServerFactory, valueset_dir: Path) -> Cds:
    """A real server (schemathesis sends its cases over HTTP), with the test deployment's
    extra value sets."""
    return Cds(server_factory({"NKR_VALUESET_DIR": str(valueset_dir)}))


@pytest.fixture(scope="module")
def operations(cds: Cds) -> dict[tuple[str, str], Operation]:
    schema = schemathesis.openapi.from_url(
        f"{cds.base}/openapi.json", config=SchemathesisConfig.from_dict(CONFIG)
    )
    found: dict[tuple[str, str], Operation] = {}
    for result in schema.include(path_regex="^/(cds-services|fhir)").get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        found[(operation.method.upper(), operation.path)] = operation
    return found


def test_every_operation_is_checked(operations: dict[tuple[str, str], Operation]) -> None:
    assert sorted(operations) == sorted(OPERATIONS)


@pytest.fixture(scope="module")
def issued_cards(cds: Cds) -> dict[str, str]:
    """A card each service issued, for feedback to name."""
    drafts = [service_request("mri", "sr-1")]
    bodies = {
        "patient-view": hook_request(
            "patient-view", conditions=[radiculopathy()], observations=[pain(8)]
        ),
        "order-select": hook_request("order-select", drafts=drafts),
        "order-sign": hook_request("order-sign", drafts=drafts),
    }
    cards = {SERVICE_IDS[hook]: cds.cards(hook, body)[0]["uuid"] for hook, body in bodies.items()}
    time.sleep(1.5)  # the issued cards are written within a second
    return cards


def _draft_refs(context: dict[str, Any]) -> list[str]:
    drafts = context.get("draftOrders")
    entries = drafts.get("entry") if isinstance(drafts, dict) else None
    refs: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                refs.append(f"{rtype}/{rid}")
    return refs


def _arrange(case: schemathesis.Case[Any], issued_cards: dict[str, str]) -> None:
    """What JSON Schema cannot say, arranged only where the generated value is valid."""
    body: Any = case.body  # JSON, of any shape the generator made
    if not isinstance(body, dict):
        return
    server = body.get("fhirServer")
    if isinstance(server, str) and server.startswith(("http://", "https://")):
        body["fhirServer"] = CLOSED_PORT  # nothing leaves loopback
    context: Any = body.get("context")
    selections = context.get("selections") if isinstance(context, dict) else None
    if isinstance(selections, list) and all(isinstance(s, str) for s in selections):
        assert isinstance(context, dict)
        context["selections"] = _draft_refs(context)[: len(selections) or 1]
    service = case.path.removeprefix("/cds-services/").removesuffix("/feedback")
    items = body.get("feedback") if case.path.endswith("/feedback") else None
    item: Any
    for item in items if isinstance(items, list) else []:
        card = item.get("card") if isinstance(item, dict) else None
        if isinstance(card, str) and 0 < len(card) <= 200:
            item["card"] = issued_cards[service]


@pytest.mark.parametrize(
    ("mode", "method", "path"),
    [
        (mode, method, path)
        for mode in schemathesis.GenerationMode
        for method, path in OPERATIONS
        if not (mode is schemathesis.GenerationMode.NEGATIVE and (method, path) in NO_NEGATIVE)
    ],
)
def test_the_openapi_document_tells_the_truth(
    operations: dict[tuple[str, str], Operation],
    issued_cards: dict[str, str],
    mode: schemathesis.GenerationMode,
    method: str,
    path: str,
) -> None:
    operation = operations[(method, path)]
    checks = list(CONFORMANCE)
    if mode is schemathesis.GenerationMode.NEGATIVE:
        checks.append(openapi_checks.negative_data_rejection)
    elif not path.endswith(("/feedback", "$apply")):
        # Whether feedback is accepted depends on the card it names (its suggestions, reasons,
        # outcome so far), which no schema can say: its answers are checked against the
        # document, not for acceptance. So for $apply, whose Parameters no schema here spells
        # out (tests/fhir/test_apply.py checks its answers).
        checks.append(openapi_checks.positive_data_acceptance)
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case[Any]) -> None:
        _arrange(case, issued_cards)
        case.call_and_validate(session=session, timeout=10, checks=checks)

    conforms()


def test_feedback_is_answered_with_an_empty_json_object(cds: Cds) -> None:
    """CDS Hooks 2.0 asks for 200 OK; the body is the documented empty JSON object."""
    [card] = cds.cards("patient-view", hook_request("patient-view"))
    reason = card["overrideReasons"][0]
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason},
        "outcomeTimestamp": "2026-11-26T10:00:00Z",
    }
    service = SERVICE_IDS["patient-view"]
    response = cds.client.post(f"/cds-services/{service}/feedback", json={"feedback": [item]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {}


def test_the_document_describes_what_the_service_answers(cds: Cds) -> None:
    doc = cds.client.get("/openapi.json").json()
    paths = doc["paths"]
    read = paths["/fhir/ValueSet/{vs_id}"]["get"]["responses"]
    assert read["200"]["content"]["application/fhir+json"]["schema"]["type"] == "object"
    search = paths["/fhir/ValueSet"]["get"]["responses"]
    assert search["200"]["content"]["application/fhir+json"]["schema"]["type"] == "object"
    assert "422" not in read
    assert "422" not in search
    call = paths[f"/cds-services/{SERVICE_IDS['patient-view']}"]["post"]
    assert {"400", "412", "413", "415", "431"} <= call["responses"].keys()
    assert call["responses"]["200"]["headers"]["Cache-Control"]["schema"]["enum"] == ["no-store"]
    body = call["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["hook"] == {"const": "patient-view"}
    assert "prefetch" in body["required"]  # this deployment fetches nothing
    feedback = paths[f"/cds-services/{SERVICE_IDS['order-sign']}/feedback"]["post"]["responses"]
    assert {"400", "404", "409", "413", "415", "431"} <= feedback.keys()
    assert feedback["200"]["content"]["application/json"]["schema"]["maxProperties"] == 0
    select = paths[f"/cds-services/{SERVICE_IDS['order-select']}"]["post"]
    context = select["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "context"
    ]
    assert {"selections", "draftOrders"} <= set(context["required"])


def test_with_fetching_configured_the_prefetch_keys_are_optional(tmp_path: Path) -> None:
    """The document describes the deployment: with NKR_FHIR_SERVERS set, a key left out is
    fetched (or 412, or 503 when too many fetches are in flight)."""
    app = create_app(Settings(data_dir=tmp_path, fhir_servers=("http://127.0.0.1:9/fhir",)))
    call = app.openapi()["paths"][f"/cds-services/{SERVICE_IDS['patient-view']}"]["post"]
    body = call["requestBody"]["content"]["application/json"]["schema"]
    assert "prefetch" not in body["required"]
    assert {"412", "503"} <= call["responses"].keys()
    assert call["responses"]["503"]["headers"]["Retry-After"]["required"] is True
