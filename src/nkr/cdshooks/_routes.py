"""The ``/cds-services`` endpoints: discovery, service calls and feedback."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from nkr import _metrics
from nkr._errors import InputError
from nkr._guideline import LANGS, Lang
from nkr._package import GuidelinePackage, Registry, ServiceSpec
from nkr._package import registry as _registry
from nkr._settings import Settings
from nkr.cdshooks import _openapi
from nkr.cdshooks._auth import (
    Authenticator,
    AuthError,
    AuthUnavailable,
    ReplayStore,
    parse_issuers,
)
from nkr.cdshooks._feedback import (
    INTERNAL_CALL,
    RECHECK_SECONDS,
    FeedbackRefused,
    FeedbackStore,
    may_be_pending,
    parse_feedback,
)
from nkr.cdshooks._kit import CardKit
from nkr.cdshooks._request import (
    HookRequest,
    RequestError,
    accept_language,
    parse_hook_request,
)
from nkr.fhir._fetch import (
    RETRY_AFTER_SECONDS,
    FetchBusy,
    Fetcher,
    FetchLimits,
    FhirServers,
    PrefetchUnavailable,
    new_client,
)
from nkr.fhir._outcome import input_error_response, outcome_response
from nkr.fhir._read import record_from_prefetch
from nkr.fhir._reading import FhirReading

log = logging.getLogger("nkr.cdshooks")

JSON = "application/json"
# How many distinct request origins (scheme, server, Host header, root path) keep their base
# URL derived; an EHR calls from one or two, a client making up Host headers gets no more.
BASE_URLS_KEPT = 64


# Cards carry patient-derived dates and reasons: no cache (browser, proxy) may keep an answer
# of a service call or of feedback. Error answers (OperationOutcome) are no-store as well.
NO_STORE: Final = {"Cache-Control": "no-store"}
# Discovery holds no patient data and changes only with a deployment: brief caching is fine;
# it is in the caller's language, so caches keep one copy per Accept-Language.
DISCOVERY_CACHE: Final = {"Cache-Control": "max-age=300", "Vary": "Accept-Language"}


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON, headers=NO_STORE)


def _header(request: Request, name: bytes) -> str | None:
    """A request header, as ``request.headers.get`` gives it (without building them all)."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _not_json(request: Request) -> Response | None:
    """A 415 unless the request says its body is JSON (``application/json``, in any case, with
    no charset or UTF-8, the only one JSON has): what CDS Hooks clients send. This refuses the
    "simple" cross-origin POSTs a browser sends without asking the server first (text/plain,
    forms), so that with authentication off no web page can call the services or post feedback
    in the name of a visitor. ``application/fhir+json`` is refused too: a CDS Hooks request is
    not a FHIR resource."""
    value = _header(request, b"content-type")
    if value == JSON:
        return None  # what every EHR sends: the fast path
    if value is not None:
        media, _, parameters = value.partition(";")
        charset = next(
            (
                v.strip().strip('"').lower()
                for k, _, v in (p.partition("=") for p in parameters.split(";"))
                if k.strip().lower() == "charset"
            ),
            "utf-8",
        )
        if media.strip().lower() == JSON and charset in ("utf-8", "utf8"):
            return None
    got = "no Content-Type" if value is None else f"Content-Type '{value[:80]}'"
    return outcome_response(
        415,
        "not-supported",
        f"the body must be JSON sent as Content-Type application/json (got {got})",
    )


def _unknown_service(service_id: str, known: Registry) -> Response:
    ids = ", ".join(s.id for p in known.packages for s in p.services)
    return outcome_response(
        404, "not-found", f"unknown CDS service '{service_id[:80]}' (expected one of: {ids})"
    )


def _discovery(known: Registry) -> dict[Lang, bytes]:
    """``GET /cds-services`` in each language: the services of every installed guideline,
    each with its guideline's prefetch templates."""
    return {
        lang: orjson.dumps(
            {
                "services": [
                    {
                        "hook": s.hook,
                        "id": s.id,
                        "title": s.title(lang),
                        "description": s.description(lang),
                        "prefetch": dict(p.prefetch),
                    }
                    for p in known.packages
                    for s in p.services
                ]
            }
        )
        for lang in LANGS
    }


