"""Running the service: the start-up warning with auth off, no patient data in the log, and
links and JWT audience behind a proxy (NKR_PUBLIC_BASE_URL)."""

from __future__ import annotations

import time
from pathlib import Path

from ..conftest import AppFactory
from .conftest import Cds, ServerProcess
from .fhir_data import hook_request, patient, radiculopathy, service_request


def test_auth_off_is_loud_and_log_has_no_patient_data(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    server_process.log_path = tmp_path / "server.log"
    cds = Cds(server_process.start())
    marker = "Zacharias-Oehlenschlaeger-0101"
    pat = patient(pid=marker) | {"name": [{"family": marker}]}
    assert cds.cards("patient-view", hook_request("patient-view", pat=pat))
    bad = hook_request("order-sign", pat=pat, drafts=[service_request("mri", marker)])
    bad["prefetch"]["conditions"]["entry"].append({"resource": radiculopathy() | {"code": marker}})
    assert cds.post("order-sign", bad).status_code == 400
    assert cds.client.post("/cds-services/x", content=marker.encode()).status_code == 404
    time.sleep(0.2)
    server_process.kill()
    log = server_process.log_path.read_text()
    assert "authentication is OFF" in log
    assert "NKR_JWT_ISSUERS" in log
    assert marker not in log


def test_public_base_url_for_links(app_factory: AppFactory) -> None:
    client = app_factory({"NKR_PUBLIC_BASE_URL": "https://cds.example.org/nkr/"})
    body = hook_request("order-sign", drafts=[service_request("acupuncture", "a")])
    [card] = Cds.of(client).cards("order-sign", body)
    assert (
        card["links"][0]["url"]
        == "https://cds.example.org/nkr/lumbal-radikulopati/anbefalinger/acupuncture"
    )
    assert client.get("/cds-services").status_code == 200


def test_fhir_server_allowlist(app_factory: AppFactory) -> None:
    cds = Cds.of(app_factory({"NKR_FHIR_SERVERS": "http://127.0.0.1:9/fhir"}))
    for server, reason in (
        ("http://127.0.0.1:9/fhirx", "not one this service may fetch from"),
        ("http://127.0.0.1:99/fhir", "not one this service may fetch from"),
        ("http://127.0.0.1:9/fhir/", "could not be fetched from fhirServer"),
    ):
        body = hook_request("patient-view")
        del body["prefetch"]["observations"]
        body["fhirServer"] = server
        response = cds.post("patient-view", body)
        assert response.status_code == 412
        assert reason in response.json()["issue"][0]["diagnostics"]
