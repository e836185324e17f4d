"""The old card renderer's inputs (``nkr.cdshooks._cards`` imports them), kept only until the
guideline's card rules land (issue 10): then this module goes. Nothing reads FHIR here; the
one reading is :mod:`nkr.fhir._read`, interpreted by each guideline's ``read_record``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DraftOrder:
    intervention: str
    resource_type: str
    resource_id: str | None
    resource: Any


@dataclass(frozen=True, slots=True)
class FhirCase:
    case: Any
    notes: tuple[Any, ...]
    draft_orders: tuple[DraftOrder, ...]
