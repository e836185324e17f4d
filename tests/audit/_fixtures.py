"""Hand-made audit figures for the report and FHIR tests: three indicators (one where higher is
better, one where lower is, one with few episodes, so that most of its cells are hidden),
figures overall, by month and by organisation, with the hidden cells as an engine gives them.

The counts are written out here; the proportions and Wilson intervals are computed by this
file's own formula (the report only shows what it is given).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Final

from nkr import Localized
from nkr.audit._model import Figure, Indicator, Stratum

Z: Final = 1.959963984540054
MIN_CELL: Final = 5
ON: Final = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)


def _l(da: str, en: str) -> Localized:
    return Localized(da=da, en=en)


INDICATORS: Final = (
    Indicator(
        id="exercise-or-mobilisation",
        recommendation="exercise-or-mobilisation",
        title=_l("Superviseret træning tilbudt", "Supervised exercise offered"),
        numerator=_l(
            "Forløb med superviseret træning i vinduet",
            "Episodes with supervised exercise in the window",
        ),
        denominator=_l("Forløb i målgruppen", "Episodes in the target population"),
        exclusions=_l("Under 18 år eller røde flag", "Under 18 or red flags"),
        better="higher",
    ),
    Indicator(
        id="mri",
        recommendation="mri",
        title=_l("MR-scanning inden for forløbet", "MRI within the episode"),
        numerator=_l("Forløb med MR-scanning i vinduet", "Episodes with an MRI in the window"),
        denominator=_l("Forløb i målgruppen", "Episodes in the target population"),
        exclusions=_l("Under 18 år eller røde flag", "Under 18 or red flags"),
        better="lower",
    ),
    Indicator(
        id="rare",
        recommendation="no-such-recommendation",
        title=_l("Sjælden indikator <b>&</b>", "Rare indicator <b>&</b>"),
        numerator=_l("Få forløb", "Few episodes"),
        denominator=_l("Meget få forløb", "Very few episodes"),
        exclusions=_l("Ingen", "None"),
        better="higher",
    ),
)

ORGANIZATIONS: Final = {
    "Organization/north": "Klinik Nord",
    "Organization/south": "Klinik Syd",
    "Organization/east": "Lægehuset Øst",
    "Organization/west": "Klinik $Vest$ <script>",
    "Organization/tiny": "Lille Klinik",
}

# (numerator, denominator) by indicator and stratum; month "2025-05" has no episodes at all.
COUNTS: Final[dict[str, dict[Stratum, dict[str, tuple[int, int]]]]] = {
    "exercise-or-mobilisation": {
        "overall": {"": (412, 640)},
        "month": {
            "2025-01": (30, 50),
            "2025-02": (33, 48),
            "2025-03": (2, 4),
            "2025-04": (40, 61),
            "2025-06": (37, 55),
            "2025-07": (45, 60),
            "2025-08": (50, 70),
            "2025-09": (47, 66),
            "2025-10": (58, 80),
            "2025-11": (35, 58),
            "2025-12": (35, 88),
        },
        "organization": {
            "Organization/north": (160, 200),
            "Organization/south": (90, 190),
            "Organization/east": (110, 170),
            "Organization/west": (50, 77),
            "Organization/tiny": (2, 3),
            "unknown": (0, 0),
        },
    },
    "mri": {
        "overall": {"": (96, 640)},
        "month": {
            "2025-01": (9, 50),
            "2025-02": (8, 48),
            "2025-03": (4, 4),
            "2025-04": (10, 61),
            "2025-06": (7, 55),
            "2025-07": (9, 60),
            "2025-08": (11, 70),
            "2025-09": (10, 66),
            "2025-10": (12, 80),
            "2025-11": (8, 58),
            "2025-12": (8, 88),
        },
        "organization": {
            "Organization/north": (12, 200),
            "Organization/south": (50, 190),
            "Organization/east": (20, 170),
            "Organization/west": (14, 77),
            "Organization/tiny": (0, 3),
        },
    },
    "rare": {
        "overall": {"": (3, 12)},
        "month": {"2025-01": (1, 3), "2025-06": (0, 5), "2025-12": (2, 4)},
        "organization": {"Organization/north": (3, 9), "Organization/south": (0, 3)},
    },
}


def wilson(numerator: int, denominator: int) -> tuple[float, float, float]:
    p = numerator / denominator
    z2 = Z * Z
    centre = (p + z2 / (2 * denominator)) / (1 + z2 / denominator)
    half = (
        Z
        * math.sqrt(p * (1 - p) / denominator + z2 / (4 * denominator * denominator))
        / (1 + z2 / denominator)
    )
    return p, max(0.0, centre - half), min(1.0, centre + half)


def hidden(numerator: int, denominator: int, min_cell: int = MIN_CELL) -> bool:
    return (
        denominator < min_cell or 0 < numerator < min_cell or 0 < denominator - numerator < min_cell
    )


def figure(indicator: str, stratum: Stratum, key: str, num: int, den: int) -> Figure:
    if hidden(num, den):
        return Figure(
            indicator=indicator,
            stratum=stratum,
            key=key,
            numerator=None,
            denominator=None,
            proportion=None,
            low=None,
            high=None,
            suppressed=True,
        )
    p, low, high = wilson(num, den)
    return Figure(
        indicator=indicator,
        stratum=stratum,
        key=key,
        numerator=num,
        denominator=den,
        proportion=p,
        low=low,
        high=high,
        suppressed=False,
    )


def figures() -> list[Figure]:
    """The figures an engine would give for :data:`COUNTS` (strata with denominator 0 left
    out, as the engine leaves them out)."""
    return [
        figure(ind, stratum, key, num, den)
        for ind, strata in COUNTS.items()
        for stratum, cells in strata.items()
        for key, (num, den) in cells.items()
        if den > 0
    ]


SUMMARY: Final[dict[str, Any]] = {
    "files": 9,
    "resources": 1_234_567,
    "patients": 1000,
    "patients_without_episode": 200,
    "episodes": 800,
    "in_scope": 640,
    "exclusions": {"under-18": 90, "red-flag": 60, "no-birth-date": 10},
    "problems": [
        {"file": "Observation.ndjson", "line": 17, "problem": "malformed", "message": "bad JSON"},
        {"file": "Condition.ndjson", "line": 3, "problem": "no-patient"},
        {"file": "Basic.ndjson", "line": 1, "problem": "unknown-type"},
    ],
    "problems_total": 3,
    "seconds": 12.345,
    "engine": "duckdb",
}
