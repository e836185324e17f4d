"""FHIR R4 resources (prefetch and draft orders) to the engine's patient case.

INTERFACE STUB: the FHIR-mapping work fills this in; the CDS Hooks service codes against it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from nkr._guideline import Localized
from nkr.guidelines.lumbar_radiculopathy.case import Case, Planned

Resource = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DraftOrder:
    """A draft order that maps to a planned intervention of the case."""

    intervention: Planned
    resource_type: str
    resource_id: str | None
    resource: Resource


@dataclass(frozen=True, slots=True)
class FhirCase:
    # None when the patient has no active, not refuted lumbar radiculopathy Condition.
    case: Case | None
    # What the card should tell the clinician about how the data was read, in both languages
    # (e.g. "onset taken from recordedDate"; "severe pain from NRS 8 on 2026-11-20, threshold 7,
    # an assumption").
    notes: tuple[Localized, ...]
    draft_orders: tuple[DraftOrder, ...]


def case_from_fhir(
    *,
    patient: Resource | None,
    conditions: list[Resource],
    observations: list[Resource],
    procedures: list[Resource],
    service_requests: list[Resource],
    draft_orders: list[Resource],
    on: dt.date,
    pain_threshold: int,
) -> FhirCase:
    """Build the patient case from FHIR R4 resources. Raises ``nkr.InputError`` naming the
    resource and field when a resource has the wrong shape."""
    raise NotImplementedError
