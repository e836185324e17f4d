"""The one ASGI application behind ``nkr serve``: CDS Hooks, FHIR endpoints and the web app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from nkr import cdshooks, fhir, web
from nkr._middleware import BodySizeLimit
from nkr._settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application from ``settings`` (default: the ``NKR_*`` environment)."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="nkr",
        summary="Clinical decision support for Danish national clinical guidelines (NKR)",
        version="0.1.0",
    )
    app.state.settings = settings
    app.include_router(cdshooks.create_router(settings))
    app.include_router(fhir.create_router(settings))
    app.include_router(web.create_router(settings))
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
    return app
