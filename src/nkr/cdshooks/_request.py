"""A CDS Hooks 2.0 service request, parsed from raw bytes and checked by hand.

The hot path does not validate FHIR with pydantic (too slow per resource, see REFERENCES.md):
this module checks the request's own shape, and the FHIR mapping checks the resources' fields
it reads. Every error names the field and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from nkr._errors import InputError
from nkr._guideline import Lang
from nkr.fhir._fetch import bundle_entries
from nkr.fhir._mapping import check_draft_orders

Resource = dict[str, Any]

# Prefetch keys, with the resource type each holds (a Bundle of that type, or the resource).
PREFETCH_TYPES: dict[str, str] = {
    "patient": "Patient",
    "conditions": "Condition",
    "observations": "Observation",
    "procedures": "Procedure",
    "serviceRequests": "ServiceRequest",
}
# What each prefetch key holds at its top: the Patient, or a Bundle of the resources.
_PREFETCH_CONTAINER = {key: "Patient" if key == "patient" else "Bundle" for key in PREFETCH_TYPES}
# A request extension that asks for a language, for EHRs that cannot set Accept-Language.
LANG_EXTENSION = "nkr-lang"


# RFC 6750 allows less; anything printable without spaces can at least be sent in a header.
_BEARER_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}")
# An Accept-Language quality value (RFC 9110 section 12.4.2), in ASCII digits: ``float`` alone
# would also read other digits ("٠.٥") and forms like "1e0" or "nan".
_QUALITY = re.compile(r"q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)", re.ASCII | re.IGNORECASE)


class RequestError(InputError):
    """The request is malformed: answered with 400 and an OperationOutcome."""


# Not frozen: one is built on every call, and a frozen dataclass costs there (its fields are
# only read after it is built).
@dataclass(slots=True)
class HookRequest:
    hook: str
    hook_instance: str
    user_id: str
    patient_id: str
    encounter_id: str | None
    context: dict[str, Any]
    # Resources of context.draftOrders; for order-select only the selected ones.
    draft_orders: list[Resource]
    # The prefetch keys the request carries: a resource or Bundle, or None ("no data"); as
    # JSON, or as the quick reading's structs (``nkr.fhir._typed``).
    prefetch: Mapping[str, object]
    fhir_server: str | None
    fhir_authorization: dict[str, Any] | None
    lang: Lang | None


def _fail(message: str) -> RequestError:
    return RequestError(message)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _string(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _fail(f"{where}{key}: required field is missing (expected a string)")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where}{key}: expected a non-empty string, got {_type_name(value)}")
    return value


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{where}: expected a JSON object, got {_type_name(value)}")
    return value


def bundle_resources(bundle: object, where: str) -> list[Resource]:
    """The resources of a Bundle's entries (each one's shape is checked where it is read)."""
    b = _object(bundle, where)
    if b.get("resourceType") != "Bundle":
        raise _fail(f"{where}.resourceType: expected 'Bundle', got {_shown(b.get('resourceType'))}")
    return bundle_entries(b.get("entry"), where)


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:40])
    return _type_name(value)


def _prefetch(raw: object) -> dict[str, Resource | None]:
    if raw is None:
        return {}
    prefetch = _object(raw, "prefetch")
    out: dict[str, Resource | None] = {}
    for key, expected in _PREFETCH_CONTAINER.items():
        if key not in prefetch:
            continue
        value = prefetch[key]
        if value is None:
            out[key] = None
            continue
        item = value if type(value) is dict else _object(value, f"prefetch.{key}")
        given = item.get("resourceType")
        if given != expected:
            raise _fail(f"prefetch.{key}.resourceType: expected '{expected}', got {_shown(given)}")
        out[key] = item
    return out


def _selected(drafts: list[Resource], selections: list[str]) -> list[Resource]:
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in drafts if isinstance(r.get("id"), str)}
    chosen: list[Resource] = []
    for index, ref in enumerate(selections):
        resource = by_ref.get(ref)
        if resource is None:
            raise _fail(
                f"context.selections[{index}]: {_shown(ref)} is not an entry of "
                "context.draftOrders (expected 'ResourceType/id')"
            )
        chosen.append(resource)
    return chosen


def _check_drafts(bundle: dict[str, Any]) -> None:
    """Each draft order's ``resourceType`` and ``id``, which the selections refer to: checked
    here, naming the entry, before a selection is looked up among them."""
    for i, entry in enumerate(bundle.get("entry") or ()):
        resource = entry.get("resource")
        if resource is None:
            continue
        where = f"context.draftOrders.entry[{i}].resource"
        rtype = resource.get("resourceType")
        if type(rtype) is not str or not rtype:
            raise _fail(f"{where}.resourceType: required, a string")
        rid = resource.get("id")
        if rid is not None and type(rid) is not str:
            raise _fail(f"{where}.id: expected a string, got {_type_name(rid)}")


def _draft_orders(context: dict[str, Any], hook: str) -> list[Resource]:
    if hook == "patient-view":
        return []
    if "draftOrders" not in context:
        raise _fail("context.draftOrders: required field is missing (expected a Bundle)")
    drafts = bundle_resources(context["draftOrders"], "context.draftOrders")
    if hook == "order-sign":
        return drafts
    _check_drafts(context["draftOrders"])
    check_draft_orders(drafts)
    selections = context.get("selections")
    if selections is None:
        raise _fail("context.selections: required field is missing (expected an array of strings)")
    if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
        raise _fail("context.selections: expected an array of strings ('ResourceType/id')")
    return _selected(drafts, selections)


def _lang(raw: object) -> Lang | None:
    if raw is None:
        return None
    extension = _object(raw, "extension")
    value = extension.get(LANG_EXTENSION)
    if value is None:
        return None
    if value == "da":
        return "da"
    if value == "en":
        return "en"
    raise _fail(f"extension.{LANG_EXTENSION}: expected 'da' or 'en', got {_shown(value)}")


def _fhir_authorization(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    auth = _object(raw, "fhirAuthorization")
    token = _string(auth, "access_token", "fhirAuthorization.")
    if token is None or _BEARER_TOKEN.fullmatch(token) is None:
        raise _fail("fhirAuthorization.access_token: expected a bearer token (printable ASCII)")
    token_type = auth.get("token_type", "Bearer")
    if token_type != "Bearer":
        raise _fail(f"fhirAuthorization.token_type: expected 'Bearer', got {_shown(token_type)}")
    return auth


def _fhir_server(raw: object) -> str | None:
    if raw is None:
        return None
    # Never echoed: the value may carry a user name and password. Scheme case is the fetch's
    # normal form's business (an allowlisted server written "HTTP://" still matches).
    if not isinstance(raw, str) or not raw[:8].lower().startswith(("https://", "http://")):
        raise _fail("fhirServer: expected an http(s) URL")
    return raw.rstrip("/")


def parse_hook_request(body: bytes, hook: str) -> HookRequest:
    """Parse and check a service request for ``hook``; raises :class:`RequestError`."""
    if not body.strip():
        raise _fail("the request body is empty (expected a CDS Hooks request, a JSON object)")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"the request body is not valid JSON: {exc}") from None
    request = _object(data, "request body")
    return check_hook_request(request, hook, _prefetch(request.get("prefetch")))


def check_hook_request(
    request: dict[str, Any], hook: str, prefetch: Mapping[str, object]
) -> HookRequest:
    """Check a service request's fields other than the prefetch (read already, as JSON or as
    the quick reading's structs); raises :class:`RequestError`."""
    given = _string(request, "hook", "")
    if given != hook:
        raise _fail(f"hook: {_shown(given)} is not the hook of this service (expected '{hook}')")
    hook_instance = _string(request, "hookInstance", "")
    if "context" not in request:
        raise _fail("context: required field is missing (expected an object)")
    context = _object(request["context"], "context")
    user_id = _string(context, "userId", "context.")
    patient_id = _string(context, "patientId", "context.")
    encounter_id = _string(context, "encounterId", "context.", required=False)
    assert hook_instance is not None
    assert user_id is not None
    assert patient_id is not None
    fhir_server = _fhir_server(request.get("fhirServer"))
    fhir_authorization = _fhir_authorization(request.get("fhirAuthorization"))
    if fhir_authorization is not None and fhir_server is None:
        raise _fail("fhirAuthorization: given without fhirServer")
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        user_id=user_id,
        patient_id=patient_id,
        encounter_id=encounter_id,
        context=context,
        draft_orders=_draft_orders(context, hook),
        prefetch=prefetch,
        fhir_server=fhir_server,
        fhir_authorization=fhir_authorization,
        lang=_lang(request.get("extension")),
    )


def accept_language(header: str | None) -> Lang:
    """Danish unless the ``Accept-Language`` header prefers English."""
    if not header:
        return "da"
    best: tuple[float, int, Lang] | None = None
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in ("da", "en"):
            continue
        quality = 1.0
        params = params.strip()
        if params[:2].lower() == "q=":
            match = _QUALITY.fullmatch(params)
            quality = 0.0 if match is None else float(match[1])
        if quality <= 0:
            continue
        lang: Lang = "da" if primary == "da" else "en"
        # Higher quality wins; on a tie, the earlier tag.
        candidate = (quality, -position, lang)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return "da" if best is None else best[2]
