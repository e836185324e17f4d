"""The mapping's quick reading answers exactly as the full reading would, or leaves it to it.

The quick paths (a FHIR dateTime read by ``datetime.fromisoformat``, codings read straight
from the JSON) exist only for speed: wherever they answer, the answer must be the full
reading's, and every value they cannot vouch for must reach the full reading, which raises the
errors that name the resource and field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nkr import InputError
from nkr.fhir import _mapping as m
from nkr.fhir._valuesets import shipped_valuesets

LOINC = "http://loinc.org"
PAIN = {"system": LOINC, "code": "72514-3"}

# Strings near the FHIR date and dateTime forms: the common ones, and every way of being a
# little wrong (impossible dates, leap seconds, offsets out of range, other digits and
# separators, fractions, missing parts).
_parts = st.one_of(
    st.sampled_from(["-", "T", ":", "+", "Z", ".", " ", ",", "W", "٢", "0", "9"]),
    st.from_regex(r"\d{1,4}", fullmatch=True),
)
near_datetimes = st.one_of(
    st.builds(
        lambda day, h, mi, s, frac, zone: f"{day}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}",
        st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
        st.sampled_from(["", ".5", ".000", ".123456", ".9999999", "."]),
        st.sampled_from(["", "Z", "+01:00", "-00:00", "+14:59", "+15:00", "-12:60", "+1:00"]),
    ),
    st.from_regex(
        r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?",
        fullmatch=True,
    ),
    st.lists(_parts, max_size=12).map("".join),
    st.text(max_size=30),
)


def _res() -> m._Res:
    return m._Res({"resourceType": "Observation", "id": "o1"}, "observations[0]")


def _read(parse: Any, value: object) -> tuple[Any, ...]:
    try:
        instant = parse(value, _res(), "effectiveDateTime")
    except InputError as exc:
        return ("error", str(exc))
    # Equal instants are not enough: the wall time and the offset must be the same too.
    return (instant.replace(tzinfo=None), instant.utcoffset(), instant.date())


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_datetimes)
def test_the_quick_datetime_parser_accepts_and_rejects_exactly_as_the_general_one(
    value: str,
) -> None:
    assert _read(m._parse_datetime, value) == _read(m._parse_datetime_general, value)


@pytest.mark.parametrize(
    "value",
    ["2026-11-20T09:30:00+01:00", "2026-11-20T09:30:00Z", "2026-11-20", "2026-11-20T09:30:00"],
)
def test_the_common_forms_take_the_quick_path(value: str) -> None:
    assert m._quick_datetime(value) is not None


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-20T23:59:60+01:00",  # leap second: the general parser orders it as :59
        "2026-02-30",  # impossible: the general parser names the error
        "2026-11-20T09:30:00+15:00",  # offset out of FHIR's range
        "2026-11-20T09:30:00+01:60",  # fromisoformat would read +02:00
        "2026-11-20 09:30:00+01:00",  # fromisoformat would accept the space
        "2026-11",
    ],
)
def test_anything_else_goes_to_the_general_parser(value: str) -> None:
    assert m._quick_datetime(value) is None


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_datetimes)
def test_the_quick_day_is_the_general_parsers_day(value: str) -> None:
    def day(parse: Any) -> object:
        try:
            return parse()
        except InputError as exc:
            return str(exc)

    res = _res()
    quick = day(lambda: res.day("onsetDateTime", value))
    general = day(lambda: m._parse_datetime_general(value, res, "onsetDateTime").date())
    assert quick == general


# -- resources -----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 12),
    st.floats(-1, 11, width=32),
    st.sampled_from(["", "final", "amended", "preliminary", LOINC, "72514-3", "8480-6", "x"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["coding", "system", "code", "value"]), inner),
    ),
    max_leaves=6,
)
codings = st.one_of(
    st.fixed_dictionaries({"system": st.just(LOINC), "code": st.sampled_from(["72514-3", "x"])}),
    st.dictionaries(st.sampled_from(["system", "code"]), scalars),
    json_values,
)
codeables = st.one_of(
    st.fixed_dictionaries({"coding": st.lists(codings, max_size=3)}),
    st.just({"coding": [PAIN]}),
    json_values,
)


@st.composite
def observations(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    data: dict[str, Any] = {
        "resourceType": draw(st.sampled_from(["Observation", "Observation", "Condition", ""])),
        "code": draw(codeables),
        "status": draw(st.one_of(st.sampled_from(["final", "amended", "preliminary"]), scalars)),
    }
    if draw(st.booleans()):
        data["id"] = draw(st.one_of(st.just("o1"), scalars))
    value = draw(st.one_of(st.integers(-1, 11), st.floats(-1, 11), scalars))
    if draw(st.booleans()):
        data["valueQuantity"] = draw(st.one_of(st.just({"value": value}), json_values))
    else:
        data["valueInteger"] = value
    for field in draw(st.sets(st.sampled_from(["effectiveDateTime", "effectiveInstant"]))):
        data[field] = draw(st.one_of(near_datetimes, scalars))
    return data


def _full_pain(raw: object) -> object:
    try:
        res = m._Res(raw, "observations[0]")
        if res.type != "Observation":
            return "skipped"
        return m._pain_score(res, shipped_valuesets())
    except InputError as exc:
        return str(exc)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations())
def test_the_quick_reading_of_an_observation_is_the_full_one(raw: Any) -> None:
    index = shipped_valuesets().index
    ids = m._quick_ids(raw, "Observation", "code", index)
    full = _full_pain(raw)
    if ids is None:
        return  # the full reading decides
    if m.PAIN_INTENSITY not in ids:
        assert full is None  # skipped without the full reading: it finds no score either
        return
    quick = m._quick_pain(raw)
    if quick is not m._Full.READING:
        assert quick == full


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations(), st.sampled_from(["clinicalStatus", "verificationStatus"]))
def test_status_codes_read_in_one_pass_are_the_checked_ones(raw: Any, field: str) -> None:
    if not isinstance(raw, dict):
        return
    value: Any = raw.get("code")
    data = {"resourceType": "Condition", field: value}
    system = LOINC
    try:
        quick: object = m._Res(data, "conditions[0]").status_codes(field, system)
    except InputError as exc:
        quick = str(exc)
    # What status_codes did before its one-pass reading: check the shape, then collect.
    try:
        m._Res(data, "conditions[0]").codings(field, value)
        checked: object = frozenset(
            c["code"]
            for c in (value or {}).get("coding") or ()
            if isinstance(c.get("code"), str) and c.get("system", system) == system
        )
    except InputError as exc:
        checked = str(exc)
    assert quick == checked
