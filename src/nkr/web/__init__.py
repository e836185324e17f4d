"""The clinician web app (server-rendered). Owned by issue 4."""

from __future__ import annotations

from fastapi import APIRouter

from nkr._settings import Settings

__all__ = ["create_router"]


def create_router(settings: Settings) -> APIRouter:
    """The web pages: quick guide, recommendation pages, assessment, handout, integrators."""
    return APIRouter()
