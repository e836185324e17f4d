"""A CDS Hooks 2.0 service request, decoded once into typed structs and its envelope checked.

The body is decoded by :func:`nkr.fhir._read.decode_call` (msgspec, in one pass: the FHIR
resources of the prefetch and the draft orders come out typed); this module checks what the
types cannot say: the hook, the prefetch keys' resource types, the selections, the language,
the fhirServer and its authorization. Every error is an :class:`~nkr.InputError` at a JSON
path (``$.context.selections[0]``), never quoting a patient value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from nkr._errors import InputError
from nkr._guideline import Lang
from nkr.fhir._read import BY_TYPE, Bundle, HookCall, Resource, decode_call

# A request extension that asks for a language, for EHRs that cannot set Accept-Language.
LANG_EXTENSION = "nkr-lang"

# An Accept-Language quality value (RFC 9110 section 12.4.2), in ASCII digits: ``float`` alone
# would also read other digits ("٠.٥") and forms like "1e0" or "nan".
_QUALITY = re.compile(r"q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)", re.ASCII | re.IGNORECASE)


class RequestError(InputError):
    """The request is malformed: answered with 400 and an OperationOutcome."""


class HookRequest(msgspec.Struct, kw_only=True, gc=False):
    hook: str
    hook_instance: str
    user_id: str
    patient_id: str
    encounter_id: str | None
    # The context values a prefetch template may name (``{{context.patientId}}``).
    context: dict[str, str]
    # Resources of context.draftOrders (the Bundle); for order-select only the selected ones.
    draft_orders: list[Resource]
    drafts: Bundle | None
    # The prefetch keys the request carries: a resource or Bundle, or None ("no data").
    prefetch: Mapping[str, Resource | None]
    fhir_server: str | None
    fhir_authorization: dict[str, Any] | None
    lang: Lang | None


def _fail(location: str, problem: str) -> RequestError:
    return RequestError(location, problem)


def _draft_orders(call: HookCall, hook: str) -> tuple[list[Resource], Bundle | None]:
    if hook == "patient-view":
        return [], None
    bundle = call.context.draftOrders
    if bundle is None:
        raise _fail("$.context.draftOrders", "required field is missing (expected a Bundle)")
    if type(bundle) is not Bundle:
        raise _fail("$.context.draftOrders.resourceType", "expected 'Bundle'")
    drafts = [e.resource for e in bundle.entry or () if e.resource is not None]
    if hook == "order-sign":
        return drafts, bundle
    selections = call.context.selections
    if selections is None:
        raise _fail(
            "$.context.selections", "required field is missing (expected an array of strings)"
        )
    by_ref = {f"{d.resource_type}/{d.id}": d for d in drafts if d.id is not None}
    chosen: list[Resource] = []
    for index, ref in enumerate(selections):
        found = by_ref.get(ref)
        if found is None:
            raise _fail(
                f"$.context.selections[{index}]",
                "not an entry of context.draftOrders (expected 'ResourceType/id')",
            )
        chosen.append(found)
    return chosen, bundle


# Per prefetch templates (a guideline's, kept for the process): each key's expected struct.
_EXPECTED: dict[int, tuple[Mapping[str, str], dict[str, type[Resource]]]] = {}


def _expected(templates: Mapping[str, str]) -> dict[str, type[Resource]]:
    known = _EXPECTED.get(id(templates))
    if known is not None and known[0] is templates:
        return known[1]
    names = {key: "Bundle" if "?" in t else t.split("/", 1)[0] for key, t in templates.items()}
    expected = {key: BY_TYPE[name] for key, name in names.items() if name in BY_TYPE}
    _EXPECTED[id(templates)] = (templates, expected)
    return expected


def _check_prefetch(prefetch: Mapping[str, Resource | None], templates: Mapping[str, str]) -> None:
    """Each key's resource type, as its template says: a read gives that type, a search a
    Bundle (keys no template names are ignored)."""
    expected = _expected(templates)
    for key, value in prefetch.items():
        kind = expected.get(key)
        if kind is not None and value is not None and type(value) is not kind:
            name = kind.__name__
            raise _fail(f"$.prefetch.{key}.resourceType", f"expected '{name}'")


def _lang(call: HookCall) -> Lang | None:
    value = None if call.extension is None else call.extension.lang
    if value is None:
        return None
    if value == "da":
        return "da"
    if value == "en":
        return "en"
    raise _fail(f"$.extension.{LANG_EXTENSION}", "expected 'da' or 'en'")


def _fhir_server(raw: str | None) -> str | None:
    if raw is None:
        return None
    # Never echoed: the value may carry a user name and password. Scheme case is the fetch's
    # normal form's business (an allowlisted server written "HTTP://" still matches).
    if not raw[:8].lower().startswith(("https://", "http://")):
        raise _fail("$.fhirServer", "expected an http(s) URL")
    return raw.rstrip("/")


def parse_hook_request(body: bytes, hook: str, templates: Mapping[str, str]) -> HookRequest:
    """Decode and check a service request for ``hook`` whose prefetch ``templates`` are
    given; raises :class:`RequestError` at the offending JSON path."""
    if not body.strip():
        raise _fail("$", "the request body is empty (expected a CDS Hooks request, a JSON object)")
    try:
        call = decode_call(body, templates)
    except RequestError:
        raise
    except InputError as exc:
        raise RequestError(exc.location, exc.problem) from None
    if call.hook != hook:
        raise _fail("$.hook", f"not the hook of this service (expected '{hook}')")
    context = call.context
    prefetch = call.prefetch or {}
    _check_prefetch(prefetch, templates)
    fhir_server = _fhir_server(call.fhirServer)
    authorization = call.fhirAuthorization
    if authorization is not None and fhir_server is None:
        raise _fail("$.fhirAuthorization", "given without fhirServer")
    ids = {"userId": context.userId, "patientId": context.patientId}
    if context.encounterId is not None:
        ids["encounterId"] = context.encounterId
    draft_orders, drafts = _draft_orders(call, hook)
    return HookRequest(
        hook=hook,
        hook_instance=call.hookInstance,
        user_id=context.userId,
        patient_id=context.patientId,
        encounter_id=context.encounterId,
        context=ids,
        draft_orders=draft_orders,
        drafts=drafts,
        prefetch=prefetch,
        fhir_server=fhir_server,
        fhir_authorization=(
            None if authorization is None else {"access_token": authorization.access_token}
        ),
        lang=_lang(call),
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
