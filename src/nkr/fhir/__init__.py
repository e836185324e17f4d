"""FHIR R4 at the edge: value sets, FHIR resources to a patient case, fetching from a FHIR server.

Owned by issue 3 (FHIR mapping). Public names are listed in ``__all__``.
"""

from __future__ import annotations

from fastapi import APIRouter

from nkr._settings import Settings

__all__ = ["create_router"]


def create_router(settings: Settings) -> APIRouter:
    """The ``/fhir`` endpoints (ValueSet search and read)."""
    return APIRouter()
