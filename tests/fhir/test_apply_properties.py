"""Over generated patients: ``$apply`` (the guideline's FHIR reading and rules behind the
operation) and the engine on the same patient's case agree on which recommendations apply now,
with which status, and on every caution."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nkr._package import registry
from nkr.fhir._apply import apply, parse_parameters
from nkr.fhir._artifacts import build_artifacts
from tests.cases.fhir import LUMBAR_ORDER_VALUESETS, apply_parameters
from tests.cases.table import APPLY_NOW, TableCase

LUMBAR = "nkr-lumbal-radikulopati"
ON = dt.date(2026, 3, 2)


def _subset(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), unique=True).map(sorted)


# Only what FHIR can say: a coded diagnosis as the sign, red flags with a shipped code,
# treatments with a value set.
cases = st.fixed_dictionaries(
    {
        "age": st.integers(min_value=14, max_value=95),
        "symptom_onset": st.integers(min_value=0, max_value=140).map(
            lambda days: (ON - dt.timedelta(days=days)).isoformat()
        ),
        "signs": st.just(["radicular_leg_pain"]),
        "red_flags": st.one_of(
            st.just([]), _subset(["cauda_equina", "suspected_fracture", "suspected_infection"])
        ),
        "severe_disabling_pain": st.booleans(),
        "non_surgical_treatment": _subset(
            ["supervised_exercise", "specific_exercise", "manual_mobilisation"]
        ),
        "spine_surgeon_assessment": st.sampled_from(["none", "referred", "done"]),
        "planned": _subset(sorted(LUMBAR_ORDER_VALUESETS)),
    }
)


def _table_case(case: dict[str, Any]) -> TableCase:
    return TableCase(LUMBAR, "generated", ON, case, True, {}, "applies", (), ())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_apply_and_the_engine_agree_on_what_applies_and_every_caution(case: dict[str, Any]) -> None:
    package = registry().get(LUMBAR)
    artifacts = build_artifacts(package)
    engine = package.evaluate(package.parse_case(dict(case)), ON)
    expected = {
        r.recommendation.id: r.status.value for r in engine.results if r.status.value in APPLY_NOW
    }
    call = parse_parameters(json.dumps(apply_parameters(_table_case(case))).encode())
    plan = next(p for p in artifacts.of("PlanDefinition") if p["id"] == LUMBAR)
    bundle = apply(package, artifacts, plan, call, ON)
    (group,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "RequestGroup"
    ]
    seen = {a["id"]: a["code"][0]["coding"][0]["code"] for a in group.get("action", [])}
    assert seen == expected
    cautions = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DetectedIssue"
        and e["resource"]["code"]["coding"][0]["code"] == "caution"
    ]
    assert len(cautions) == sum(s == "caution" for s in expected.values())
    notices = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert len(notices) - len(cautions) == len(engine.notices)
