"""The CDS Hooks 2.0 service. Owned by issue 3 (CDS Hooks service)."""

from __future__ import annotations

from fastapi import APIRouter

from nkr._settings import Settings

__all__ = ["create_router"]


def create_router(settings: Settings) -> APIRouter:
    """The ``/cds-services`` endpoints."""
    return APIRouter()
