"""The ``/fhir`` endpoints: the value sets as FHIR R4 ValueSet resources (search and read),
the guidelines' CPG artifacts (PlanDefinition and ActivityDefinition, search and read),
``PlanDefinition/$apply`` and the CapabilityStatement of exactly that (``/fhir/metadata``)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from nkr._errors import InputError
from nkr._package import Registry, registry
from nkr._settings import Settings
from nkr.fhir._outcome import FHIR_JSON, FhirJSONResponse, input_error_response, outcome_response
from nkr.fhir._valuesets import ValueSets

if TYPE_CHECKING:
    from nkr._package import GuidelinePackage
    from nkr.fhir._artifacts import Artifacts

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


def create_valueset_router(*valuesets: ValueSets, base: str | None = None) -> APIRouter:
    """The ``/fhir`` endpoints serving ``valuesets`` (one collection per guideline; an id
    that two give differently is an error, the same value set given twice is served once),
    their canonical URLs under ``base`` (None: as the value sets give them)."""
    router = APIRouter(prefix="/fhir", tags=["FHIR"])
    resources: dict[str, dict[str, Any]] = {}
    for collection in valuesets:
        for vs_id in collection.ids:
            resource = collection.to_fhir(vs_id)
            if base is not None:
                resource["url"] = f"{base}/ValueSet/{vs_id}"
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


# -- the CPG artifacts ---------------------------------------------------------------------------

SERVED: Final = ("ValueSet", "PlanDefinition", "ActivityDefinition")
_SEARCH_BY: Final = {
    "ValueSet": ("url", "_id"),
    "PlanDefinition": ("url", "status", "_id"),
    "ActivityDefinition": ("url", "status", "_id"),
}
APPLY_OPERATION: Final = "http://hl7.org/fhir/uv/cpg/OperationDefinition/cpg-plandefinition-apply"


def _resource_schema(resource_type: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": resource_type}},
    }


def _searchset_schema(resource_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"A FHIR R4 searchset Bundle of {resource_type}s.",
        "required": ["resourceType", "type", "total", "entry"],
        "properties": {
            "resourceType": {"const": "Bundle"},
            "type": {"const": "searchset"},
            "total": {"type": "integer", "minimum": 0},
            "entry": {"type": "array", "items": {"type": "object"}},
        },
    }


_APPLY_ANSWER: Final = {
    "type": "object",
    "description": "A collection Bundle (one subject) or a Parameters of 'return' Bundles",
    "required": ["resourceType"],
    "properties": {"resourceType": {"enum": ["Bundle", "Parameters"]}},
}
_PATH_ID: Final = {"in": "path", "required": True, "schema": {"type": "string"}}
_APPLY_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: _answer(_APPLY_ANSWER, "A Bundle per subject"),
    400: _answer(_OUTCOME_SCHEMA, "OperationOutcome: a missing or wrong parameter, by location"),
    404: _answer(_OUTCOME_SCHEMA, "OperationOutcome: no such PlanDefinition"),
    413: _answer(_OUTCOME_SCHEMA, "OperationOutcome: the body is larger than NKR_MAX_BODY_BYTES"),
    415: _answer(_OUTCOME_SCHEMA, "OperationOutcome: not sent as application/fhir+json"),
    431: _answer(_OUTCOME_SCHEMA, "OperationOutcome: the request head is too large"),
}
_APPLY_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            FHIR_JSON: {"schema": {"type": "object", "description": "A FHIR R4 Parameters"}}
        },
    }
}


def _fhir_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media, _, parameters = content_type.partition(";")
    charset = parameters.partition("charset=")[2].strip().strip('"').lower() or "utf-8"
    return media.strip().lower() in (FHIR_JSON, "application/json") and charset in (
        "utf-8",
        "utf8",
    )


def _searchset(request: Request, resource_type: str, found: list[dict[str, Any]]) -> Any:
    base = str(request.base_url).rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {
                "fullUrl": f"{base}/fhir/{resource_type}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in found
        ],
    }


def capability_statement(date: str) -> dict[str, Any]:
    """What ``/fhir`` serves, exactly."""
    try:
        version = importlib.metadata.version("nkr")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - from a checkout
        version = "0"
    resources = []
    for resource_type in SERVED:
        entry: dict[str, Any] = {
            "type": resource_type,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": "token" if name != "url" else "uri"}
                for name in _SEARCH_BY[resource_type]
            ],
        }
        if resource_type == "PlanDefinition":
            entry["operation"] = [{"name": "apply", "definition": APPLY_OPERATION}]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "nkr",
        "kind": "instance",
        "software": {"name": "nkr", "version": version},
        "implementation": {
            "description": "nkr: the guidelines' value sets and CPG artifacts, and $apply"
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "instantiates": ["http://hl7.org/fhir/uv/cpg/CapabilityStatement/cpg-service"],
        "rest": [{"mode": "server", "resource": resources}],
    }


Search = Callable[[str, Request], FhirJSONResponse]
Read = Callable[[str, str], FhirJSONResponse]


def _endpoints(
    resource_type: str, search: Search, read: Read
) -> tuple[Callable[[Request], FhirJSONResponse], Callable[[Request], FhirJSONResponse]]:
    """The search and read endpoints of one resource type (their only argument is the
    request: FastAPI would read any other as a query parameter)."""

    def search_endpoint(request: Request) -> FhirJSONResponse:
        return search(resource_type, request)

    def read_endpoint(request: Request) -> FhirJSONResponse:
        return read(resource_type, request.path_params["resource_id"])

    return search_endpoint, read_endpoint


def add_artifact_routes(
    router: APIRouter, settings: Settings, packages: tuple[GuidelinePackage, ...]
) -> None:
    """PlanDefinition and ActivityDefinition (search by url, status, _id; read), ``$apply``
    (instance and type level) and ``/fhir/metadata``, for the artifacts of ``packages``, on
    the ``/fhir`` router."""
    from nkr.fhir._apply import apply, parse_parameters
    from nkr.fhir._artifacts import build_artifacts

    served: dict[str, dict[str, dict[str, Any]]] = {"PlanDefinition": {}, "ActivityDefinition": {}}
    plans: dict[str, tuple[GuidelinePackage, Artifacts]] = {}
    for package in packages:
        artifacts = build_artifacts(package, settings.canonical_base)
        for resource_type, by_id in served.items():
            for resource in artifacts.of(resource_type):
                if resource["id"] in by_id:
                    raise InputError(f"{resource_type} id {resource['id']!r} is used twice")
                by_id[resource["id"]] = resource
        for resource in artifacts.of("PlanDefinition"):
            plans[resource["id"]] = (package, artifacts)
    by_url = {r["url"]: r["id"] for r in served["PlanDefinition"].values()}
    metadata = capability_statement(settings.today().isoformat())

    @router.get(
        "/metadata",
        response_class=FhirJSONResponse,
        responses={
            200: _answer(_resource_schema("CapabilityStatement", "What is served"), "It"),
            **_ERRORS,
        },
        summary="The CapabilityStatement: exactly what /fhir serves",
    )
    def read_metadata() -> FhirJSONResponse:
        return FhirJSONResponse(metadata)

    def search(resource_type: str, request: Request) -> FhirJSONResponse:
        query = request.query_params
        urls = _one_of(query.get("url"))
        if urls is not None:
            urls = {u.partition("|")[0] for u in urls}
        statuses = _one_of(query.get("status"))
        ids = _one_of(query.get("_id"))
        found = [
            r
            for r in served[resource_type].values()
            if (ids is None or r["id"] in ids)
            and (urls is None or r["url"] in urls)
            and (statuses is None or r["status"] in statuses)
        ]
        return FhirJSONResponse(_searchset(request, resource_type, found))

    def read(resource_type: str, resource_id: str) -> FhirJSONResponse:
        resource = served[resource_type].get(resource_id)
        if resource is None:
            return outcome_response(
                404, "not-found", f"No {resource_type} with this id", f"{resource_type}.id"
            )
        return FhirJSONResponse(resource)

    for resource_type in served:
        parameters = [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in _SEARCH_BY[resource_type]
        ]

        search_endpoint, read_endpoint = _endpoints(resource_type, search, read)

        router.add_api_route(
            f"/{resource_type}",
            search_endpoint,
            methods=["GET"],
            response_class=FhirJSONResponse,
            responses={200: _answer(_searchset_schema(resource_type), "The matches"), **_ERRORS},
            openapi_extra={"parameters": parameters},
            summary=f"Search the {resource_type}s (searchset Bundle)",
            name=f"search_{resource_type}",
        )
        router.add_api_route(
            f"/{resource_type}/{{resource_id}}",
            read_endpoint,
            methods=["GET"],
            response_class=FhirJSONResponse,
            responses={
                200: _answer(_resource_schema(resource_type, f"A {resource_type}"), "It"),
                404: _answer(_OUTCOME_SCHEMA, f"OperationOutcome: no such {resource_type}"),
                **_ERRORS,
            },
            openapi_extra={"parameters": [{"name": "resource_id", **_PATH_ID}]},
            summary=f"Read one {resource_type}",
            name=f"read_{resource_type}",
        )

    async def run_apply(request: Request, plan_id: str | None) -> Response:
        if not _fhir_json(request.headers.get("content-type")):
            got = request.headers.get("content-type")
            return outcome_response(
                415,
                "not-supported",
                "the body must be a Parameters resource sent as application/fhir+json "
                f"(got {'no Content-Type' if got is None else repr(got[:80])})",
            )
        body = await request.body()
        try:
            call = parse_parameters(body)
            if plan_id is None:
                if call.url is None:
                    raise InputError(
                        "Parameters.parameter.where(name = 'url')",
                        "the type-level $apply needs the PlanDefinition's url",
                    )
                found = by_url.get(call.url)
                if found is None:
                    return outcome_response(
                        404,
                        "not-found",
                        "No PlanDefinition with this url",
                        "Parameters.parameter.where(name = 'url')",
                    )
                plan_id = found
            elif plan_id not in plans:
                return outcome_response(
                    404, "not-found", "No PlanDefinition with this id", "PlanDefinition.id"
                )
            package, artifacts = plans[plan_id]
            plan = served["PlanDefinition"][plan_id]
            answer = apply(package, artifacts, plan, call, settings.today())
        except InputError as exc:
            return input_error_response(exc)
        return FhirJSONResponse(answer, headers={"Cache-Control": "no-store"})

    @router.post(
        "/PlanDefinition/{plan_id}/$apply",
        response_class=FhirJSONResponse,
        responses=_APPLY_RESPONSES,
        openapi_extra=_APPLY_BODY | {"parameters": [{"name": "plan_id", **_PATH_ID}]},
        summary="Apply a PlanDefinition to the subjects' data (CPG cpg-plandefinition-apply)",
    )
    async def apply_instance(request: Request) -> Response:
        return await run_apply(request, request.path_params["plan_id"])

    @router.post(
        "/PlanDefinition/$apply",
        response_class=FhirJSONResponse,
        responses=_APPLY_RESPONSES,
        openapi_extra=_APPLY_BODY,
        summary="Apply the PlanDefinition named by the 'url' parameter",
    )
    async def apply_type(request: Request) -> Response:
        return await run_apply(request, None)


def create_router(settings: Settings, known: Registry | None = None) -> APIRouter:
    """The ``/fhir`` endpoints: the value sets of every guideline of ``known`` (default: the
    installed ones), with the deployment's extra value sets merged in, the guidelines' CPG
    artifacts, ``$apply`` and the CapabilityStatement. A broken extra file or guideline data
    raises :class:`~nkr.InputError` at start-up."""
    packages = (known or registry()).packages
    router = create_valueset_router(*(p.valuesets for p in packages), base=settings.canonical_base)
    add_artifact_routes(router, settings, packages)
    return router
