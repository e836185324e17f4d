"""The ``/cds-services`` endpoints: discovery, service calls and feedback."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, FastAPI, Path, Request
from starlette.responses import Response

from nkr._errors import InputError
from nkr._guideline import Lang
from nkr._settings import Settings
from nkr.cdshooks import _openapi
from nkr.cdshooks._auth import Authenticator, AuthError, parse_issuers
from nkr.cdshooks._cards import render
from nkr.cdshooks._feedback import FeedbackStore, parse_feedback
from nkr.cdshooks._request import (
    HookRequest,
    RequestError,
    accept_language,
    check_hook_request,
    parse_hook_request,
)
from nkr.cdshooks._services import SERVICES, discovery
from nkr.fhir._fetch import (
    PREFETCH_TEMPLATES,
    PrefetchUnavailable,
    fetch_missing_prefetch,
    resources_from_prefetch,
)
from nkr.fhir._mapping import FhirCase, NeedsFullReading, case_from_fhir
from nkr.fhir._outcome import outcome_response
from nkr.fhir._typed import case_from_typed, decode_request
from nkr.fhir._valuesets import ValueSets, load_valuesets
from nkr.guidelines.lumbar_radiculopathy import evaluate, guideline

log = logging.getLogger("nkr.cdshooks")

JSON = "application/json"
# How many distinct request origins (scheme, server, Host header, root path) keep their base
# URL derived; an EHR calls from one or two, a client making up Host headers gets no more.
BASE_URLS_KEPT = 64


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON)


def _header(request: Request, name: bytes) -> str | None:
    """A request header, as ``request.headers.get`` gives it (without building them all)."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _complete(prefetch: Mapping[str, object]) -> bool:
    """Whether the request carries every prefetch key (each may be null: "no data")."""
    return prefetch.keys() >= PREFETCH_TEMPLATES.keys()


def _unknown_service(service_id: str) -> Response:
    return outcome_response(
        404,
        "not-found",
        f"unknown CDS service '{service_id[:80]}' (expected one of: {', '.join(SERVICES)})",
    )


def _unauthorized(exc: AuthError) -> Response:
    response = outcome_response(401, "login", str(exc))
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _warn_auth_off() -> None:
    banner = "!" * 78
    log.warning(
        "\n%s\n!! CDS Hooks authentication is OFF: any client can call the services.\n"
        "!! Fine on a developer machine; in production set NKR_JWT_ISSUERS to\n"
        "!! 'issuer=jwks-url-or-file' pairs so that only the EHR's signed JWTs are accepted.\n%s",
        banner,
        banner,
    )


def _ensure_logging() -> None:
    # uvicorn configures only its own loggers; give nkr's a handler of the same look.
    root = logging.getLogger("nkr")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def _referral_codings(valuesets: ValueSets) -> tuple[dict[str, str], ...]:
    """The code a suggested referral carries: a deployment's local codes when it has added
    some, else nkr's placeholder."""
    codes = valuesets.get("spine-surgeon-referral").codes
    local = [c for c in codes if c.provenance_kind == "local"]
    chosen = local[:1] or [c for c in codes if c.code == "spine-surgeon-referral"][:1] or codes[:1]
    return tuple(
        {"system": c.system, "code": c.code} | ({"display": c.display} if c.display else {})
        for c in chosen
    )


