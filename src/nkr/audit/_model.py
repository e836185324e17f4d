"""The audit's data: what a guideline measures (its indicators, from its own data), what one
episode of care gave, and the figures computed over the population.

These types are the contract between the parts of the audit: the guideline package judges a
patient's record into :class:`Episode` rows; an engine (DuckDB or Spark) moves the data and
computes :class:`Figure` rows in SQL; the report, the CSV files and the FHIR ``MeasureReport``
render the figures. No part decides anything clinical but the guideline package.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from nkr._guideline import Localized

Better = Literal["higher", "lower"]
Stratum = Literal["overall", "month", "organization"]


class Indicator(msgspec.Struct, frozen=True, kw_only=True):
    """One quality indicator, defined in the guideline package's data (``indicators.toml``):
    which recommendation it measures, its numerator, denominator and exclusions in words (the
    code that decides them is the package's), and whether a higher proportion is better."""

    id: str
    recommendation: str
    title: Localized
    numerator: Localized
    denominator: Localized
    exclusions: Localized
    better: Better


class Episode(msgspec.Struct, frozen=True, kw_only=True):
    """One episode of care, as the guideline judged it on ``assessed_on`` (the date its
    statuses are those that ``nkr evaluate`` and the cards give for the same resources).

    ``patient`` and ``organization`` are FHIR references (``Patient/ID``,
    ``Organization/ID``): the rows identify patients and are never shared as they are.
    ``exclusion`` names why the episode is outside the guideline's population (``None`` when it
    is in scope). ``denominators``/``numerators`` are the indicator ids whose denominator and
    numerator the episode meets (a numerator only within its denominator).
    """

    patient: str
    organization: str | None
    start: dt.date
    assessed_on: dt.date
    in_scope: bool
    exclusion: str | None
    statuses: dict[str, str]
    denominators: frozenset[str]
    numerators: frozenset[str]

    @property
    def month(self) -> str:
        """The stratum of the episode's start: ``YYYY-MM``."""
        return self.start.isoformat()[:7]


class Figure(msgspec.Struct, frozen=True, kw_only=True):
    """One indicator over one stratum: ``overall`` (key ``""``), a ``month`` (key
    ``YYYY-MM`` of the episode's start) or an ``organization`` (key ``Organization/ID``).
    A suppressed cell (a count below the small-cell setting) carries no counts, proportion or
    interval, only ``suppressed=True``."""

    indicator: str
    stratum: Stratum
    key: str
    numerator: int | None
    denominator: int | None
    proportion: float | None
    low: float | None
    high: float | None
    suppressed: bool
