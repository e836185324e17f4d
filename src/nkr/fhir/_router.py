"""The ``/fhir`` endpoints: the value sets as FHIR R4 ValueSet resources (search and read)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from nkr._settings import Settings
from nkr.fhir._outcome import FHIR_JSON, FhirJSONResponse, outcome_response
from nkr.fhir._valuesets import ValueSets, load_valuesets

_FHIR_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "A FHIR resource"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"content": {FHIR_JSON: {}}, "description": "OperationOutcome: no such ValueSet"},
}


def _one_of(param: str | None) -> set[str] | None:
    """A FHIR token or uri search value: comma-separated alternatives (OR)."""
    values = {v.strip() for v in (param or "").split(",") if v.strip()}
    return values or None  # FHIR ignores a parameter without a value


def create_valueset_router(valuesets: ValueSets) -> APIRouter:
    """The ``/fhir`` endpoints serving ``valuesets``."""
    router = APIRouter(prefix="/fhir", tags=["FHIR"])
    resources = {vs_id: valuesets.to_fhir(vs_id) for vs_id in valuesets.ids}

    @router.get(
        "/ValueSet",
        response_class=FhirJSONResponse,
        responses=_FHIR_RESPONSE,
        summary="Search the value sets (searchset Bundle)",
    )
    def search_valuesets(
        request: Request,
        url: Annotated[str | None, Query(description="Canonical URL(s)")] = None,
        id_: Annotated[str | None, Query(alias="_id", description="Logical id(s)")] = None,
    ) -> FhirJSONResponse:
        urls = _one_of(url)
        if urls is not None:
            urls = {u.partition("|")[0] for u in urls}
        ids = _one_of(id_)
        base = str(request.base_url).rstrip("/")
        entries = [
            {
                "fullUrl": f"{base}/fhir/ValueSet/{vs_id}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for vs_id, resource in resources.items()
            if (ids is None or vs_id in ids) and (urls is None or resource["url"] in urls)
        ]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": entries,
        }
        return FhirJSONResponse(bundle)

    @router.get(
        "/ValueSet/{vs_id}",
        response_class=FhirJSONResponse,
        responses=_FHIR_RESPONSE | _NOT_FOUND,
        summary="Read one value set",
    )
    def read_valueset(vs_id: str) -> FhirJSONResponse:
        resource = resources.get(vs_id)
        if resource is None:
            return outcome_response(
                404, "not-found", "No ValueSet with this id", expression="ValueSet.id"
            )
        return FhirJSONResponse(resource)

    return router


def create_router(settings: Settings) -> APIRouter:
    """The ``/fhir`` endpoints (ValueSet search and read), with the deployment's extra value
    sets merged in. A broken extra file raises :class:`~nkr.InputError` at start-up."""
    return create_valueset_router(load_valuesets(settings.valueset_dir))
