"""Bad input over real HTTP: 400, 404, 412, 413 with an OperationOutcome; CORS."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request

from nkr._settings import Settings
from nkr.cdshooks._routes import CdsHooks
from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy
from tests._async import run_async

from ..conftest import AppFactory
from .conftest import Cds, Handler, Loopback
from .fhir_data import (
    bundle,
    hook_request,
    pain,
    patient,
    procedure,
    radiculopathy,
    service_request,
)


def outcome(response: httpx.Response, status: int) -> str:
    """The diagnostics of an OperationOutcome answer with HTTP ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    [issue] = body["issue"]
    assert issue["severity"] == "error"
    diagnostics: str = issue["diagnostics"]
    return diagnostics


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"{}", "hook"),
    ],
)
def test_malformed_body(cds: Cds, body: bytes, names: str) -> None:
    assert names in outcome(cds.post("patient-view", body), 400)


def test_wrong_hook_for_service(cds: Cds) -> None:
    diagnostics = outcome(cds.post("patient-view", hook_request("order-sign")), 400)
    assert "hook" in diagnostics
    assert "patient-view" in diagnostics


@pytest.mark.parametrize(
    ("hook", "drop", "names"),
    [
        ("patient-view", "patientId", "context.patientId"),
        ("patient-view", "userId", "context.userId"),
        ("order-select", "selections", "context.selections"),
        ("order-select", "draftOrders", "context.draftOrders"),
        ("order-sign", "draftOrders", "context.draftOrders"),
    ],
)
def test_missing_context_field(cds: Cds, hook: str, drop: str, names: str) -> None:
    body = hook_request(hook, drafts=[service_request("mri", "m")])
    del body["context"][drop]
    assert names in outcome(cds.post(hook, body), 400)


def test_missing_hook_instance_and_context(cds: Cds) -> None:
    body = hook_request("patient-view")
    del body["hookInstance"]
    assert "hookInstance" in outcome(cds.post("patient-view", body), 400)
    body = hook_request("patient-view")
    del body["context"]
    assert "context" in outcome(cds.post("patient-view", body), 400)


def test_selection_not_in_draft_orders(cds: Cds) -> None:
    body = hook_request(
        "order-select", drafts=[service_request("mri", "m")], selections=["ServiceRequest/zzz"]
    )
    response = cds.post("order-select", body)
    assert "context.selections[0]" in outcome(response, 400)
    assert response.json()["issue"][0]["expression"] == ["$.context.selections[0]"]
    assert "zzz" not in response.text


def test_an_unexpected_error_is_a_logged_500_not_a_400(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug in a guideline's reading (here: made up) is nkr's fault, not the caller's.
    def broken(self: object, record: object, on: object) -> object:
        raise KeyError("patient-4711")

    monkeypatch.setattr(LumbarRadiculopathy, "read_record", broken)
    hooks = CdsHooks(Settings(data_dir=tmp_path))
    body = orjson.dumps(hook_request("patient-view", conditions=[radiculopathy()]))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/cds-services/x",
        "headers": [(b"content-type", b"application/json")],
    }
    logger = logging.getLogger("nkr.cdshooks")  # "nkr" does not propagate (its own handler)
    logger.addHandler(caplog.handler)
    try:
        response = run_async(
            hooks.call("nkr-lumbal-radikulopati-patient-view", Request(scope, receive))
        )
    finally:
        logger.removeHandler(caplog.handler)
        hooks.store.close()
    assert response.status_code == 500
    assert b'"resourceType":"OperationOutcome"' in response.body
    assert b"4711" not in response.body
    assert "unexpected KeyError" in caplog.text
    assert "4711" not in caplog.text


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda b: b["context"].update(draftOrders=[]), "context.draftOrders"),
        (lambda b: b["context"]["draftOrders"].update(resourceType="Patient"), "Bundle"),
        (lambda b: b["prefetch"].update(patient={"resourceType": "Bundle"}), "prefetch.patient"),
        (lambda b: b["prefetch"].update(conditions=[]), "prefetch.conditions"),
        (lambda b: b["prefetch"]["observations"].update(entry={}), "prefetch.observations"),
        (lambda b: b.update(fhirServer="ftp://x"), "fhirServer"),
        (lambda b: b.update(extension={"nkr-lang": "fr"}), "nkr-lang"),
    ],
)
def test_wrong_request_shapes(
    cds: Cds, mutate: Callable[[dict[str, Any]], None], names: str
) -> None:
    body = hook_request("order-sign", drafts=[service_request("mri", "m")])
    mutate(body)
    assert names in outcome(cds.post("order-sign", body), 400)


