"""The ``/fhir`` endpoints: the value sets as FHIR R4 ValueSet resources (search and read)."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request

from nkr._errors import InputError
from nkr._package import Registry, registry
from nkr._settings import Settings
from nkr.fhir._outcome import FHIR_JSON, FhirJSONResponse, outcome_response
from nkr.fhir._valuesets import ValueSets

# What the endpoints answer, for the OpenAPI document (the responses are built by hand, so
# FastAPI would otherwise call them strings). The FHIR R4 shapes as far as nkr fills them in.
_CONCEPT: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string"}, "display": {"type": "string"}},
}
VALUESET_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "A FHIR R4 ValueSet (every concept with its provenance as an extension).",
    "required": ["resourceType", "id", "url", "status", "compose"],
    "properties": {
        "resourceType": {"const": "ValueSet"},
        "id": {"type": "string"},
        "url": {"type": "string"},
        "version": {"type": "string"},
        "name": {"type": "string"},
        "title": {"type": "string"},
        "status": {"enum": ["draft", "active", "retired", "unknown"]},
        "compose": {
            "type": "object",
            "required": ["include"],
            "properties": {
                "include": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["system"],
                        "properties": {
                            "system": {"type": "string"},
                            "concept": {"type": "array", "items": _CONCEPT},
                        },
                    },
                }
            },
        },
    },
}
BUNDLE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "A FHIR R4 searchset Bundle of ValueSets.",
    "required": ["resourceType", "type", "total", "entry"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"const": "searchset"},
        "total": {"type": "integer", "minimum": 0},
        "link": {"type": "array", "items": {"type": "object"}},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["fullUrl", "resource"],
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": VALUESET_SCHEMA,
                    "search": {"type": "object"},
                },
            },
        },
    },
}
_OUTCOME_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
}


def _answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {FHIR_JSON: {"schema": schema}}}


_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: _answer(_OUTCOME_SCHEMA, "OperationOutcome: a Host header this service does not allow"),
    431: _answer(_OUTCOME_SCHEMA, "OperationOutcome: the request head is too large"),
}
_SEARCH_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: _answer(BUNDLE_SCHEMA, "The matching value sets"),
    **_ERRORS,
}
_READ_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: _answer(VALUESET_SCHEMA, "The value set"),
    404: _answer(_OUTCOME_SCHEMA, "OperationOutcome: no such ValueSet"),
    **_ERRORS,
}
# The search parameters, read from the query by the endpoint itself: any string is a valid
# search value, so FastAPI has nothing to validate (and no 422 to document).
_SEARCH_PARAMETERS: Final = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }
    for name, description in (
        ("url", "Canonical URL(s), comma-separated; a version after '|' is ignored"),
        ("_id", "Logical id(s), comma-separated"),
    )
]
_READ_PARAMETERS: Final = [
    {"name": "vs_id", "in": "path", "required": True, "schema": {"type": "string"}}
]


def _one_of(param: str | None) -> set[str] | None:
    """A FHIR token or uri search value: comma-separated alternatives (OR)."""
    values = {v.strip() for v in (param or "").split(",") if v.strip()}
    return values or None  # FHIR ignores a parameter without a value


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """A ValueSet without the time its expansion was made (loads a second apart differ)."""
    expansion = {k: v for k, v in resource["expansion"].items() if k != "timestamp"}
    return resource | {"expansion": expansion}


def create_valueset_router(*valuesets: ValueSets) -> APIRouter:
    """The ``/fhir`` endpoints serving ``valuesets`` (one collection per guideline; an id
    that two give differently is an error, the same value set given twice is served once)."""
    router = APIRouter(prefix="/fhir", tags=["FHIR"])
    resources: dict[str, dict[str, Any]] = {}
    for collection in valuesets:
        for vs_id in collection.ids:
            resource = collection.to_fhir(vs_id)
            if vs_id in resources and _content(resources[vs_id]) != _content(resource):
                raise InputError(f"value sets: id {vs_id!r} is given by two guidelines")
            resources.setdefault(vs_id, resource)

    @router.get(
        "/ValueSet",
        response_class=FhirJSONResponse,
        responses=_SEARCH_RESPONSES,
        openapi_extra={"parameters": _SEARCH_PARAMETERS},
        summary="Search the value sets (searchset Bundle)",
    )
    def search_valuesets(request: Request) -> FhirJSONResponse:
        query = request.query_params
        urls = _one_of(query.get("url"))
        if urls is not None:
            urls = {u.partition("|")[0] for u in urls}
        ids = _one_of(query.get("_id"))
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
        responses=_READ_RESPONSES,
        openapi_extra={"parameters": _READ_PARAMETERS},
        summary="Read one value set",
    )
    def read_valueset(request: Request) -> FhirJSONResponse:
        resource = resources.get(request.path_params["vs_id"])
        if resource is None:
            return outcome_response(
                404, "not-found", "No ValueSet with this id", expression="ValueSet.id"
            )
        return FhirJSONResponse(resource)

    return router


def create_router(settings: Settings, known: Registry | None = None) -> APIRouter:
    """The ``/fhir`` endpoints (ValueSet search and read): the value sets of every guideline
    of ``known`` (default: the installed ones), with the deployment's extra value sets merged
    in. A broken extra file raises :class:`~nkr.InputError` at start-up."""
    return create_valueset_router(*(p.valuesets for p in (known or registry()).packages))
