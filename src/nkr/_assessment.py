"""What the engine returns: an assessment of one patient case on one date.

The assessment holds codes and parameters, not sentences; sentences come from the guideline's
data in the language asked for, when an interface renders it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

from nkr._guideline import Direction, Guideline, Lang, Recommendation
from nkr._settings import DEFAULT_PAIN_THRESHOLD


class RecStatus(StrEnum):
    """What a recommendation means for this patient now."""

    APPLIES = "applies"
    CAUTION = "caution"
    DUE = "due"
    OVERDUE = "overdue"
    DONE = "done"
    NOT_APPLICABLE = "not-applicable"

    @property
    def needs_attention(self) -> bool:
        """A caution, or something due or overdue: shown first, by recommendation."""
        return self in _ATTENTION


_ATTENTION = frozenset({RecStatus.OVERDUE, RecStatus.DUE, RecStatus.CAUTION})


@dataclass(frozen=True, slots=True)
class Term:
    """A code from the guideline's case vocabulary, rendered as its label."""

    vocabulary: str
    code: str


ParamValue: TypeAlias = (
    "str | int | dt.date | Term | Reason | tuple[Term, ...] | tuple[Reason, ...]"
)


@dataclass(frozen=True, slots=True)
class Reason:
    """A guideline message key with its parameters; rendered per language."""

    key: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def text(self, guideline: Guideline, lang: Lang) -> str:
        # guideline.message, without packing the parameters twice (cards call this a lot).
        template = guideline.messages[self.key](lang)
        return template.format_map({k: _param_text(v, guideline, lang) for k, v in self.params})


def _param_text(value: ParamValue, guideline: Guideline, lang: Lang) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, Term):
        return guideline.label(value.vocabulary, value.code, lang)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        separator = "; " if value and isinstance(value[0], Reason) else ", "
        return separator.join(_param_text(v, guideline, lang) for v in value)
    if isinstance(value, Reason):
        return value.text(guideline, lang)
    return str(value)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A rule's verdict for one recommendation."""

    status: RecStatus
    reason: Reason


@dataclass(frozen=True, slots=True)
class RecommendationResult:
    recommendation: Recommendation
    status: RecStatus
    reason: Reason

    @property
    def applies_against(self) -> bool:
        """A recommendation *against* that merely applies: never to be shown as a go-ahead."""
        return (
            self.status is RecStatus.APPLIES and self.recommendation.direction is Direction.AGAINST
        )


@dataclass(frozen=True, slots=True)
class SafetyNotice:
    """Red flags: outside the guideline's scope, shown apart from its recommendations."""

    red_flags: tuple[str, ...]
    acute: bool
    reason: Reason


@dataclass(frozen=True, slots=True)
class Assessment:
    guideline: Guideline
    date: dt.date
    age_years: int
    days_since_onset: int
    week: int
    in_scope: bool
    scope_reasons: tuple[Reason, ...]
    safety: SafetyNotice | None
    # The date by which the spine-surgeon assessment should happen, only where it means
    # something: the case is in scope, or the assessment is due or overdue. None otherwise.
    spine_surgeon_due: dt.date | None
    results: tuple[RecommendationResult, ...]
    assumptions: tuple[str, ...] = field(default=())
    # How to word that date: as the condition it is, as due, or as overdue (None with it).
    spine_surgeon_deadline: Reason | None = None

    @property
    def beyond_scope_duration(self) -> bool:
        """Symptoms have lasted longer than the guideline's population allows."""
        return self.days_since_onset > self.guideline.scope.max_symptom_days

    def week_text(self, lang: Lang) -> str:
        """'week 6 of 12' within the guideline's duration, 'week 15 (beyond the 12 weeks)'
        after it."""
        key = "week-beyond" if self.beyond_scope_duration else "week-within"
        return self.guideline.message(key, lang, week=self.week)

    def result(self, rec_id: str) -> RecommendationResult:
        for result in self.results:
            if result.recommendation.id == rec_id:
                return result
        raise KeyError(rec_id)

    @property
    def statuses(self) -> dict[str, RecStatus]:
        return {r.recommendation.id: r.status for r in self.results}

    def to_json(
        self, lang: Lang, *, pain_threshold: int = DEFAULT_PAIN_THRESHOLD
    ) -> dict[str, Any]:
        """A JSON-ready dict with every text in ``lang``; the shape is documented in the README."""
        g = self.guideline
        return {
            "guideline": {
                "id": g.id,
                "version": g.version,
                "in_force": g.status.in_force,
                "status": g.status.text(lang),
            },
            "date": self.date.isoformat(),
            "lang": lang,
            "age_years": self.age_years,
            "days_since_onset": self.days_since_onset,
            "week": self.week,
            "week_text": self.week_text(lang),
            "in_scope": self.in_scope,
            "scope_reasons": [{"code": r.key, "text": r.text(g, lang)} for r in self.scope_reasons],
            "safety": None
            if self.safety is None
            else {
                "title": g.message("safety-title", lang),
                "red_flags": list(self.safety.red_flags),
                "acute": self.safety.acute,
                "text": self.safety.reason.text(g, lang),
            },
            "spine_surgeon_due": None
            if self.spine_surgeon_due is None
            else self.spine_surgeon_due.isoformat(),
            "spine_surgeon_due_text": None
            if self.spine_surgeon_deadline is None
            else self.spine_surgeon_deadline.text(g, lang),
            "recommendations": [
                {
                    "id": r.recommendation.id,
                    "status": r.status.value,
                    "reason": r.reason.text(g, lang),
                    "symbols": r.recommendation.symbols,
                    "wording": r.recommendation.wording(lang),
                }
                for r in self.results
            ],
            "assumptions": [
                {
                    "id": a.id,
                    "text": a.text(lang).format(pain_threshold=pain_threshold),
                }
                for a in g.assumptions
            ],
        }
