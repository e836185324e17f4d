"""FHIR R4 at the edge, generic: the typed reading of resources and of a CDS Hooks request,
the patient record a guideline reads (the data-provider seam), value sets (the terminology
seam), fetching from a FHIR server, OperationOutcome. Nothing here knows a guideline.
Public names are listed in ``__all__``.
"""

from __future__ import annotations

from nkr.fhir._fetch import (
    MAX_PAGES,
    PrefetchUnavailable,
    fetch_missing_prefetch,
    fill_template,
)
from nkr.fhir._outcome import (
    FHIR_JSON,
    FhirJSONResponse,
    IssueType,
    input_error_response,
    operation_outcome,
    outcome_response,
)
from nkr.fhir._read import (
    PatientRecord,
    decode_resource,
    record_from_prefetch,
    record_from_resources,
)
from nkr.fhir._reading import DraftOrder, FhirReading, Note
from nkr.fhir._router import create_router
from nkr.fhir._valuesets import (
    CodeAttribute,
    ValueSet,
    ValueSetCode,
    ValueSets,
    load_valuesets,
)

__all__ = [
    "FHIR_JSON",
    "MAX_PAGES",
    "CodeAttribute",
    "DraftOrder",
    "FhirJSONResponse",
    "FhirReading",
    "IssueType",
    "Note",
    "PatientRecord",
    "PrefetchUnavailable",
    "ValueSet",
    "ValueSetCode",
    "ValueSets",
    "create_router",
    "decode_resource",
    "fetch_missing_prefetch",
    "fill_template",
    "input_error_response",
    "load_valuesets",
    "operation_outcome",
    "outcome_response",
    "record_from_prefetch",
    "record_from_resources",
]
