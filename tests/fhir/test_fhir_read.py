"""The one typed reading of FHIR: resources, the CDS Hooks request, the patient record, and
the errors, located at JSON paths and never quoting a value."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from nkr import InputError
from nkr.fhir import decode_resource, record_from_resources
from nkr.fhir._read import (
    Bundle,
    Condition,
    Observation,
    Other,
    Patient,
    decode_call,
    first_day,
    read_date,
    read_datetime,
)

CONDITION = {"resourceType": "Condition", "id": "c1", "code": {"coding": [{"code": "X"}]}}


def test_every_resource_type_decodes_typed_or_as_skipped() -> None:
    assert type(decode_resource(CONDITION)) is Condition
    encounter = decode_resource(b'{"resourceType": "Encounter", "id": "e1", "status": 5}')
    assert isinstance(encounter, Other)
    assert encounter.resource_type == "Encounter"
    with pytest.raises(InputError, match=r"^\$\.resourceType: not a FHIR R4 resource type$"):
        decode_resource({"resourceType": "Patient-4711"})


def test_a_record_from_plain_resources_locates_each_one() -> None:
    lines: list[bytes | dict[str, Any]] = [
        orjson.dumps({"resourceType": "Patient", "id": "p1", "birthDate": "1980"}),
        orjson.dumps(CONDITION),
        {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation"}}]},
        {"resourceType": "Encounter", "id": "e1"},
    ]
    record = record_from_resources(lines, where="line", draft_orders=[CONDITION])
    assert type(record.patient) is Patient
    assert record.path(record.patient) == "line[0]"
    [condition] = record.of(Condition)
    assert record.path(condition) == "line[1]"
    [observation] = record.of(Observation)
    assert record.path(observation) == "line[2].entry[0].resource"
    assert [d.id for d in record.draft_orders] == ["c1"]
    assert record.path(record.draft_orders[0]) == "$.draftOrders[0]"
    assert record.types() == {Condition, Observation}
    error = record.error(condition, "onsetDateTime", "after the assessment date")
    assert str(error) == "line[1].onsetDateTime: after the assessment date"
    with pytest.raises(InputError) as info:
        record_from_resources([b"{}", {"resourceType": "Condition", "onsetDateTime": 1980}])
    assert info.value.location == "$[0].resourceType"
    with pytest.raises(InputError) as info:
        record_from_resources([{"resourceType": "Condition", "onsetDateTime": 1980}])
    assert info.value.location == "$[0].onsetDateTime"
    assert "1980" not in str(info.value)


def _call(**fields: object) -> bytes:
    body = {
        "hook": "patient-view",
        "hookInstance": "i1",
        "context": {"userId": "u1", "patientId": "p1"},
    }
    return orjson.dumps(body | fields)


def test_the_request_is_decoded_once_with_its_prefetch_typed() -> None:
    call = decode_call(
        _call(
            prefetch={"patient": None, "conditions": {"resourceType": "Bundle"}},
            extension={"nkr-lang": "en"},
        )
    )
    assert call.prefetch is not None
    assert call.prefetch["patient"] is None
    assert type(call.prefetch["conditions"]) is Bundle
    assert call.extension is not None
    assert call.extension.lang == "en"


def test_with_the_services_keys_only_those_prefetch_keys_are_read() -> None:
    body = _call(prefetch={"conditions": {"resourceType": "Bundle"}, "other": {"x": [1]}})
    with pytest.raises(InputError) as info:
        decode_call(body)
    assert info.value.location == "$.prefetch.other.resourceType"
    call = decode_call(body, ["patient", "conditions"])
    assert call.prefetch is not None
    assert list(call.prefetch) == ["conditions"]
    assert type(call.prefetch["conditions"]) is Bundle
    bad = _call(prefetch={"conditions": {"resourceType": "Bundle", "entry": 1}, "other": 1})
    with pytest.raises(InputError) as info:
        decode_call(bad, ["conditions"])
    assert info.value.location == "$.prefetch.conditions.entry"
    assert decode_call(_call(), ["conditions"]).prefetch is None


@pytest.mark.parametrize(
    ("body", "location", "problem"),
    [
        (_call(hook=7), "$.hook", "expected a string, got an integer"),
        (_call(hook=" "), "$.hook", "expected a non-empty string"),
        (_call(context={"userId": "u1"}), "$.context.patientId", "required field is missing"),
        (
            _call(prefetch={"patient": None, "conditions": {"resourceType": "Bundle", "entry": 1}}),
            "$.prefetch.conditions.entry",
            "expected a JSON array or null, got an integer",
        ),
        (
            _call(prefetch={"secret-key": {"resourceType": "Condition", "code": {"coding": [1]}}}),
            "$.prefetch.secret-key.code.coding[0]",
            "expected a JSON object, got an integer",
        ),
        (
            _call(fhirAuthorization={"access_token": "a b"}),
            "$.fhirAuthorization.access_token",
            "not in the expected form",
        ),
        (
            _call(fhirAuthorization={"access_token": "t", "token_type": "MAC"}),
            "$.fhirAuthorization.token_type",
            "not one of the expected values",
        ),
        (b"{not json", "$", "the request body is not valid JSON (malformed: "),
    ],
)
def test_request_errors_name_the_path(body: bytes, location: str, problem: str) -> None:
    with pytest.raises(InputError) as info:
        decode_call(body)
    assert info.value.location == location
    assert info.value.problem.startswith(problem)
    assert "MAC" not in info.value.problem


def test_dates_as_fhir_writes_them() -> None:
    assert read_date("1980", "p").last == dt.date(1980, 12, 31)
    assert read_date("1980-02", "p").last == dt.date(1980, 2, 29)
    assert read_date("1980-02-03", "p").precision == "day"
    assert first_day("2026-11-01T23:30:00-05:00", "p") == dt.date(2026, 11, 1)
    assert read_datetime("2026-11-01T10:00:00.5+01:00", "p") == dt.datetime(
        2026, 11, 1, 9, tzinfo=dt.UTC
    )
    assert read_datetime("2026-11", "p") == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for bad, problem in (("٢٠٢٦-11-01", "not a FHIR"), ("2026-02-30", "impossible date")):
        with pytest.raises(InputError, match=rf"^x\.onset: {problem}"):
            first_day(bad, "x.onset")