def test_wrong_fhir_shape_names_resource_and_field(cds: Cds) -> None:
    bad = pain(8)
    bad["valueQuantity"] = "eight"
    body = hook_request(
        "patient-view",
        conditions=[radiculopathy()],
        observations=[bad],
        procedures=[procedure("supervised_exercise")],
    )
    diagnostics = outcome(cds.post("patient-view", body), 400)
    assert diagnostics.startswith("$.prefetch.observations.entry[0].resource.valueQuantity: ")
    assert "eight" not in diagnostics  # no patient values in messages


def test_impossible_birth_date(cds: Cds) -> None:
    body = hook_request("patient-view", pat=patient(birth_date="2100-01-01"))
    assert "birthDate" in outcome(cds.post("patient-view", body), 400)


def test_unknown_service_404(cds: Cds) -> None:
    response = cds.client.post("/cds-services/no-such-service", content=b"{}")
    assert "no-such-service" in outcome(response, 404)
    response = cds.client.post("/cds-services/no-such-service/feedback", content=b"{}")
    outcome(response, 404)


# -- 413 ----------------------------------------------------------------------------------------


def test_body_over_limit_by_content_length(cds: Cds) -> None:
    body = b'{"hook": "' + b"x" * 1_100_000 + b'"}'
    assert "larger than" in outcome(cds.post("patient-view", body), 413)


