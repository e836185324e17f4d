"""Property-based tests: any valid case evaluates, with all ten results, and the statuses keep
the guideline's invariants."""

from __future__ import annotations

import datetime as dt
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from nkr import RecStatus
from nkr.guidelines.lumbar_radiculopathy import Course, package
from nkr.guidelines.lumbar_radiculopathy.case import Planned, RedFlag, Sign, Treatment

P = package()
G = P.content
IDS = [r.id for r in G.recommendations]


def _subset(options: Any) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(get_args(options)), unique=True)


@st.composite
def cases_and_dates(draw: st.DrawFn) -> tuple[dict[str, Any], dt.date]:
    on = draw(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31)))
    onset = on - dt.timedelta(days=draw(st.integers(min_value=0, max_value=2000)))
    data: dict[str, Any] = {"symptom_onset": onset.isoformat()}
    if draw(st.booleans()):
        data["age"] = draw(st.integers(min_value=0, max_value=130))
    else:
        born = onset - dt.timedelta(days=draw(st.integers(min_value=0, max_value=110 * 366)))
        data["birth_date"] = born.isoformat()
    data["signs"] = draw(_subset(Sign))
    data["red_flags"] = draw(st.one_of(st.just([]), _subset(RedFlag)))
    data["non_surgical_treatment"] = draw(_subset(Treatment))
    data["planned"] = draw(_subset(Planned))
    data["severe_disabling_pain"] = draw(st.booleans())
    data["spine_surgeon_assessment"] = draw(st.sampled_from(["none", "referred", "done"]))
    if draw(st.booleans()):
        data["mri_confirmed"] = draw(st.booleans())
    return data, on


@settings(max_examples=400, deadline=None)
@given(cases_and_dates())
def test_any_valid_case_evaluates_and_keeps_the_invariants(
    case_and_date: tuple[dict[str, Any], dt.date],
) -> None:
    data, on = case_and_date
    a = P.evaluate(P.parse_case(data), on)
    course = Course.of(a)
    assert [r.recommendation.id for r in a.results] == IDS
    for lang in ("da", "en"):
        out = a.to_json(lang)
        assert all(r["reason"] for r in out["recommendations"])
    statuses = a.statuses
    assert a.in_scope == (not a.scope_reasons)
    assert bool(a.notices) == bool(data["red_flags"])
    if not a.in_scope:
        # Outside scope only the spine-surgeon recommendation can say anything.
        others = {s for rid, s in statuses.items() if rid != "spine-surgeon-assessment"}
        assert others == {RecStatus.NOT_APPLICABLE}
    if data["red_flags"]:
        assert set(statuses.values()) == {RecStatus.NOT_APPLICABLE}
    if RecStatus.CAUTION in statuses.values():
        assert a.in_scope
        assert data["planned"]
    for r in a.results:
        # A caution names the planned intervention it is about, as data.
        assert (r.concerns is not None) == (r.status is RecStatus.CAUTION)
        assert r.concerns is None or r.concerns.code in data["planned"]
    assert [d.recommendation for d in a.deadlines] in ([], ["spine-surgeon-assessment"])
    surgeon = statuses["spine-surgeon-assessment"]
    assert (surgeon is RecStatus.DUE) == (
        a.in_scope
        and data["severe_disabling_pain"]
        and bool(data["non_surgical_treatment"])
        and data["spine_surgeon_assessment"] == "none"
        and "spine_surgeon_referral" not in data["planned"]
    )
    if surgeon is RecStatus.OVERDUE:
        assert course.days_since_onset > 84
    assert course.week >= 1
