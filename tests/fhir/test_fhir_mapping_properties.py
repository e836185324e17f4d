"""Whatever JSON arrives, the typed reader and the guideline's reading answer with a case or
an InputError located at a JSON path, never a crash."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nkr import InputError

from ._records import read

ICD = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-20, max_value=20),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(
        [
            "",
            "2026",
            "2026-02",
            "2026-02-30",
            "2026-11-01",
            "2026-11-30T10:00:00+01:00",
            "1890",
            "active",
            "final",
            "completed",
            "refuted",
            ICD,
            LOINC,
            "M54.16",
            "G83.4",
            "72514-3",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["coding", "system", "code", "value", "start"]), inner),
    ),
    max_leaves=8,
)
coding = st.fixed_dictionaries(
    {
        "system": st.sampled_from([ICD, LOINC]),
        "code": st.sampled_from(["M54.16", "G83.4", "72514-3"]),
    }
)
codeable = st.one_of(json_values, st.fixed_dictionaries({"coding": st.lists(coding, max_size=2)}))
fields = st.sampled_from(
    [
        "id",
        "status",
        "clinicalStatus",
        "verificationStatus",
        "onsetDateTime",
        "onsetPeriod",
        "recordedDate",
        "effectiveDateTime",
        "effectivePeriod",
        "issued",
        "valueInteger",
        "valueQuantity",
        "birthDate",
    ]
)


@st.composite
def resources(draw: st.DrawFn, rtype: str) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    data: dict[str, Any] = {"resourceType": draw(st.sampled_from([rtype, rtype, "Other"]))}
    data["code"] = draw(codeable)
    data.update(draw(st.dictionaries(fields, json_values, max_size=4)))
    return data


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    patient=st.one_of(st.none(), resources("Patient")),
    conditions=st.lists(resources("Condition"), max_size=3),
    observations=st.lists(resources("Observation"), max_size=3),
    procedures=st.lists(resources("Procedure"), max_size=2),
    drafts=st.lists(resources("ServiceRequest"), max_size=2),
)
def test_any_json_gives_a_case_or_an_input_error(
    patient: Any, conditions: Any, observations: Any, procedures: Any, drafts: Any
) -> None:
    message, location = "", "$."
    try:
        read(
            patient=patient,
            conditions=conditions,
            observations=observations,
            procedures=procedures,
            service_requests=procedures,
            draft_orders=drafts,
            on=dt.date(2026, 11, 26),
            pain_threshold=7,
        )
    except InputError as exc:
        message, location = str(exc), exc.location or ""
    assert location.startswith("$.")
    assert "\n" not in message