def _unauthorized(exc: AuthError) -> Response:
    if isinstance(exc, AuthUnavailable):
        # The service's own fault (its replay store failed): refused, but worth a retry.
        response = outcome_response(503, "transient", str(exc))
        response.headers["Retry-After"] = "1"
        return response
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


class CdsHooks:
    """What the endpoints share: settings, the installed guidelines, authentication,
    feedback store."""

    def __init__(self, settings: Settings, known: Registry | None = None) -> None:
        self.settings = settings
        self.registry = known = known or _registry()
        # Service id -> (its guideline, the service), as Registry.service finds them: a dict,
        # since every call looks its service up.
        self.services: dict[str, tuple[GuidelinePackage, ServiceSpec]] = {
            s.id: (p, s) for p in known.packages for s in p.services
        }
        # Deny by default: with no entry nothing is fetched. Entries and each request's
        # fhirServer are compared in one normal form (whole path segments, ".." resolved, no
        # userinfo: nkr.fhir._fetch.normalise_base). The HTTP client is the lifespan's.
        self.fhir_servers = FhirServers(settings.fhir_servers)
        self.fetcher = Fetcher(
            self.fhir_servers,
            None,
            FetchLimits(settings.fhir_timeout_seconds, settings.fhir_max_response_bytes),
            settings.fhir_max_concurrent_fetches,
        )
        self._base_urls: dict[tuple[object, ...], str] = {}
        self.discovery = _discovery(known)
        self.store = FeedbackStore.in_dir(
            settings.data_dir, retention_days=settings.card_retention_days, registry=known
        )
        issuers = parse_issuers(settings.jwt_issuers)
        # The replay store is SQLite in the data folder: shared by every worker, kept across
        # restarts. Auth on implies NKR_PUBLIC_BASE_URL (the settings refuse it otherwise).
        self.auth = (
            Authenticator(
                issuers,
                timeout=settings.fhir_timeout_seconds,
                replay=ReplayStore.in_dir(settings.data_dir),
                max_token_bytes=settings.max_token_bytes,
            )
            if issuers
            else None
        )
        _ensure_logging()
        if self.auth is None:
            _warn_auth_off()
        else:
            log.info("CDS Hooks JWT authentication on; allowed issuers: %s", ", ".join(issuers))

    def base_url(self, request: Request) -> str:
        """The base of card links: ``NKR_PUBLIC_BASE_URL`` when set, else the request's own
        origin, whose Host header the app's middleware has checked against
        ``NKR_ALLOWED_HOSTS`` (and whose scheme counts X-Forwarded-Proto only from
        ``NKR_TRUSTED_PROXIES``)."""
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
        """Check the request's JWT; its ``aud`` must be ``NKR_PUBLIC_BASE_URL`` + ``path``,
        never a URL built from the request (Host header, X-Forwarded-Proto)."""
        if self.auth is not None:
            public = self.settings.public_base_url
            if public is None:  # the settings refuse auth without it; never fall back
                raise AuthError("no-public-url", "NKR_PUBLIC_BASE_URL is not configured")
            await self.auth.check(_header(request, b"authorization"), public + path)

    async def call(self, service_id: str, request: Request) -> Response:
        found = self.services.get(service_id)
        if found is None:
            return _unknown_service(service_id, self.registry)
        package, service = found
        if self.auth is not None:
            try:
                await self.authenticate(request, f"/cds-services/{service_id}")
            except AuthError as exc:
                return _unauthorized(exc)
        not_json = _not_json(request)
        if not_json is not None:
            return not_json
        body = await request.body()
        on = self.settings.today()
        try:
            hook_request, reading = await self._read(package, body, service.hook, on)
            lang = hook_request.lang or accept_language(_header(request, b"accept-language"))
            cards, issued = self._cards(package, hook_request, reading, on, lang, request)
        except PrefetchUnavailable as exc:
            return outcome_response(412, "incomplete", str(exc))
        except FetchBusy as exc:
            busy = outcome_response(503, "throttled", str(exc))
            busy.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return busy
        except InputError as exc:
            return input_error_response(exc)
        except ExceptionGroup as exc:
            # Only fetching runs tasks in parallel; PrefetchUnavailable is unwrapped there.
            kinds = ", ".join(type(e).__name__ for e in exc.exceptions)
            log.error("service %s: fetching prefetch failed with %s", service_id, kinds)
            return outcome_response(412, "incomplete", "prefetch: could not fetch from fhirServer")
        except Exception as exc:
            # A bug: logged by its type only (its message could hold a patient's data).
            log.error("service %s: unexpected %s", service_id, type(exc).__name__)
            return outcome_response(500, "exception", "an unexpected error in nkr (logged)")
        # The integrators page's own calls (marked in the ASGI scope, which HTTP cannot set)
        # are not EHR traffic: their cards are not recorded, nor counted as shown.
        if issued and INTERNAL_CALL not in request.scope:
            self.store.issued(service.id, issued)
        return _json({"cards": cards})

    async def _read(
        self, package: GuidelinePackage, body: bytes, hook: str, on: dt.date
    ) -> tuple[HookRequest, FhirReading]:
        """The request read once (typed), missing prefetch keys fetched (typed pages), and
        the guideline's reading of the patient's record."""
        templates = package.prefetch
        hook_request = parse_hook_request(body, hook, templates)
        prefetch = hook_request.prefetch
        if not prefetch.keys() >= templates.keys():
            prefetch = await self._prefetch(hook_request, templates)
        record = record_from_prefetch(
            prefetch, hook_request.draft_orders, drafts=hook_request.drafts
        )
        return hook_request, package.read_record(record, on)

    async def _prefetch(self, req: HookRequest, templates: Mapping[str, str]) -> Mapping[str, Any]:
        return await self.fetcher.fetch_missing(
            prefetch=req.prefetch,
            context=req.context,
            fhir_server=req.fhir_server,
            fhir_authorization=req.fhir_authorization,
            templates=templates,
        )

    def _cards(
        self,
        package: GuidelinePackage,
        req: HookRequest,
        reading: FhirReading,
        on: dt.date,
        lang: Lang,
        request: Request,
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
        """The cards by the guideline's card rules, and for the feedback store each card's
        uuid, topic and suggestion uuids (space-separated): what feedback on the card is
        checked against."""
        if reading.case is None:
            return [], []
        assessment = package.evaluate(reading.case, on)
        kit = CardKit(
            package,
            assessment,
            reading,
            lang=lang,
            base_url=self.base_url(request),
            patient=f"Patient/{req.patient_id}",
            encounter=None if req.encounter_id is None else f"Encounter/{req.encounter_id}",
        )
        package.cards(req.hook, assessment, kit)
        return kit.cards, kit.issued

    async def feedback(self, service_id: str, request: Request) -> Response:
        """Store feedback that matches cards this service issued (all items or none). What
        does not match gets 400 (a suggestion, reason or service the card did not have), 404
        (no such card on record) or 409 (the card has its outcome already), naming the item."""
        if service_id not in self.services:
            return _unknown_service(service_id, self.registry)
        try:
            await self.authenticate(request, f"/cds-services/{service_id}/feedback")
        except AuthError as exc:
            return _unauthorized(exc)
        not_json = _not_json(request)
        if not_json is not None:
            _metrics.FEEDBACK.labels("refused").inc()
            return not_json
        try:
            parsed = parse_feedback(await request.body())
        except InputError as exc:
            _metrics.FEEDBACK.labels("refused").inc()
            return outcome_response(400, "invalid", str(exc))
        items = parsed.feedback
        try:
            try:
                await asyncio.to_thread(self.store.store, service_id, parsed)
            except FeedbackRefused as exc:
                if not may_be_pending(exc.unknown, time.time()):
                    raise
                # Another worker may have issued the card a moment ago and write it soon.
                await asyncio.sleep(RECHECK_SECONDS)
                await asyncio.to_thread(self.store.store, service_id, parsed)
        except FeedbackRefused as exc:
            _metrics.FEEDBACK.labels("refused").inc(len(items))
            return outcome_response(exc.status, exc.code, exc.diagnostics, exc.where)
        accepted = sum(1 for item in items if item.outcome == "accepted")
        if accepted:
            _metrics.FEEDBACK.labels("accepted").inc(accepted)
        if accepted < len(items):
            _metrics.FEEDBACK.labels("overridden").inc(len(items) - accepted)
        # CDS Hooks 2.0 asks for 200 OK only; an empty JSON object says it in the content type
        # the OpenAPI document gives, for clients that parse every answer.
        return _json({})


def _endpoint(
    handle: Callable[[str, Request], Awaitable[Response]], service_id: str
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of one service's route. It takes the raw request only, which spares every
    call FastAPI's parameter validation (the body is read by the service itself)."""

    async def endpoint(request: Request) -> Response:
        return await handle(service_id, request)

    return endpoint


def create_router(settings: Settings, registry: Registry | None = None) -> APIRouter:
    """The ``/cds-services`` endpoints of the services of every guideline in ``registry``
    (default: the installed ones, :func:`nkr._package.registry`)."""
    hooks = CdsHooks(settings, registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One HTTP client for fetching prefetch, for the app's lifetime (only when fetching is
        # configured): creating one loads the CA bundle, ~80 ms on the event loop.
        if hooks.fhir_servers:
            keys = max(len(p.prefetch) for p in hooks.registry.packages)
            hooks.fetcher.client = new_client(settings.fhir_max_concurrent_fetches, keys=keys)
        # Everything loaded at start-up (modules, the guideline, value sets) lives as long as
        # the process: moved out of the collector's sight, it is not rescanned on every full
        # collection, which the many short-lived objects of FHIR requests trigger often.
        gc.freeze()
        try:
            async with hooks.store.running():
                yield
        finally:
            client, hooks.fetcher.client = hooks.fetcher.client, None
            if client is not None:
                await client.aclose()

    router = APIRouter(lifespan=lifespan, tags=["CDS Hooks"])

    # The OpenAPI document describes this deployment: whether missing prefetch is fetched,
    # whether calls need a JWT (nkr.cdshooks._openapi).
    fetching, auth = bool(hooks.fhir_servers), hooks.auth is not None

    @router.get(
        "/cds-services",
        summary="CDS Hooks discovery",
        openapi_extra={"parameters": [_openapi.ACCEPT_LANGUAGE]},
        responses=_openapi.discovery_responses(
            list(dict.fromkeys(s.hook for p in hooks.registry.packages for s in p.services))
        ),
    )
    async def discover(request: Request) -> Response:
        lang = accept_language(request.headers.get("accept-language"))
        return Response(hooks.discovery[lang], media_type=JSON, headers=DISCOVERY_CACHE)

    # One route, and one documented operation, per service: the body a service takes depends
    # on its hook, which one templated path could not document. The templated routes after
    # them answer any other id with a 404 (and are left out of the document).
    for package in hooks.registry.packages:
        for service in package.services:
            request_schema = _openapi.hook_request(
                service.hook, package.prefetch, fetching=fetching
            )
            router.add_api_route(
                f"/cds-services/{service.id}",
                _endpoint(hooks.call, service.id),
                methods=["POST"],
                summary=f"Call the {service.hook} service",
                openapi_extra={
                    "parameters": [_openapi.ACCEPT_LANGUAGE],
                    **_openapi.request_body(request_schema),
                },
                responses=_openapi.call_responses(fetching=fetching, auth=auth),
            )
            router.add_api_route(
                f"/cds-services/{service.id}/feedback",
                _endpoint(hooks.feedback, service.id),
                methods=["POST"],
                summary=f"Feedback on the {service.hook} service's cards",
                openapi_extra=_openapi.request_body(_openapi.FEEDBACK_REQUEST),
                responses=_openapi.feedback_responses(auth=auth),
            )

    @router.post("/cds-services/{service_id}", include_in_schema=False)
    async def call(request: Request) -> Response:
        return await hooks.call(request.path_params["service_id"], request)

    @router.post("/cds-services/{service_id}/feedback", include_in_schema=False)
    async def feedback(request: Request) -> Response:
        return await hooks.feedback(request.path_params["service_id"], request)

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
