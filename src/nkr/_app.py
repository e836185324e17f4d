"""The one ASGI application behind ``nkr serve``: CDS Hooks, FHIR endpoints and the web app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from nkr import _ops, cdshooks, fhir, web
from nkr._middleware import BodySizeLimit, RequestHeadGuard
from nkr._package import Registry
from nkr._settings import Settings
from nkr.cdshooks import _openapi as cdshooks_openapi
from nkr.fhir import IssueType, outcome_response

_API_PATHS = ("/cds-services", "/fhir", "/_bench")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Errors the routing itself raises (no such address, method not allowed): a FHIR
    OperationOutcome on the API, the web app's own page for an address without a page."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404 and not path.startswith(_API_PATHS):
        lang = request.query_params.get("lang")
        return web.not_found_page(path, lang, request.app.state.registry)
    code: IssueType = "not-found" if exc.status_code == 404 else "not-supported"
    response = outcome_response(
        exc.status_code, code, f"{request.method} {path[:200]}: {exc.detail}"
    )
    response.headers.update(exc.headers or {})
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    """A parameter FastAPI itself validated (such as an over-long ``lang``): the app's own 400
    page on the web pages, an OperationOutcome naming the parameter on the API, instead of
    FastAPI's 422 JSON. Neither echoes the value (it may be anything a URL can carry)."""
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith(_API_PATHS):
        return web.bad_request_page(request.app.state.registry)
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    # ("query", "lang") names the parameter "lang"; a body location keeps its path.
    parameter = loc[:1] in (["query"], ["path"], ["header"], ["cookie"])
    name = ".".join(loc[1:] if parameter else loc) or "request"
    problem = str(first.get("msg", "invalid value"))
    return outcome_response(400, "invalid", f"{name}: {problem}", expression=name)


def _with_fhir_components(app: FastAPI) -> None:
    """The FHIR resource schemas the CDS Hooks request bodies refer to, in the document."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = plain().setdefault("components", {}).setdefault("schemas", {})
            schemas.update(cdshooks_openapi.COMPONENTS)
        return app.openapi_schema or plain()

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """Build the application from ``settings`` (default: the ``NKR_*`` environment) for the
    guidelines of ``registry`` (default: the installed ones)."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="nkr",
        summary="Clinical decision support for Danish national clinical guidelines (NKR)",
        version="0.1.0",
    )
    app.state.settings = settings
    _with_fhir_components(app)
    app.state.registry = registry
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # /healthz, /readyz and /metrics (operators' endpoints, no JWT, not in the OpenAPI document).
    app.include_router(_ops.create_router(settings))
    app.include_router(cdshooks.create_router(settings, registry))
    app.include_router(fhir.create_router(settings, registry))
    app.include_router(web.create_router(settings, registry))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Only the configured origins (an EHR's web client); none by default.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Accept-Language"],
            max_age=600,
        )
    # Outermost: an oversized head or a Host not allowed is refused before anything reads it.
    app.add_middleware(
        RequestHeadGuard,
        max_header_bytes=settings.max_header_bytes,
        allowed_hosts=settings.allowed_hosts,
        public_base_url=settings.public_base_url,
        api_paths=_API_PATHS,
    )
    if settings.metrics_token:
        # Around even the head guard, so that its refusals are counted too (it reads no
        # header, only the route the router matched, afterwards).
        app.add_middleware(_ops.Metrics)
    return app
