"""Fetching missing prefetch from a FHIR server: a small real FHIR server on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nkr import InputError
from nkr.fhir import (
    PREFETCH_TEMPLATES,
    PrefetchUnavailable,
    fetch_missing_prefetch,
    fill_template,
    resources_from_prefetch,
)

TOKEN = "secret-access-token"
CONTEXT = {"patientId": "p1", "userId": "Practitioner/u1"}


@dataclass
class FakeFhir:
    """What the fake server saw, and how it should behave."""

    base: str = ""
    seen: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    delay_seconds: float = 0.0

    def paths(self) -> list[str]:
        return [path for path, _, _, _ in self.seen]


def _bundle(entries: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": "x"}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": r} for r in entries],
    }


def _app(state: FakeFhir) -> Starlette:
    def record(request: Request) -> None:
        state.seen.append(
            (
                request.url.path,
                request.url.query,
                request.headers.get("authorization"),
                request.headers.get("accept"),
            )
        )

    async def patient(request: Request) -> Response:
        record(request)
        pid = request.path_params["pid"]
        if pid == "missing":
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        if pid == "broken":
            return Response("internal error", status_code=500)
        if pid == "notjson":
            return Response("<html>login</html>", media_type="text/html")
        if pid == "wrongtype":
            return JSONResponse({"resourceType": "Practitioner", "id": pid})
        return JSONResponse({"resourceType": "Patient", "id": pid, "birthDate": "1980-05-01"})

    async def search(request: Request) -> Response:
        record(request)
        rtype = request.path_params["rtype"]
        pid = request.query_params.get("patient")
        page = int(request.query_params.get("page", "1"))
        if pid == "slow":
            await asyncio.sleep(state.delay_seconds)
        if pid == "endless":
            return JSONResponse(
                _bundle([], f"{state.base}/{rtype}?patient=endless&page={page + 1}")
            )
        if pid == "hapi" and page == 1:
            # A next link at the base itself, as HAPI FHIR writes them.
            return JSONResponse(_bundle([], f"{state.base}?_getpages=x&page=2"))
        if pid == "elsewhere":
            return JSONResponse(_bundle([], "http://localhost:1/fhir/steal?page=2"))
        if pid == "broken" and rtype == "Condition":
            return Response("", status_code=500)
        if rtype == "Condition" and page == 1:
            nxt = f"{state.base}/Condition?patient={pid}&page=2"
            return JSONResponse(_bundle([{"resourceType": "Condition", "id": "c1"}], nxt))
        if rtype == "Condition":
            return JSONResponse(_bundle([{"resourceType": "Condition", "id": "c2"}]))
        return JSONResponse(_bundle([{"resourceType": rtype, "id": f"{rtype}-1"}]))

    async def slow_patient(request: Request) -> Response:
        record(request)
        await asyncio.sleep(state.delay_seconds)
        return JSONResponse({"resourceType": "Patient", "id": "slow"})

    async def getpages(request: Request) -> Response:
        record(request)
        return JSONResponse(_bundle([{"resourceType": "Procedure", "id": "from-page-2"}]))

    return Starlette(
        routes=[
            Route("/fhir", getpages),
            Route("/fhir/Patient/slow", slow_patient),
            Route("/fhir/Patient/{pid}", patient),
            Route("/fhir/{rtype}", search),
        ]
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def fhir_server() -> Iterator[FakeFhir]:
    state = FakeFhir()
    port = _free_port()
    state.base = f"http://127.0.0.1:{port}/fhir"
    config = uvicorn.Config(
        _app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake FHIR server did not start")
        time.sleep(0.01)
    yield state
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fake(fhir_server: FakeFhir) -> FakeFhir:
    fhir_server.seen.clear()
    fhir_server.delay_seconds = 0.0
    return fhir_server


def fetch(
    fake: FakeFhir,
    prefetch: dict[str, Any] | None = None,
    *,
    patient_id: str = "p1",
    timeout: float = 2.0,
    token: str | None = TOKEN,
    server: str | None = "",
    max_pages: int = 10,
) -> dict[str, Any]:
    auth = None if token is None else {"access_token": token, "token_type": "Bearer"}
    return asyncio.run(
        fetch_missing_prefetch(
            prefetch=prefetch or {},
            context={**CONTEXT, "patientId": patient_id},
            fhir_server=fake.base if server == "" else server,
            fhir_authorization=auth,
            timeout_seconds=timeout,
            max_pages=max_pages,
        )
    )


def test_every_missing_key_is_fetched_with_the_bearer_token(fake: FakeFhir) -> None:
    result = fetch(fake)
    assert set(result) == set(PREFETCH_TEMPLATES)
    assert result["patient"]["resourceType"] == "Patient"
    assert sorted(r["id"] for r in resources_from_prefetch("conditions", result["conditions"])) == [
        "c1",
        "c2",
    ]
    assert [r["id"] for r in resources_from_prefetch("procedures", result["procedures"])] == [
        "Procedure-1"
    ]
    assert {auth for _, _, auth, _ in fake.seen} == {f"Bearer {TOKEN}"}
    assert {accept for _, _, _, accept in fake.seen} == {"application/fhir+json"}
    observation_queries = [q for p, q, _, _ in fake.seen if p == "/fhir/Observation"]
    assert len(observation_queries) == 1
    assert "patient=p1" in observation_queries[0]
    assert "72514-3" in observation_queries[0]
    assert sorted(fake.paths()) == sorted(
        [
            "/fhir/Patient/p1",
            "/fhir/Condition",
            "/fhir/Condition",  # the second page
            "/fhir/Observation",
            "/fhir/Procedure",
            "/fhir/ServiceRequest",
        ]
    )


def test_keys_the_request_has_are_not_fetched_and_null_stays_no_data(fake: FakeFhir) -> None:
    given = {
        "patient": {"resourceType": "Patient", "id": "p1"},
        "conditions": None,
        "observations": _bundle([]),
        "procedures": _bundle([]),
    }
    result = fetch(fake, given)
    assert fake.paths() == ["/fhir/ServiceRequest"]
    assert result["conditions"] is None
    assert result["patient"] is given["patient"]


def test_nothing_missing_needs_no_fhir_server(fake: FakeFhir) -> None:
    given = dict.fromkeys(PREFETCH_TEMPLATES)
    assert fetch(fake, given, server=None) == given
    assert fake.seen == []


def test_without_a_token_no_authorization_header_is_sent(fake: FakeFhir) -> None:
    fetch(fake, token=None)
    assert {auth for _, _, auth, _ in fake.seen} == {None}


@pytest.mark.parametrize(
    ("patient_id", "key", "reason"),
    [
        ("missing", "patient", "HTTP 404"),
        ("broken", "patient", "HTTP 500"),
        ("notjson", "patient", "not JSON"),
        ("wrongtype", "patient", "did not return a Patient"),
    ],
)
def test_fhir_server_failures_make_the_key_unavailable(
    fake: FakeFhir, patient_id: str, key: str, reason: str
) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != key}
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, others, patient_id=patient_id)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value).startswith(f"prefetch {key}: ")


def test_a_failing_search_makes_its_key_unavailable(fake: FakeFhir) -> None:
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {"patient": None}, patient_id="broken")
    assert info.value.key == "conditions"
    assert "HTTP 500" in str(info.value)


def test_a_slow_fhir_server_times_out_quickly(fake: FakeFhir) -> None:
    fake.delay_seconds = 2.0
    start = time.monotonic()
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {"patient": None}, patient_id="slow", timeout=0.3)
    assert time.monotonic() - start < 1.5
    assert "did not answer in time" in str(info.value)


def test_endless_paging_stops_at_the_bound(fake: FakeFhir) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != "conditions"}
    with pytest.raises(PrefetchUnavailable, match=r"prefetch conditions: more than 3 pages"):
        fetch(fake, others, patient_id="endless", max_pages=3)
    assert len(fake.seen) == 3


def test_next_links_at_the_base_itself_are_followed(fake: FakeFhir) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != "procedures"}
    result = fetch(fake, others, patient_id="hapi")
    assert fake.paths() == ["/fhir/Procedure", "/fhir"]
    assert {auth for _, _, auth, _ in fake.seen} == {f"Bearer {TOKEN}"}
    procedures = resources_from_prefetch("procedures", result["procedures"])
    assert [r["id"] for r in procedures] == ["from-page-2"]


def test_the_token_is_never_sent_to_a_next_link_on_another_server(fake: FakeFhir) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != "procedures"}
    with pytest.raises(PrefetchUnavailable, match="next page is on another server"):
        fetch(fake, others, patient_id="elsewhere")
    assert fake.paths() == ["/fhir/Procedure"]


def test_an_unreachable_fhir_server_makes_the_key_unavailable(fake: FakeFhir) -> None:
    closed = f"http://127.0.0.1:{_free_port()}/fhir"
    with pytest.raises(PrefetchUnavailable, match="could not be reached"):
        fetch(fake, {}, server=closed)


@pytest.mark.parametrize("server", [None, "ftp://127.0.0.1/fhir", "not a url"])
def test_no_usable_fhir_server_makes_missing_keys_unavailable(
    fake: FakeFhir, server: str | None
) -> None:
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {"patient": None}, server=server)
    assert info.value.key == "conditions"
    assert fake.seen == []


def test_nothing_is_logged_about_the_patient(
    fake: FakeFhir, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fetch(fake, patient_id="patient-4711")
    with pytest.raises(PrefetchUnavailable):
        fetch(fake, {}, patient_id="missing")
    logged = caplog.text
    assert "patient-4711" not in logged
    assert "Patient/missing" not in logged
    assert TOKEN not in logged


def test_errors_never_carry_the_token_or_the_patient_id(fake: FakeFhir) -> None:
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {}, patient_id="missing")
    assert TOKEN not in str(info.value)
    assert "missing" not in str(info.value).replace("prefetch", "")


# --- templates and prefetch shapes ------------------------------------------------------------


def test_the_templates_are_the_issue_s() -> None:
    assert dict(PREFETCH_TEMPLATES) == {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|72514-3",
        "procedures": "Procedure?patient={{context.patientId}}",
        "serviceRequests": "ServiceRequest?patient={{context.patientId}}",
    }


def test_fill_template() -> None:
    assert fill_template("Patient/{{context.patientId}}", CONTEXT) == "Patient/p1"
    assert fill_template("Condition?patient={{ context.patientId }}", CONTEXT) == (
        "Condition?patient=p1"
    )


@pytest.mark.parametrize(
    "patient_id", [None, "", "..", ".", "../Practitioner/x", "p1&_count=1000", 7, "a" * 65]
)
def test_fill_template_accepts_only_fhir_ids(patient_id: object) -> None:
    with pytest.raises(InputError, match=r"^context.patientId: required by the prefetch"):
        fill_template("Patient/{{context.patientId}}", {"patientId": patient_id})


def test_fill_template_refuses_unknown_tokens() -> None:
    with pytest.raises(ValueError, match="unsupported prefetch token"):
        fill_template("Practitioner/{{userPractitionerId}}", CONTEXT)


def test_resources_from_prefetch() -> None:
    condition = {"resourceType": "Condition", "id": "c1"}
    assert resources_from_prefetch("conditions", None) == []
    assert resources_from_prefetch("conditions", _bundle([condition])) == [condition]
    assert resources_from_prefetch("conditions", {"resourceType": "Bundle"}) == []
    assert resources_from_prefetch("patient", condition) == [condition]
    assert resources_from_prefetch("conditions", {"resourceType": "Bundle", "entry": [{}]}) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], r"^prefetch.conditions: expected a FHIR resource or Bundle"),
        ({"resourceType": "Bundle", "entry": {}}, r"^prefetch.conditions.entry: expected a list"),
        ({"resourceType": "Bundle", "entry": [1]}, r"^prefetch.conditions.entry\[0\]: expected"),
        (
            {"resourceType": "Bundle", "entry": [{"resource": "x"}]},
            r"^prefetch.conditions.entry\[0\].resource: expected a FHIR resource",
        ),
    ],
)
def test_resources_from_prefetch_rejects_wrong_shapes(value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        resources_from_prefetch("conditions", value)
