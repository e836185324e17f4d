"""The audit's figures for FHIR: a ``Measure`` per indicator (generated from the indicator's
data, proportion scoring) and a summary ``MeasureReport`` per indicator, stratified by month
and by organisation, in one ``collection`` Bundle (FHIR R4).

How the figures map:

- The Measure's populations: ``initial-population`` is the guideline's target population (its
  scope text), ``denominator``, ``denominator-exclusion`` and ``numerator`` are the indicator's
  words. Their criteria are those words (``text/plain``): the logic is the guideline package's
  code, the same the cards use, and is not restated in another language.
- A MeasureReport group (and each stratum) carries the ``denominator`` and ``numerator``
  counts and the ``measureScore`` (the proportion, 0 to 1). The denominator count is the
  episodes after the exclusions (the figures count no excluded episode), so the score is
  numerator / denominator as FHIR computes it when no exclusion count is given; the exclusions
  are not counted per indicator.
- The 95% Wilson interval of a score is the extension :data:`INTERVAL_EXTENSION_URL`
  (``valueRange``) on the group or stratum.
- A hidden (suppressed) cell keeps its populations, without ``count``, has no
  ``measureScore`` and no interval, and carries the extension :data:`SUPPRESSED_EXTENSION_URL`
  (``valueBoolean: true``). The report's small-cell threshold is the extension
  :data:`MIN_CELL_EXTENSION_URL` (``valueInteger``) on the MeasureReport.
- Canonical URLs follow the value sets' local scheme (``urn:nkr:valueset:<id>``):
  ``urn:nkr:measure:<guideline id>:<indicator id>``, versioned with the guideline's version.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from nkr._guideline import Guideline, Localized
from nkr._texts import generic_texts
from nkr.audit._model import Figure, Indicator, Stratum

Period = tuple[dt.date | None, dt.date | None]

MEASURE_URL_PREFIX: Final = "urn:nkr:measure:"
SUPPRESSED_EXTENSION_URL: Final = "urn:nkr:extension:small-cell-suppressed"
MIN_CELL_EXTENSION_URL: Final = "urn:nkr:extension:small-cell-threshold"
INTERVAL_EXTENSION_URL: Final = "urn:nkr:extension:wilson-interval-95"
STRATIFIER_SYSTEM: Final = "urn:nkr:audit-stratifier"
SCORING_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/measure-scoring"
POPULATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
STRATIFIERS: Final[tuple[Stratum, ...]] = ("month", "organization")
_REPORTED: Final = ("denominator", "numerator")


def measure_url(guideline: Guideline, indicator: Indicator) -> str:
    """The Measure's canonical URL (local, like the value sets')."""
    return f"{MEASURE_URL_PREFIX}{guideline.id}:{indicator.id}"


def _instant(moment: dt.datetime) -> str:
    """A FHIR dateTime with its offset (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat(timespec="seconds")


def _both(text: Localized) -> str:
    """Danish, then the English translation, as the value sets' descriptions give them."""
    return f"{text.da}\n\n{text.en}"


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


def _name(indicator_id: str) -> str:
    name = "".join(part.capitalize() for part in indicator_id.split("-"))
    return name if name[:1].isalpha() else f"Indicator{name}"


def _localized(key: str, **params: object) -> Localized:
    texts = generic_texts()
    return Localized(da=texts(key, "da", **params), en=texts(key, "en", **params))


def _improvement(indicator: Indicator) -> dict[str, Any]:
    code = "increase" if indicator.better == "higher" else "decrease"
    return _concept(IMPROVEMENT_SYSTEM, code)


def _stratifier_code(stratum: Stratum) -> dict[str, Any]:
    return {**_concept(STRATIFIER_SYSTEM, stratum), "text": stratum}


def measure(guideline: Guideline, indicator: Indicator, generated: dt.datetime) -> dict[str, Any]:
    """The indicator as a FHIR R4 Measure (proportion scoring), every word from its data."""

    def population(code: str, text: Localized) -> dict[str, Any]:
        return {
            "code": _concept(POPULATION_SYSTEM, code),
            "description": _both(text),
            "criteria": {"language": "text/plain", "expression": text.da},
        }

    resource: dict[str, Any] = {
        "resourceType": "Measure",
        "id": indicator.id,
        "url": measure_url(guideline, indicator),
        "version": guideline.version,
        "name": _name(indicator.id),
        "title": indicator.title.da,
        "status": "active",
        "date": _instant(generated),
        "publisher": "nkr",
        "description": _both(indicator.title),
        "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "DK"}]}],
        "relatedArtifact": [
            {
                "type": "citation",
                "citation": guideline.source.citation.da,
                "url": guideline.source.url,
            }
        ],
        "scoring": _concept(SCORING_SYSTEM, "proportion"),
        "improvementNotation": _improvement(indicator),
        "guidance": _both(_localized("measure.guidance", suppressed_url=SUPPRESSED_EXTENSION_URL)),
        "group": [
            {
                "population": [
                    population("initial-population", guideline.scope.text),
                    population("denominator", indicator.denominator),
                    population("denominator-exclusion", indicator.exclusions),
                    population("numerator", indicator.numerator),
                ],
                "stratifier": [
                    {
                        "code": _stratifier_code(stratum),
                        "description": _both(_localized(f"measure.stratifier-{stratum}")),
                    }
                    for stratum in STRATIFIERS
                ],
            }
        ],
    }
    rec = guideline.by_id.get(indicator.recommendation)
    if rec is not None:
        resource["relatedArtifact"].append(
            {
                "type": "justification",
                "label": rec.id,
                "display": rec.label.da,
                "citation": rec.wording.da,
            }
        )
    return resource


def _counts(figure: Figure | None) -> dict[str, Any]:
    """A group's or stratum's populations and score; a hidden cell carries no count at all."""
    if figure is not None and (figure.suppressed or figure.numerator is None):
        return {
            "extension": [{"url": SUPPRESSED_EXTENSION_URL, "valueBoolean": True}],
            "population": [{"code": _concept(POPULATION_SYSTEM, c)} for c in _REPORTED],
        }
    numerator = 0 if figure is None else figure.numerator or 0
    denominator = 0 if figure is None else figure.denominator or 0
    counts = {"denominator": denominator, "numerator": numerator}
    out: dict[str, Any] = {
        "population": [
            {"code": _concept(POPULATION_SYSTEM, c), "count": counts[c]} for c in _REPORTED
        ]
    }
    if figure is not None and figure.proportion is not None:
        out["measureScore"] = {"value": figure.proportion}
        if figure.low is not None and figure.high is not None:
            interval = {"low": {"value": figure.low}, "high": {"value": figure.high}}
            out["extension"] = [{"url": INTERVAL_EXTENSION_URL, "valueRange": interval}]
    return out


def measure_report(
    guideline: Guideline,
    indicator: Indicator,
    figures: Iterable[Figure],
    *,
    period: tuple[dt.date, dt.date],
    generated: dt.datetime,
    min_cell: int,
) -> dict[str, Any]:
    """The indicator's figures as a summary MeasureReport, stratified by month and by
    organisation (strata in key order)."""
    by: dict[Stratum, dict[str, Figure]] = {"overall": {}, "month": {}, "organization": {}}
    for f in figures:
        if f.indicator == indicator.id:
            by[f.stratum][f.key] = f
    group: dict[str, Any] = _counts(by["overall"].get(""))
    group["stratifier"] = [
        {
            "code": [_stratifier_code(stratum)],
            "stratum": [
                {"value": {"text": key}, **_counts(by[stratum][key])} for key in sorted(by[stratum])
            ],
        }
        for stratum in STRATIFIERS
    ]
    return {
        "resourceType": "MeasureReport",
        "id": f"{indicator.id}-report",
        "extension": [{"url": MIN_CELL_EXTENSION_URL, "valueInteger": min_cell}],
        "status": "complete",
        "type": "summary",
        "measure": f"{measure_url(guideline, indicator)}|{guideline.version}",
        "date": _instant(generated),
        "period": {"start": period[0].isoformat(), "end": period[1].isoformat()},
        "improvementNotation": _improvement(indicator),
        "group": [group],
    }


def report_period(
    period: Period, figures: Iterable[Figure], generated: dt.datetime
) -> tuple[dt.date, dt.date]:
    """The period a MeasureReport states: ``--from``/``--to`` where given, else from the first
    day of the first month to the last day of the last month with episodes (the day of
    ``generated`` when there are none)."""
    months = sorted({f.key for f in figures if f.stratum == "month"})
    start, end = period
    if start is None:
        start = dt.date.fromisoformat(f"{months[0]}-01") if months else generated.date()
    if end is None:
        if months:
            year, month = int(months[-1][:4]), int(months[-1][5:7])
            end = dt.date(year, month, calendar.monthrange(year, month)[1])
        else:
            end = generated.date()
    return start, end


def measures_bundle(
    guideline: Guideline,
    indicators: Sequence[Indicator],
    figures: Iterable[Figure],
    *,
    period: Period,
    generated: dt.datetime,
    min_cell: int = 5,
) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle: for each indicator its Measure, then its summary
    MeasureReport over ``figures`` (the engine's :class:`Figure` rows). ``period`` is the
    ``--from``/``--to`` selection (see :func:`report_period`); ``generated`` dates the
    resources. Deterministic for the same arguments."""
    figure_list = list(figures)
    stated = report_period(period, figure_list, generated)
    entries: list[Mapping[str, Any]] = []
    for ind in indicators:
        url = measure_url(guideline, ind)
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}",
                "resource": measure(guideline, ind, generated),
            }
        )
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url + '#report')}",
                "resource": measure_report(
                    guideline,
                    ind,
                    figure_list,
                    period=stated,
                    generated=generated,
                    min_cell=min_cell,
                ),
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(generated),
        "entry": entries,
    }
