"""OpenAPI descriptions of the raw-bytes endpoints (their bodies are parsed with orjson, not by
FastAPI, so the request and response shapes are documented here by hand).

The document says what the service really accepts and answers, and the test suite holds it to
that with schemathesis (tests/cdshooks/test_cds_schemathesis.py): a request that follows the
schema is answered 200, one that breaks it is refused with a 4xx, and every answer has a
documented status, content type, body and headers. Hence:

- one operation per service: a service takes only its own hook, and order-select and
  order-sign need their draft orders, which one templated path could not say;
- a constraint is in a schema only where the service checks it on every request. What is
  checked only in some cases (a birth date is read only when the patient has a diagnosis the
  guideline is about; an Observation only then) is described in words, not in the schema,
  where a schema-breaking value the service never reads would be "accepted";
- the prefetch keys are the guideline's (its templates say what each holds), required unless
  fetching is configured (``NKR_FHIR_SERVERS``): the document is built from the settings.

What no JSON Schema can say (that ``selections`` name entries of ``draftOrders``, that feedback
names a card this service issued) is in the descriptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from nkr.cdshooks._request import LANG_EXTENSION
from nkr.fhir._read import BY_TYPE, AnyResource

Schema = dict[str, Any]

_NULL: Final[Schema] = {"type": "null"}


def _or_null(schema: Schema) -> Schema:
    return {"anyOf": [schema, _NULL]}


# A string that is not empty nor only white space (the service strips it to check).
_TEXT: Final[Schema] = {"type": "string", "pattern": r"\S"}
_NONEMPTY: Final[Schema] = {"type": "string", "minLength": 1}
_OPTIONAL_STRING: Final[Schema] = _or_null({"type": "string"})

# -- FHIR shapes, as far as the service checks them on every request -----------------------------

# The FHIR resources as the typed reader decodes them on every request (nkr.fhir._read): each
# type's fields it reads with their JSON types, every other R4 type by its resourceType only.
# Shared schemas of the document (``components.schemas``, named Fhir...).
_PREFIX: Final = "Fhir"
_REF: Final = "#/components/schemas/" + _PREFIX
_ANY, _COMPONENTS = msgspec.json.schema_components([AnyResource], ref_template=_REF + "{name}")
COMPONENTS: Final[dict[str, Schema]] = {_PREFIX + name: c for name, c in _COMPONENTS.items()}
# Any FHIR R4 resource (a resourceType of R4's: else 400).
_RESOURCE: Final[Schema] = _ANY[0]


def _of_type(rtype: str) -> Schema:
    """One resource of type ``rtype``, as its struct is decoded."""
    kind = BY_TYPE.get(rtype)
    if kind is None:
        return _RESOURCE
    return {"$ref": f"{_REF}{kind.__name__}"}


def _bundle(description: str) -> Schema:
    return {"allOf": [{"$ref": f"{_REF}Bundle"}], "description": description}


# What is checked only in some cases, in words.
_READ_WITH_A_CASE = (
    " The values the guideline reads (a date's form, a code; README: Data in) are read only "
    "when the patient has a current Condition the guideline is about: then a missing or "
    "malformed one is a note or a 400 naming the field."
)


def _resource_type(template: str) -> tuple[str, bool]:
    """The FHIR resource type a prefetch template asks for, and whether it is a search (a
    searchset Bundle) rather than one resource."""
    path, search, _ = template.partition("?")
    return path.split("/", 1)[0], bool(search)


def _prefetch_key(template: str) -> Schema:
    rtype, search = _resource_type(template)
    if not search:
        return {
            "allOf": [_of_type(rtype)],
            "description": f"The {rtype} ({template})." + _READ_WITH_A_CASE,
        }
    return _bundle(
        f"A searchset Bundle of {rtype}s ({template}; other resource types are skipped)."
        + _READ_WITH_A_CASE
    )


def _prefetch(prefetch: Mapping[str, str], *, fetching: bool) -> Schema:
    keys = {key: _or_null(_prefetch_key(template)) for key, template in prefetch.items()}
    schema: Schema = {"type": "object", "properties": keys}
    if fetching:
        schema["description"] = (
            "The prefetch keys (null: no data). A key left out is fetched from fhirServer "
            "when NKR_FHIR_SERVERS allows it (else 412)."
        )
    else:
        schema["required"] = list(prefetch)
        schema["description"] = (
            "Every prefetch key (null: no data): this deployment fetches nothing "
            "(NKR_FHIR_SERVERS is not set), so a request without one is answered 412."
        )
    return schema


def _context(hook: str) -> Schema:
    properties: dict[str, Schema] = {
        "userId": _TEXT,
        "patientId": _TEXT,
        "encounterId": _or_null(_TEXT),
    }
    required = ["userId", "patientId"]
    description = "The hook's context."
    if hook != "patient-view":
        properties["draftOrders"] = _bundle("The draft orders.")
        required.append("draftOrders")
    if hook == "order-select":
        properties["selections"] = {
            "type": "array",
            "items": {"type": "string"},
            "description": "Each 'ResourceType/id' of an entry of draftOrders (else 400).",
        }
        required.append("selections")
        description += " Only the selected draft orders are read in full."
    return {
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
    }


def hook_request(hook: str, prefetch: Mapping[str, str], *, fetching: bool) -> Schema:
    """The request body a service for ``hook`` with the prefetch templates ``prefetch``
    accepts; ``fetching``: whether missing prefetch keys may be fetched (``NKR_FHIR_SERVERS``
    is set)."""
    required = ["hook", "hookInstance", "context"]
    if not fetching:
        required.append("prefetch")
    return {
        "type": "object",
        "description": f"A CDS Hooks 2.0 request for the {hook} hook.",
        "required": required,
        "properties": {
            "hook": {"const": hook},
            "hookInstance": _TEXT,
            "fhirServer": _or_null({"type": "string", "pattern": "^https?://"}),
            "fhirAuthorization": _or_null(
                {
                    "type": "object",
                    "description": "Needs fhirServer.",
                    "required": ["access_token"],
                    "properties": {
                        "access_token": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,8192}$"},
                        "token_type": {"const": "Bearer"},
                    },
                }
            ),
            "context": _context(hook),
            # Without fetching, a null prefetch is as incomplete as none (412).
            "prefetch": _or_null(_prefetch(prefetch, fetching=True))
            if fetching
            else _prefetch(prefetch, fetching=False),
            "extension": _or_null(
                {
                    "type": "object",
                    "properties": {LANG_EXTENSION: _or_null({"enum": ["da", "en"]})},
                }
            ),
        },
        # fhirAuthorization is for fhirServer: given without it, the request is refused.
        "anyOf": [
            {"properties": {"fhirAuthorization": _NULL}},
            {"required": ["fhirServer"], "properties": {"fhirServer": {"type": "string"}}},
        ],
    }


# Feedback as nkr's parser takes it (nkr.cdshooks._feedback): strings of 1-200 characters.
_SHORT: Final[Schema] = {"type": "string", "minLength": 1, "maxLength": 200}
_FEEDBACK_CODING: Final[Schema] = {
    "type": "object",
    "required": ["code"],
    "properties": {
        "system": _or_null(_SHORT),
        "code": _SHORT,
        "display": _or_null({"type": "string", "maxLength": 500}),
    },
}
FEEDBACK_REQUEST: Final[Schema] = {
    "type": "object",
    "description": "CDS Hooks 2.0 feedback on cards. Each item must name a card this service "
    "issued (else 404), its accepted suggestions must be the card's, an override reason one "
    "the card offered (else 400), and a card has one outcome (a second gets 409). Nothing of "
    "a refused request is stored.",
    "required": ["feedback"],
    "properties": {
        "feedback": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["card", "outcome", "outcomeTimestamp"],
                "properties": {
                    "card": _SHORT,
                    "outcome": {"enum": ["accepted", "overridden"]},
                    "acceptedSuggestions": {
                        "type": "array",
                        "maxItems": 50,
                        "items": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": _SHORT},
                        },
                    },
                    "overrideReason": _or_null(
                        {
                            "type": "object",
                            "properties": {
                                "reason": _or_null(_FEEDBACK_CODING),
                                "userComment": _OPTIONAL_STRING,
                            },
                        }
                    ),
                    "outcomeTimestamp": {"type": "string", "format": "date-time"},
                },
            },
        }
    },
}

# -- responses ------------------------------------------------------------------------------------

_CODING: Final[Schema] = {
    "type": "object",
    "required": ["code"],
    "properties": {"system": {"type": "string"}, "code": _NONEMPTY, "display": {"type": "string"}},
}
_LINK: Final[Schema] = {
    "type": "object",
    "required": ["label", "url", "type"],
    "properties": {
        "label": _NONEMPTY,
        "url": _NONEMPTY,
        "type": {"enum": ["absolute", "smart"]},
    },
}
_ACTION: Final[Schema] = {
    "type": "object",
    "required": ["type", "description"],
    "properties": {
        "type": {"enum": ["create", "update", "delete"]},
        "description": _NONEMPTY,
        "resource": {"type": "object"},
        "resourceId": {"type": "string"},
    },
}
CARDS_RESPONSE: Final[Schema] = {
    "type": "object",
    "required": ["cards"],
    "properties": {
        "cards": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["uuid", "summary", "indicator", "source"],
                "properties": {
                    "uuid": {"type": "string", "format": "uuid"},
                    "summary": {"type": "string", "minLength": 1, "maxLength": 139},
                    "detail": {"type": "string"},
                    "indicator": {"enum": ["info", "warning", "critical"]},
                    "source": {
                        "type": "object",
                        "required": ["label"],
                        "properties": {"label": _NONEMPTY, "url": _NONEMPTY, "topic": _CODING},
                    },
                    "suggestions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["label"],
                            "properties": {
                                "label": _NONEMPTY,
                                "uuid": {"type": "string"},
                                "isRecommended": {"type": "boolean"},
                                "actions": {"type": "array", "items": _ACTION},
                            },
                        },
                    },
                    "selectionBehavior": {"enum": ["at-most-one", "any"]},
                    "overrideReasons": {"type": "array", "items": _CODING},
                    "links": {"type": "array", "items": _LINK},
                },
            },
        },
        "systemActions": {"type": "array", "items": _ACTION},
    },
}


def _discovery_response(hooks: Sequence[str]) -> Schema:
    return {
        "type": "object",
        "required": ["services"],
        "properties": {
            "services": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["hook", "id", "description"],
                    "properties": {
                        "hook": {"enum": list(hooks)},
                        "id": _NONEMPTY,
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                        "usageRequirements": {"type": "string"},
                    },
                },
            }
        },
    }


FEEDBACK_RESPONSE: Final[Schema] = {
    "type": "object",
    "maxProperties": 0,
    "description": "An empty object: the feedback is stored.",
}
OPERATION_OUTCOME: Final[Schema] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": _NONEMPTY,
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

_NO_STORE_HEADER: Final[Schema] = {
    "description": "Answers of the services are never cached: they carry patient-derived data.",
    "required": True,
    "schema": {"type": "string", "enum": ["no-store"]},
}
_ERRORS: Final[dict[int, str]] = {
    400: "The request is malformed: an OperationOutcome naming the field (or a Host header "
    "this service does not answer to).",
    401: "Authentication is on (NKR_JWT_ISSUERS) and the request's JWT is missing or refused.",
    404: "No such card on record for this service (feedback).",
    409: "The card has its outcome already (feedback): the first outcome stands.",
    412: "A prefetch key is missing and cannot be fetched.",
    413: "The request body is larger than NKR_MAX_BODY_BYTES.",
    415: "The body is not sent as Content-Type application/json.",
    431: "The request line and headers are larger than NKR_MAX_HEADER_BYTES.",
    503: "Busy or briefly unavailable (too many fetches in flight, or the replay store "
    "cannot be written): try again after Retry-After seconds.",
}


def _error(status: int, *, no_store: bool = True) -> Schema:
    described: Schema = {
        "description": _ERRORS[status],
        "content": {"application/fhir+json": {"schema": OPERATION_OUTCOME}},
    }
    headers: dict[str, Schema] = {}
    if no_store:
        headers["Cache-Control"] = _NO_STORE_HEADER
    if status == 401:
        headers["WWW-Authenticate"] = {"required": True, "schema": {"type": "string"}}
    if status == 503:
        headers["Retry-After"] = {
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    if headers:
        described["headers"] = headers
    return described


def _ok(schema: Schema, description: str, *, no_store: bool) -> Schema:
    ok: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if no_store:
        ok["headers"] = {"Cache-Control": _NO_STORE_HEADER}
    return ok


def discovery_responses(hooks: Sequence[str]) -> dict[int | str, Schema]:
    """``GET /cds-services`` listing services of ``hooks``: no patient data, cacheable for a
    few minutes (per language)."""
    return {
        200: _ok(
            _discovery_response(hooks), "The services, in the Accept-Language", no_store=False
        ),
        400: _error(400),
        431: _error(431),
    }


def call_responses(*, fetching: bool, auth: bool) -> dict[int | str, Schema]:
    """A service call's answers; 401 only with authentication on, 503 only when fetching or
    authentication is on."""
    codes = [400, *([401] if auth else []), 412, 413, 415, 431]
    if fetching or auth:
        codes.append(503)
    described: dict[int | str, Schema] = {200: _ok(CARDS_RESPONSE, "The cards", no_store=True)}
    described.update({code: _error(code) for code in codes})
    return described


def feedback_responses(*, auth: bool) -> dict[int | str, Schema]:
    codes = [400, *([401] if auth else []), 404, 409, 413, 415, 431, *([503] if auth else [])]
    described: dict[int | str, Schema] = {200: _ok(FEEDBACK_RESPONSE, "Stored", no_store=True)}
    described.update({code: _error(code) for code in codes})
    return described


ACCEPT_LANGUAGE: Final[Schema] = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": "Danish unless English is preferred.",
    "schema": {"type": "string"},
}


def request_body(schema: Schema) -> Schema:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