class CdsHooks:
    """What the endpoints share: settings, value sets, authentication, feedback store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.guideline = guideline()
        self.valuesets = load_valuesets(settings.valueset_dir)
        self.referral_codings = _referral_codings(self.valuesets)
        # Whole path segments: "https://ehr.example" must not allow "https://ehr.example.evil".
        self.fhir_servers = tuple(p.rstrip("/") + "/" for p in settings.fhir_servers)
        self._base_urls: dict[tuple[object, ...], str] = {}
        self.discovery = {
            lang: orjson.dumps(doc) for lang, doc in discovery(dict(PREFETCH_TEMPLATES)).items()
        }
        self.store = FeedbackStore.in_dir(settings.data_dir)
        issuers = parse_issuers(settings.jwt_issuers)
        self.auth = Authenticator(issuers, settings.fhir_timeout_seconds) if issuers else None
        _ensure_logging()
        if self.auth is None:
            _warn_auth_off()
        else:
            log.info("CDS Hooks JWT authentication on; allowed issuers: %s", ", ".join(issuers))

    def base_url(self, request: Request) -> str:
        if self.settings.public_base_url:
            return self.settings.public_base_url
        # Starlette derives the base URL from these parts of the scope alone, at a cost that
        # shows on every call: it is derived once per origin.
        scope = request.scope
        host = next((value for name, value in scope["headers"] if name == b"host"), None)
        root = scope.get("app_root_path", scope.get("root_path", ""))
        # ASGI lets a server give its address as any iterable (TestClient gives a list).
        server = scope.get("server")
        key = (scope.get("scheme", "http"), None if server is None else tuple(server), host, root)
        url = self._base_urls.get(key)
        if url is None:
            url = str(request.base_url).rstrip("/")
            if len(self._base_urls) < BASE_URLS_KEPT:
                self._base_urls[key] = url
        return url

    async def authenticate(self, request: Request, path: str) -> None:
        if self.auth is not None:
            await self.auth.check(
                request.headers.get("authorization"), self.base_url(request) + path
            )

    async def call(self, service_id: str, request: Request) -> Response:
        service = SERVICES.get(service_id)
        if service is None:
            return _unknown_service(service_id)
        if self.auth is not None:
            try:
                await self.authenticate(request, f"/cds-services/{service_id}")
            except AuthError as exc:
                return _unauthorized(exc)
        body = await request.body()
        on = self.settings.today()
        try:
            read = self._read_quick(body, service.hook, on)
            if read is None:
                read = await self._read_full(body, service.hook, on)
            hook_request, fhir_case = read
            lang = hook_request.lang or accept_language(_header(request, b"accept-language"))
            cards, issued = self._cards(hook_request, fhir_case, on, lang, request)
        except PrefetchUnavailable as exc:
            return outcome_response(412, "incomplete", str(exc))
        except InputError as exc:
            return outcome_response(400, "invalid", str(exc))
        except (TypeError, KeyError, AttributeError, ValueError, IndexError) as exc:
            # A shape of FHIR data that the mapping did not anticipate: the caller gets a 400
            # rather than a 500, and the log gets the error type (never the data) to fix it.
            log.error(
                "service %s: unexpected %s while reading FHIR data", service_id, type(exc).__name__
            )
            return outcome_response(400, "invalid", "the FHIR data has a shape nkr cannot read")
        except ExceptionGroup as exc:
            # Only fetching runs tasks in parallel; PrefetchUnavailable is unwrapped there.
            kinds = ", ".join(type(e).__name__ for e in exc.exceptions)
            log.error("service %s: fetching prefetch failed with %s", service_id, kinds)
            return outcome_response(412, "incomplete", "prefetch: could not fetch from fhirServer")
        self.store.issued(service.id, issued)
        return _json({"cards": cards})

    def _read_quick(
        self, body: bytes, hook: str, on: dt.date
    ) -> tuple[HookRequest, FhirCase] | None:
        """The request and its case by the quick reading (``nkr.fhir._typed``), or None when
        only the full reading can answer: it then reads the request again, and answers or
        names the problem."""
        typed = decode_request(body)
        if typed is None:
            return None
        try:
            hook_request = check_hook_request(typed.envelope, hook, typed.prefetch.by_key())
            return hook_request, case_from_typed(
                typed.prefetch,
                draft_orders=hook_request.draft_orders,
                on=on,
                pain_threshold=self.settings.pain_threshold,
                valuesets=self.valuesets,
            )
        except (InputError, NeedsFullReading):
            return None

    async def _read_full(self, body: bytes, hook: str, on: dt.date) -> tuple[HookRequest, FhirCase]:
        """The request and its case by the full reading, fetching missing prefetch keys."""
        hook_request = parse_hook_request(body, hook)
        prefetch = hook_request.prefetch
        if not _complete(prefetch):
            prefetch = await self._prefetch(hook_request)

        def resources(key: str) -> list[dict[str, Any]]:
            return resources_from_prefetch(key, prefetch.get(key))

        fhir_case = case_from_fhir(
            patient=cast("dict[str, Any] | None", prefetch.get("patient")),
            conditions=resources("conditions"),
            observations=resources("observations"),
            procedures=resources("procedures"),
            service_requests=resources("serviceRequests"),
            draft_orders=hook_request.draft_orders,
            on=on,
            pain_threshold=self.settings.pain_threshold,
            valuesets=self.valuesets,
        )
        return hook_request, fhir_case

    async def _prefetch(self, req: HookRequest) -> Mapping[str, Any]:
        allowed = self.fhir_servers
        if req.fhir_server and allowed and not (req.fhir_server + "/").startswith(allowed):
            missing = next(key for key in PREFETCH_TEMPLATES if key not in req.prefetch)
            raise PrefetchUnavailable(missing, "fhirServer is not on this service's allowlist")
        return await fetch_missing_prefetch(
            prefetch=req.prefetch,
            context=req.context,
            fhir_server=req.fhir_server,
            fhir_authorization=req.fhir_authorization,
            timeout_seconds=self.settings.fhir_timeout_seconds,
        )

    def _cards(
        self, req: HookRequest, fhir_case: FhirCase, on: dt.date, lang: Lang, request: Request
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        if fhir_case.case is None:
            return [], []
        assessment = evaluate(fhir_case.case, self.guideline, on)
        base = self.base_url(request)

        # The web app's pages, in the card's language (Danish is the pages' default).
        query = "?lang=en" if lang == "en" else ""

        def page_url(rec_id: str | None) -> str:
            path = "/" if rec_id is None else f"/anbefalinger/{rec_id}"
            return f"{base}{path}{query}"

        rendered = render(
            req.hook,
            assessment=assessment,
            fhir_case=fhir_case,
            lang=lang,
            page_url=page_url,
            pain_threshold=self.settings.pain_threshold,
            patient_ref=f"Patient/{req.patient_id}",
            encounter=None if req.encounter_id is None else f"Encounter/{req.encounter_id}",
            referral_codings=self.referral_codings,
        )
        return rendered.cards, rendered.issued

    async def feedback(self, service_id: str, request: Request) -> Response:
        if service_id not in SERVICES:
            return _unknown_service(service_id)
        try:
            await self.authenticate(request, f"/cds-services/{service_id}/feedback")
        except AuthError as exc:
            return _unauthorized(exc)
        try:
            parsed = parse_feedback(await request.body())
        except InputError as exc:
            return outcome_response(400, "invalid", str(exc))
        await asyncio.to_thread(self.store.store, service_id, parsed)
        return Response(status_code=200)


# Documented as an enum; any other id gets a 404 with an OperationOutcome (not FastAPI's 422).
ServiceId = Annotated[str, Path(json_schema_extra={"enum": list(SERVICES)})]
# The same parameter, described for the service call's schema by hand: that endpoint reads it
# from the path itself, which spares every call FastAPI's parameter validation (a string
# needs none; an unknown id gets its 404 from the endpoint).
SERVICE_ID_PARAMETER: dict[str, Any] = {
    "name": "service_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": list(SERVICES), "title": "Service Id"},
}


def create_router(settings: Settings) -> APIRouter:
    """The ``/cds-services`` endpoints."""
    hooks = CdsHooks(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded at start-up (modules, the guideline, value sets) lives as long as
        # the process: moved out of the collector's sight, it is not rescanned on every full
        # collection, which the many short-lived objects of FHIR requests trigger often.
        gc.freeze()
        async with hooks.store.running():
            yield

    router = APIRouter(lifespan=lifespan, tags=["CDS Hooks"])

    @router.get(
        "/cds-services",
        summary="CDS Hooks discovery",
        responses=_openapi.responses({"type": "object"}),
    )
    async def discover(request: Request) -> Response:
        lang = accept_language(request.headers.get("accept-language"))
        return Response(hooks.discovery[lang], media_type=JSON)

    @router.post(
        "/cds-services/{service_id}",
        summary="Call a CDS service",
        openapi_extra={
            "parameters": [SERVICE_ID_PARAMETER],
            **_openapi.request_body(_openapi.HOOK_REQUEST),
        },
        responses=_openapi.responses(_openapi.CARDS_RESPONSE, 400, 401, 404, 412, 413),
    )
    async def call(request: Request) -> Response:
        return await hooks.call(request.path_params["service_id"], request)

    @router.post(
        "/cds-services/{service_id}/feedback",
        summary="Feedback on cards",
        openapi_extra=_openapi.request_body(_openapi.FEEDBACK_REQUEST),
        responses=_openapi.responses({}, 400, 401, 404, 413),
    )
    async def feedback(service_id: ServiceId, request: Request) -> Response:
        return await hooks.feedback(service_id, request)

    if settings.bench_endpoint:

        @router.post("/_bench/parse", include_in_schema=False)
        async def bench_parse(request: Request) -> Response:
            # The benchmark's baseline: read and parse the same body, answer no cards.
            try:
                orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                return outcome_response(400, "invalid", "not valid JSON")
            return _json({"cards": []})

    return router


__all__ = ["RequestError", "create_router"]