def test_streamed_body_over_limit(cds: Cds) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"hook": "'
        for _ in range(40):
            yield b"x" * 50_000

    response = cds.client.post(
        f"/cds-services/{'nkr-lumbal-radikulopati-patient-view'}",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    outcome(response, 413)


# -- 412: prefetch that cannot be had --------------------------------------------------------


def without_prefetch(keys: tuple[str, ...] = ("observations",)) -> dict[str, Any]:
    body = hook_request("patient-view")
    for key in keys:
        del body["prefetch"][key]
    return body


def test_missing_prefetch_without_fhir_server_412(cds: Cds) -> None:
    diagnostics = outcome(cds.post("patient-view", without_prefetch()), 412)
    assert diagnostics.startswith("prefetch observations: ")
    assert "fetching is not configured" in diagnostics
    body = hook_request("patient-view", prefetch=False)
    outcome(cds.post("patient-view", body), 412)


@dataclass
class FhirStub:
    """A loopback FHIR server whose answers each test sets (the server is on the allowlist
    of the ``fetching`` server, which must know its address before it starts)."""

    handler: Handler = lambda _: (404, b"{}")
    server: Loopback = field(init=False)

    def __post_init__(self) -> None:
        self.server = Loopback(lambda request: self.handler(request))

    def answer(self, handler: Handler) -> Loopback:
        self.handler = handler
        self.server.requests.clear()
        return self.server


@pytest.fixture(scope="module")
def fhir_stub() -> Iterator[FhirStub]:
    stub = FhirStub()
    yield stub
    stub.server.close()


@pytest.fixture(scope="module")
def fetching(app_factory: AppFactory, valueset_dir: Path, fhir_stub: FhirStub) -> Cds:
    """The app, allowed to fetch missing prefetch from the stub (NKR_FHIR_SERVERS)."""
    env = {"NKR_VALUESET_DIR": str(valueset_dir), "NKR_FHIR_SERVERS": fhir_stub.server.url}
    return Cds.of(app_factory(env))


@pytest.mark.parametrize("status", [500, 401, 404])
def test_missing_prefetch_fhir_server_fails_412(
    fetching: Cds, fhir_stub: FhirStub, status: int
) -> None:
    fhir = fhir_stub.answer(lambda _: (status, b'{"resourceType": "OperationOutcome"}'))
    body = without_prefetch()
    body["fhirServer"] = fhir.url + "/fhir"
    body["fhirAuthorization"] = {
        "access_token": "secret-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "nkr",
    }
    diagnostics = outcome(fetching.post("patient-view", body), 412)
    # One text whatever went wrong: the caller learns nothing about the network.
    assert diagnostics == (
        "prefetch observations: missing from the request, and could not be fetched from fhirServer"
    )
    assert fhir.requests, "the service asked the FHIR server"
    path, headers = fhir.requests[0]
    assert path.startswith("/fhir/Observation?patient=p1")
    assert headers["Authorization"] == "Bearer secret-token"


def test_missing_prefetch_fetched_from_fhir_server(fetching: Cds, fhir_stub: FhirStub) -> None:
    def answer(request: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        if request.path.startswith("/Observation"):
            return 200, orjson.dumps(bundle([pain(9)]))
        if request.path.startswith("/Procedure"):
            return 200, orjson.dumps(bundle([procedure("supervised_exercise")]))
        return 404, b"{}"

    fhir = fhir_stub.answer(answer)
    body = without_prefetch(("observations", "procedures"))
    body["prefetch"]["conditions"] = bundle([radiculopathy(60)])
    body["fhirServer"] = fhir.url
    cards = fetching.cards("patient-view", body)
    assert [c["source"]["topic"]["code"] for c in cards] == [
        "overview",
        "spine-surgeon-assessment",
    ]


def test_null_prefetch_means_no_data(cds: Cds) -> None:
    body = hook_request("patient-view")
    body["prefetch"]["observations"] = None
    body["prefetch"]["procedures"] = None
    assert len(cds.cards("patient-view", body)) == 1


# -- CORS ----------------------------------------------------------------------------------------


def test_no_cors_by_default(cds: Cds) -> None:
    response = cds.client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_only_for_configured_origins(app_factory: AppFactory) -> None:
    client = app_factory({"NKR_CORS_ORIGINS": "https://ehr.example,https://ehr2.example"})
    preflight = client.options(
        "/cds-services/nkr-lumbal-radikulopati-patient-view",
        headers={
            "Origin": "https://ehr.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ehr.example"
    other = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr2.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://ehr2.example"


def _request_with_extra(extra: bytes) -> bytes:
    """A well-formed patient-view request with ``extra`` (raw JSON) in a field nkr does not
    read."""
    body = orjson.dumps(hook_request("patient-view", conditions=[radiculopathy(onset_days_ago=10)]))
    return body.replace(b'"hookInstance":', b'"x":' + extra + b',"hookInstance":', 1)


def test_invalid_utf8_anywhere_is_a_400(cds: Cds) -> None:
    for extra in (b'"\xff"', b'"\xed\xa0\x80"'):
        assert "not valid JSON" in outcome(
            cds.post("patient-view", _request_with_extra(extra)), 400
        )


def test_deep_nesting_is_read_or_refused_never_a_500(cds: Cds) -> None:
    # Nesting that msgspec follows is read ...
    response = cds.post("patient-view", _request_with_extra(b"[" * 900 + b"]" * 900))
    assert response.status_code == 200, response.text
    assert response.json()["cards"]
    # ... and deeper than that is refused.
    for depth in (1010, 1100, 100_000):
        deeper = _request_with_extra(b"[" * depth + b"]" * depth)
        assert "not valid JSON" in outcome(cds.post("patient-view", deeper), 400)
