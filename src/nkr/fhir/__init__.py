"""FHIR R4 at the edge: value sets, FHIR resources to a patient case, fetching from a FHIR server.

Owned by issue 3 (FHIR mapping). Public names are listed in ``__all__``.
"""

from __future__ import annotations

from nkr.fhir._fetch import (
    MAX_PAGES,
    PREFETCH_TEMPLATES,
    PrefetchUnavailable,
    fetch_missing_prefetch,
    fill_template,
    resources_from_prefetch,
)
from nkr.fhir._mapping import DraftOrder, FhirCase, Resource, case_from_fhir
from nkr.fhir._outcome import (
    FHIR_JSON,
    FhirJSONResponse,
    IssueType,
    operation_outcome,
    outcome_response,
)
from nkr.fhir._router import create_router
from nkr.fhir._valuesets import (
    VALUESET_IDS,
    ValueSet,
    ValueSetCode,
    ValueSets,
    load_valuesets,
    shipped_valuesets,
)

__all__ = [
    "FHIR_JSON",
    "MAX_PAGES",
    "PREFETCH_TEMPLATES",
    "VALUESET_IDS",
    "DraftOrder",
    "FhirCase",
    "FhirJSONResponse",
    "IssueType",
    "PrefetchUnavailable",
    "Resource",
    "ValueSet",
    "ValueSetCode",
    "ValueSets",
    "case_from_fhir",
    "create_router",
    "fetch_missing_prefetch",
    "fill_template",
    "load_valuesets",
    "operation_outcome",
    "outcome_response",
    "resources_from_prefetch",
    "shipped_valuesets",
]
