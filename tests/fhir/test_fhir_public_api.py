"""nkr.fhir's public API is exactly what ``__all__`` lists, and every name is documented."""

from __future__ import annotations

import inspect

import orjson

import nkr
import nkr.fhir

PUBLIC = {
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
}


def test_all_is_the_public_api() -> None:
    assert set(nkr.fhir.__all__) == PUBLIC
    assert len(nkr.fhir.__all__) == len(PUBLIC)
    exported = {name for name in dir(nkr.fhir) if not name.startswith("_")}
    modules = {name for name in exported if inspect.ismodule(getattr(nkr.fhir, name))}
    assert exported - modules - {"annotations"} == PUBLIC


def test_public_functions_and_classes_have_docstrings() -> None:
    for name in PUBLIC:
        obj = getattr(nkr.fhir, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), name


def test_operation_outcome() -> None:
    assert nkr.fhir.operation_outcome("not-found", "No ValueSet with this id") == {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "not-found", "diagnostics": "No ValueSet with this id"}
        ],
    }
    outcome = nkr.fhir.operation_outcome(
        "invalid", "expected a string", "Condition.code", severity="warning"
    )
    assert outcome["issue"][0]["expression"] == ["Condition.code"]
    assert outcome["issue"][0]["severity"] == "warning"
    error = nkr.InputError("$.context.selections[0]", "not an entry of context.draftOrders")
    answer = orjson.loads(nkr.fhir.input_error_response(error).body)
    assert answer["issue"] == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "$.context.selections[0]: not an entry of context.draftOrders",
            "expression": ["$.context.selections[0]"],
        }
    ]
    response = nkr.fhir.outcome_response(412, "incomplete", "prefetch patient: missing")
    assert response.status_code == 412
    assert response.media_type == "application/fhir+json"
    assert b'"code":"incomplete"' in response.body
