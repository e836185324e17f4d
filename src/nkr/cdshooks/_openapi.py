"""OpenAPI descriptions of the raw-bytes endpoints (their bodies are parsed with orjson, not by
FastAPI, so the request and response shapes are documented here by hand)."""

from __future__ import annotations

from typing import Any

from nkr.cdshooks._request import LANG_EXTENSION, PREFETCH_TYPES
from nkr.cdshooks._services import HOOKS

_STRING: dict[str, Any] = {"type": "string", "minLength": 1}
_RESOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
}
_BUNDLE: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string"},
        "entry": {
            "type": "array",
            "items": {"type": "object", "properties": {"resource": _RESOURCE}},
        },
    },
}
_CODING: dict[str, Any] = {
    "type": "object",
    "required": ["code"],
    "properties": {"system": {"type": "string"}, "code": _STRING, "display": {"type": "string"}},
}

HOOK_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "A CDS Hooks 2.0 service request.",
    "required": ["hook", "hookInstance", "context"],
    "properties": {
        "hook": {"type": "string", "enum": list(HOOKS)},
        "hookInstance": _STRING,
        "fhirServer": {"type": "string", "format": "uri"},
        "fhirAuthorization": {
            "type": "object",
            "required": ["access_token", "token_type"],
            "properties": {
                "access_token": _STRING,
                "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer"},
                "scope": {"type": "string"},
                "subject": {"type": "string"},
            },
        },
        "context": {
            "type": "object",
            "required": ["userId", "patientId"],
            "description": "order-select also needs selections and draftOrders; order-sign "
            "needs draftOrders.",
            "properties": {
                "userId": _STRING,
                "patientId": _STRING,
                "encounterId": _STRING,
                "selections": {"type": "array", "items": {"type": "string"}},
                "draftOrders": _BUNDLE,
            },
        },
        "prefetch": {
            "type": "object",
            "properties": {
                key: {"oneOf": [_RESOURCE if key == "patient" else _BUNDLE, {"type": "null"}]}
                for key in PREFETCH_TYPES
            },
        },
        "extension": {
            "type": "object",
            "properties": {LANG_EXTENSION: {"type": "string", "enum": ["da", "en"]}},
        },
    },
}

FEEDBACK_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "CDS Hooks 2.0 feedback on cards.",
    "required": ["feedback"],
    "properties": {
        "feedback": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["card", "outcome", "outcomeTimestamp"],
                "properties": {
                    "card": _STRING,
                    "outcome": {"type": "string", "enum": ["accepted", "overridden"]},
                    "acceptedSuggestions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": _STRING},
                        },
                    },
                    "overrideReason": {
                        "type": "object",
                        "properties": {"reason": _CODING, "userComment": {"type": "string"}},
                    },
                    "outcomeTimestamp": {"type": "string", "format": "date-time"},
                },
            },
        }
    },
}

_LINK = {
    "type": "object",
    "required": ["label", "url", "type"],
    "properties": {"label": _STRING, "url": _STRING, "type": {"enum": ["absolute", "smart"]}},
}
CARDS_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["cards"],
    "properties": {
        "cards": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["uuid", "summary", "indicator", "source"],
                "properties": {
                    "uuid": _STRING,
                    "summary": {"type": "string", "maxLength": 139},
                    "detail": {"type": "string"},
                    "indicator": {"enum": ["info", "warning", "critical"]},
                    "source": {
                        "type": "object",
                        "required": ["label"],
                        "properties": {"label": _STRING, "url": _STRING, "topic": _CODING},
                    },
                    "suggestions": {"type": "array", "items": {"type": "object"}},
                    "selectionBehavior": {"enum": ["at-most-one", "any"]},
                    "overrideReasons": {"type": "array", "items": _CODING},
                    "links": {"type": "array", "items": _LINK},
                },
            },
        },
        "systemActions": {"type": "array", "items": {"type": "object"}},
    },
}

_OUTCOME = {
    "description": "An OperationOutcome naming the problem.",
    "content": {"application/fhir+json": {"schema": {"type": "object"}}},
}


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def responses(ok: dict[str, Any], *codes: int) -> dict[int | str, dict[str, Any]]:
    described: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    for code in codes:
        described[code] = _OUTCOME
    return described
