"""FHIR OperationOutcome for error answers, shared by the FHIR endpoints and CDS Hooks."""

from __future__ import annotations

from typing import Any, Final, Literal

import orjson
from starlette.responses import Response

from nkr._errors import InputError

FHIR_JSON: Final = "application/fhir+json"

# FHIR R4 IssueType (http://hl7.org/fhir/issue-type), the codes an answer can carry.
IssueType = Literal[
    "invalid",
    "structure",
    "required",
    "value",
    "invariant",
    "security",
    "login",
    "unknown",
    "expired",
    "forbidden",
    "suppressed",
    "processing",
    "not-supported",
    "duplicate",
    "multiple-matches",
    "not-found",
    "deleted",
    "too-long",
    "code-invalid",
    "extension",
    "too-costly",
    "business-rule",
    "conflict",
    "transient",
    "lock-error",
    "no-store",
    "exception",
    "timeout",
    "incomplete",
    "throttled",
    "informational",
]
IssueSeverity = Literal["fatal", "error", "warning", "information"]


def operation_outcome(
    code: IssueType,
    diagnostics: str,
    expression: str | None = None,
    *,
    severity: IssueSeverity = "error",
) -> dict[str, Any]:
    """A FHIR R4 OperationOutcome with one issue. ``expression`` is the FHIRPath (or JSON path)
    of the offending element; keep patient data out of ``diagnostics``."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression is not None:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class FhirJSONResponse(Response):
    """JSON rendered with orjson, served as ``application/fhir+json``."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def outcome_response(
    status_code: int,
    code: IssueType,
    diagnostics: str,
    expression: str | None = None,
) -> FhirJSONResponse:
    """An error answer: HTTP ``status_code`` with an OperationOutcome body, never cached (it
    may name a field of a patient's record, and an error is no answer to keep)."""
    return FhirJSONResponse(
        operation_outcome(code, diagnostics, expression),
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def input_error_response(exc: InputError, status_code: int = 400) -> FhirJSONResponse:
    """The answer to a user's bad input: the error as one line in ``diagnostics`` and its
    location (a JSON path, ``$.context.selections[0]``) as the issue's ``expression``."""
    return outcome_response(status_code, "invalid", str(exc), exc.location)
