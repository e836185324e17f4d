"""Reading FHIR resources the way a CDS Hooks request carries them: the prefetch keys (each a
Bundle, the Patient a resource) and the draft orders, decoded by the one typed reader and read
by the guideline package. Error locations are the request's JSON paths."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from nkr.fhir import FhirReading, ValueSets, decode_resource, record_from_prefetch
from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy, Options
from nkr.guidelines.lumbar_radiculopathy import fhir as lumbar_fhir

PACKAGE = LumbarRadiculopathy()
ON = dt.date(2026, 11, 26)
# Where the request's resources are (for the error locations tests expect).
PATIENT = r"\$\.prefetch\.patient"


def entry(key: str, i: int = 0) -> str:
    """The JSON path (as a regex) of the ``i``-th resource of prefetch key ``key``."""
    return rf"\$\.prefetch\.{key}\.entry\[{i}\]\.resource"


def searchset(resources: list[Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def read(
    *,
    patient: Any | None,
    conditions: list[Any],
    observations: list[Any] = (),  # type: ignore[assignment]
    procedures: list[Any] = (),  # type: ignore[assignment]
    service_requests: list[Any] = (),  # type: ignore[assignment]
    draft_orders: list[Any] = (),  # type: ignore[assignment]
    on: dt.date = ON,
    pain_threshold: int = 7,
    valuesets: ValueSets | None = None,
) -> FhirReading:
    """The guideline's reading of these resources (plain JSON)."""
    prefetch: dict[str, Any] = {
        "patient": patient,
        "conditions": searchset(list(conditions)),
        "observations": searchset(list(observations)),
        "procedures": searchset(list(procedures)),
        "serviceRequests": searchset(list(service_requests)),
    }
    decoded = {
        key: None if value is None else decode_resource(orjson.dumps(value), f"$.prefetch.{key}")
        for key, value in prefetch.items()
    }
    drafts = decode_resource(orjson.dumps(searchset(list(draft_orders))), "$.context.draftOrders")
    orders = [e.resource for e in drafts.entry or () if e.resource is not None]
    record = record_from_prefetch(decoded, orders, drafts=drafts)
    return lumbar_fhir.read_record(
        record,
        on,
        valuesets=valuesets or lumbar_fhir.shipped(),
        pain_threshold=pain_threshold,
    )


def package(pain_threshold: int) -> LumbarRadiculopathy:
    return LumbarRadiculopathy(Options(pain_threshold=pain_threshold))


def note_texts(reading: FhirReading, lang: str) -> list[str]:
    return [n.text(PACKAGE.texts, lang, PACKAGE.content) for n in reading.notes]  # type: ignore[arg-type]
