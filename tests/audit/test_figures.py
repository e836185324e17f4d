"""The figures' SQL (nkr.audit._sql) run by DuckDB: the 95% Wilson score interval against
numbers computed by hand (and Newcombe's published example), and small-cell suppression."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

from nkr.audit._judge import MEASURED_SCHEMA
from nkr.audit._run import figures
from nkr.audit._sql import figures_sql

DAY = dt.date(2025, 3, 1)


def _measured(*cells: tuple[str, str, int, int]) -> pa.Table:
    """Rows for (indicator, organization, numerator, denominator) cells, all in March 2025."""
    rows = []
    for indicator, org, num, den in cells:
        rows += [
            {
                "indicator": indicator,
                "start": DAY,
                "month": "2025-03",
                "organization": org,
                "numerator": int(i < num),
            }
            for i in range(den)
        ]
    return pa.Table.from_pylist(rows, MEASURED_SCHEMA)


def _run(table: pa.Table, min_cell: int, order: list[str]) -> dict[tuple[str, str, str], object]:
    con = duckdb.connect()
    con.register("measured", table)
    rows = con.sql(figures_sql("measured", min_cell)).fetchall()
    return {(f.indicator, f.stratum, f.key): f for f in figures(rows, order)}


# By hand: p = x/n, d = 1 + z²/n, centre = (p + z²/2n)/d, half = z·sqrt(p(1-p)/n + z²/4n²)/d,
# with z² = 3.841458820694124.
WILSON = [
    # x, n, low, high
    (5, 10, 0.2365930905, 0.7634069095),  # p = 1/2: symmetric about 1/2
    (0, 20, 0.0, 0.1611251581),  # high = z²/(n + z²)
    (20, 20, 0.8388748419, 1.0),  # low = n/(n + z²)
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Stat Med 17:857, Table I: 0.2553-0.3662
]


@pytest.mark.parametrize(("x", "n", "low", "high"), WILSON)
def test_the_wilson_interval_is_as_computed_by_hand(
    x: int, n: int, low: float, high: float
) -> None:
    found = _run(_measured(("a", "Organization/1", x, n)), 0, ["a"])
    f = found[("a", "overall", "")]
    assert (f.numerator, f.denominator) == (x, n)  # type: ignore[attr-defined]
    assert f.proportion == pytest.approx(x / n)  # type: ignore[attr-defined]
    places = 4 if n == 263 else 9
    assert round(f.low, places) == pytest.approx(low, abs=10**-places)  # type: ignore[attr-defined]
    assert round(f.high, places) == pytest.approx(high, abs=10**-places)  # type: ignore[attr-defined]


def test_small_cells_are_suppressed_with_their_complements() -> None:
    cells = [
        ("a", "Organization/den-4", 0, 4),  # denominator below 5
        ("a", "Organization/num-3", 3, 10),  # numerator above 0 and below 5
        ("a", "Organization/rest-2", 8, 10),  # 2 without: the complement is below 5
        ("a", "Organization/zero", 0, 10),  # 0 of 10: shown
        ("a", "Organization/all", 10, 10),  # 10 of 10: shown
        ("a", "Organization/five", 5, 10),  # 5 of 10: shown
    ]
    found = _run(_measured(*cells), 5, ["a"])
    suppressed = {k for (_, s, k), f in found.items() if s == "organization" and f.suppressed}  # type: ignore[attr-defined]
    assert suppressed == {"Organization/den-4", "Organization/num-3", "Organization/rest-2"}
    for key in suppressed:
        f = found[("a", "organization", key)]
        assert (f.numerator, f.denominator, f.proportion, f.low, f.high) == (None,) * 5  # type: ignore[attr-defined]
    assert found[("a", "organization", "Organization/zero")].numerator == 0  # type: ignore[attr-defined]
    # Overall: 26 of 54, nothing hidden.
    overall = found[("a", "overall", "")]
    assert (overall.numerator, overall.denominator, overall.suppressed) == (26, 54, False)  # type: ignore[attr-defined]


def test_the_figures_follow_the_guidelines_order_of_indicators() -> None:
    found = _run(
        _measured(("z", "Organization/1", 1, 2), ("a", "Organization/1", 1, 2)), 0, ["z", "a"]
    )
    assert [k[0] for k in found] == ["z", "z", "z", "a", "a", "a"]
    assert [k[1] for k in found][:3] == ["overall", "month", "organization"]
