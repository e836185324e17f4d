"""A small FHIR R4 server for tests: the web app's sample patients, read-only, on loopback.

It answers what a CDS Hooks client (HL7's CDS Hooks Sandbox) asks of an EHR's FHIR server:
``GET /metadata`` (a CapabilityStatement, FHIR 4.0.1), ``GET /Patient`` (the client checks that
the server is open), ``GET /{Type}/{id}``, and searches as ``POST /{Type}/_search`` (form
encoded) or ``GET /{Type}?...``, answered with searchset Bundles. Searches understand
``patient``/``subject`` and ``code`` (``system|code`` or ``code``); any other parameter is
ignored, as FHIR lets a server do. Browsers may call it from the origins given (CORS).

The data are the default guideline's sample patients, built into FHIR by the same code as the
integrators' page (:func:`nkr.web._cds.hook_request`), so their dates are relative to the
service's "today" whenever the tests run. Resource ids are prefixed with the patient's id,
since the samples reuse ids such as ``radiculopathy`` from patient to patient.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from nkr._devserver import free_port
from nkr._package import registry
from nkr.web._cds import hook_request

Resource = dict[str, Any]
FHIR_JSON = "application/fhir+json"
# The resource types the samples hold, besides Patient.
SEARCHABLE = ("Condition", "Observation", "Procedure", "ServiceRequest")


def sample_resources(today: dt.date) -> dict[str, list[Resource]]:
    """Every sample patient's resources by type, dates resolved against ``today``."""
    store: dict[str, list[Resource]] = {"Patient": [], **{t: [] for t in SEARCHABLE}}
    for sample in registry().default.samples.values():
        prefetch = hook_request(sample, "patient-view", today)["prefetch"]
        patient: Resource = prefetch["patient"]
        store["Patient"].append(patient)
        for key in ("conditions", "observations", "procedures", "serviceRequests"):
            for entry in prefetch[key]["entry"]:
                resource: Resource = dict(entry["resource"])
                resource["id"] = f"{patient['id']}-{resource['id']}"
                store[resource["resourceType"]].append(resource)
    return store


def _outcome(status: int, text: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-found", "diagnostics": text}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _bundle(base: str, resources: Sequence[Resource]) -> Response:
    body = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {}}
            for r in resources
        ],
    }
    return JSONResponse(body, media_type=FHIR_JSON)


def _matches(resource: Resource, params: dict[str, str]) -> bool:
    patient = params.get("patient") or params.get("subject")
    if patient is not None:
        wanted = patient if patient.startswith("Patient/") else f"Patient/{patient}"
        if resource.get("subject", {}).get("reference") != wanted:
            return False
    code = params.get("code")
    if code is not None:
        codings = resource.get("code", {}).get("coding", [])
        options = code.split(",")
        if not any(
            (f"{c.get('system')}|{c.get('code')}" in options) or (c.get("code") in options)
            for c in codings
        ):
            return False
    return True


def create_app(today: dt.date, cors_origins: Sequence[str] = ()) -> Starlette:
    """The FHIR server's ASGI app over the samples as of ``today``."""
    store = sample_resources(today)

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def metadata(request: Request) -> Response:
        body = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": today.isoformat(),
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {
                            "type": t,
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                        }
                        for t in ("Patient", *SEARCHABLE)
                    ],
                }
            ],
        }
        return JSONResponse(body, media_type=FHIR_JSON)

    async def search(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        if rtype not in store:
            return _outcome(404, f"unknown resource type {rtype[:40]}")
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        found = [r for r in store[rtype] if rtype == "Patient" or _matches(r, params)]
        if rtype == "Patient" and "_id" in params:
            found = [r for r in found if r["id"] == params["_id"]]
        return _bundle(base_of(request), found)

    async def read(request: Request) -> Response:
        rtype, rid = request.path_params["rtype"], request.path_params["rid"]
        for resource in store.get(rtype, ()):
            if resource["id"] == rid:
                return JSONResponse(resource, media_type=FHIR_JSON)
        return _outcome(404, f"{rtype[:40]}/{rid[:64]} not found")

    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
        )
    ]
    return Starlette(
        routes=[
            Route("/metadata", metadata),
            Route("/{rtype}/_search", search, methods=["POST"]),
            Route("/{rtype}", search, methods=["GET"]),
            Route("/{rtype}/{rid}", read, methods=["GET"]),
        ],
        middleware=middleware,
    )


@contextmanager
def serving(app: ASGIApp, *, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"test server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
