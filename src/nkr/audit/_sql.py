"""The figures in SQL, in the subset that DuckDB and Spark SQL share: each indicator overall,
by month and by organization, with its counts, proportion, 95% Wilson score interval and
small-cell suppression. Computed from the engine's table of :data:`nkr.audit._judge
.MEASURED_SCHEMA` rows (one per episode and indicator whose denominator it meets).

Suppressed (``--min-cell``): a denominator below the setting, a numerator above 0 and below
it, or a complement (denominator - numerator) above 0 and below it; such a row carries no
counts, proportion or interval. Strata with a denominator of 0 have no row.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

# The 97.5th percentile of the standard normal distribution: a two-sided 95% interval.
Z: Final = 1.959963984540054
# The columns of the figures, in the order of nkr.audit._model.Figure's fields.
COLUMNS: Final = (
    "indicator",
    "stratum",
    "key",
    "numerator",
    "denominator",
    "proportion",
    "low",
    "high",
    "suppressed",
)


def figures_sql(
    table: str,
    min_cell: int,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> str:
    """The query of the figures over ``table`` (a table or view name), for the episodes that
    start from ``start`` to ``end`` (both included; None: no bound), ordered by indicator,
    stratum (overall, month, organization) and key."""
    if not table.isidentifier():
        raise ValueError(f"not a table name: {table!r}")
    cell = int(min_cell)
    where = []
    if start is not None:
        where.append(f"start >= DATE '{start.isoformat()}'")
    if end is not None:
        where.append(f"start <= DATE '{end.isoformat()}'")
    selected = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")
    # A DOUBLE in both engines (a plain literal is a DECIMAL, whose arithmetic they round
    # differently): the same IEEE operations in the same order give the same bits.
    z = f"CAST({Z!r} AS DOUBLE)"
    return f"""
WITH measured AS ({selected}),
counts AS (
    SELECT indicator, 'overall' AS stratum, '' AS key,
           CAST(SUM(numerator) AS BIGINT) AS num, CAST(COUNT(*) AS BIGINT) AS den
    FROM measured GROUP BY indicator
    UNION ALL
    SELECT indicator, 'month' AS stratum, month AS key,
           CAST(SUM(numerator) AS BIGINT) AS num, CAST(COUNT(*) AS BIGINT) AS den
    FROM measured GROUP BY indicator, month
    UNION ALL
    SELECT indicator, 'organization' AS stratum, organization AS key,
           CAST(SUM(numerator) AS BIGINT) AS num, CAST(COUNT(*) AS BIGINT) AS den
    FROM measured GROUP BY indicator, organization
),
wilson AS (
    SELECT indicator, stratum, key, num, den,
           CAST(num AS DOUBLE) / den AS p,
           1.0 + {z} * {z} / den AS d,
           (CAST(num AS DOUBLE) / den + {z} * {z} / (2.0 * den)) AS c,
           {z} * SQRT(
               (CAST(num AS DOUBLE) / den) * (1.0 - CAST(num AS DOUBLE) / den) / den
               + {z} * {z} / (4.0 * den * den)
           ) AS h,
           (den < {cell} OR (num > 0 AND num < {cell})
            OR (den - num > 0 AND den - num < {cell})) AS suppressed
    FROM counts
)
SELECT indicator, stratum, key,
       CASE WHEN suppressed THEN NULL ELSE num END AS numerator,
       CASE WHEN suppressed THEN NULL ELSE den END AS denominator,
       CASE WHEN suppressed THEN NULL ELSE p END AS proportion,
       -- 0 and 1 exactly at the ends (in floating point, c - h is a few 1e-17 off 0 there).
       CASE WHEN suppressed THEN NULL WHEN num = 0 THEN 0.0
            ELSE GREATEST(0.0, (c - h) / d) END AS low,
       CASE WHEN suppressed THEN NULL WHEN num = den THEN 1.0
            ELSE LEAST(1.0, (c + h) / d) END AS high,
       suppressed
FROM wilson
ORDER BY indicator,
         CASE stratum WHEN 'overall' THEN 0 WHEN 'month' THEN 1 ELSE 2 END,
         key
"""


# The unsuppressed counts, for the tests and the engines' comparison: same strata.
def counts_sql(table: str) -> str:
    """Every stratum's numerator and denominator, unsuppressed (never for sharing)."""
    if not table.isidentifier():
        raise ValueError(f"not a table name: {table!r}")
    return f"""
SELECT indicator, 'overall' AS stratum, '' AS key,
       CAST(SUM(numerator) AS BIGINT) AS num, CAST(COUNT(*) AS BIGINT) AS den
FROM {table} GROUP BY indicator
UNION ALL
SELECT indicator, 'month', month, CAST(SUM(numerator) AS BIGINT), CAST(COUNT(*) AS BIGINT)
FROM {table} GROUP BY indicator, month
UNION ALL
SELECT indicator, 'organization', organization, CAST(SUM(numerator) AS BIGINT),
       CAST(COUNT(*) AS BIGINT)
FROM {table} GROUP BY indicator, organization
"""
