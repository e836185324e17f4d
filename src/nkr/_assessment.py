"""What the engine returns: an assessment of one patient case on one date.

The assessment holds codes and parameters, not sentences; sentences come from the guideline's
data in the language asked for, when an interface renders it. Nothing here is specific to one
guideline.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeAlias

import msgspec

from nkr._guideline import Direction, Guideline, Lang, Recommendation


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


class Term(msgspec.Struct, frozen=True, gc=False):
    """A code from the guideline's case vocabulary, rendered as its label."""

    vocabulary: str
    code: str


ParamValue: TypeAlias = (
    "str | int | dt.date | Term | Reason | tuple[Term, ...] | tuple[Reason, ...]"
)


class Reason(msgspec.Struct, frozen=True, gc=False):
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


class Outcome(msgspec.Struct, frozen=True, gc=False):
    """A rule's verdict for one recommendation. ``concerns`` names, as data, the intervention
    of the guideline's case vocabulary that the verdict is about (a planned intervention that
    gets a caution), so that card rules never read it out of the reason's parameters."""

    status: RecStatus
    reason: Reason
    concerns: Term | None = None


class RecommendationResult(msgspec.Struct, frozen=True, gc=False):
    recommendation: Recommendation
    status: RecStatus
    reason: Reason
    concerns: Term | None = None

    @property
    def applies_against(self) -> bool:
        """A recommendation *against* that merely applies: never to be shown as a go-ahead."""
        return (
            self.status is RecStatus.APPLIES and self.recommendation.direction is Direction.AGAINST
        )


class Fact(msgspec.Struct, frozen=True, gc=False):
    """A fact about the patient that the guideline's rules worked from (an age, how long the
    symptoms have lasted), as the guideline words it: ``label`` and ``value`` are its
    messages. Interfaces show facts in order, as "label: value"."""

    key: str
    label: Reason
    value: Reason


class Notice(msgspec.Struct, frozen=True, gc=False):
    """Something outside the guideline's recommendations that must be seen first (a finding
    that takes the patient out of the guideline): its title, its text and the items it is
    about (terms of the case vocabulary). A ``critical`` notice calls for acute action;
    ``action``, when given, says which."""

    topic: str
    critical: bool
    title: Reason
    text: Reason
    items: tuple[Term, ...] = ()
    action: Reason | None = None


# How a dated action reads: a condition still open, due, overdue, or what has happened.
DeadlineKind: TypeAlias = Literal["if", "due", "overdue", "done"]


class Deadline(msgspec.Struct, frozen=True, gc=False):
    """A date the guideline sets for one recommendation, only where it means something, and
    how it reads (``text``)."""

    recommendation: str
    date: dt.date
    kind: DeadlineKind
    text: Reason


class Details(Protocol):
    """What only one guideline knows about an assessment, as data it renders itself: the
    extra fields of the assessment's JSON (documented by the guideline)."""

    def to_json(self, lang: Lang) -> dict[str, Any]: ...


class Assessment(msgspec.Struct, frozen=True, gc=False):
    """One patient case assessed against one guideline on one date. Nothing in it is
    specific to one guideline: what is (an age, a duration, a safety notice, a deadline)
    comes as facts, notices and deadlines worded by the guideline, and as its ``details``."""

    guideline: Guideline
    date: dt.date
    in_scope: bool
    scope_reasons: tuple[Reason, ...]
    results: tuple[RecommendationResult, ...]
    facts: tuple[Fact, ...] = ()
    notices: tuple[Notice, ...] = ()
    deadlines: tuple[Deadline, ...] = ()
    details: Details | None = None

    def result(self, rec_id: str) -> RecommendationResult:
        for result in self.results:
            if result.recommendation.id == rec_id:
                return result
        raise KeyError(rec_id)

    @property
    def statuses(self) -> dict[str, RecStatus]:
        return {r.recommendation.id: r.status for r in self.results}

    def text(self, reason: Reason, lang: Lang) -> str:
        return reason.text(self.guideline, lang)

    def to_json(self, lang: Lang) -> dict[str, Any]:
        """A JSON-ready dict with every text in ``lang``; the shape is documented in the
        README (the guideline's own fields come from its ``details``)."""
        g = self.guideline
        data: dict[str, Any] = {
            "guideline": {
                "id": g.id,
                "version": g.version,
                "in_force": g.status.in_force,
                "status": g.status.text(lang),
            },
            "date": self.date.isoformat(),
            "lang": lang,
        }
        if self.details is not None:
            data |= self.details.to_json(lang)
        data |= {
            "in_scope": self.in_scope,
            "scope_reasons": [{"code": r.key, "text": r.text(g, lang)} for r in self.scope_reasons],
            "facts": [
                {"key": f.key, "label": f.label.text(g, lang), "text": f.value.text(g, lang)}
                for f in self.facts
            ],
            "notices": [
                {
                    "topic": n.topic,
                    "critical": n.critical,
                    "title": n.title.text(g, lang),
                    "text": n.text.text(g, lang),
                    "items": [i.code for i in n.items],
                }
                for n in self.notices
            ],
            "deadlines": [
                {
                    "recommendation": d.recommendation,
                    "date": d.date.isoformat(),
                    "kind": d.kind,
                    "text": d.text.text(g, lang),
                }
                for d in self.deadlines
            ],
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
            "assumptions": [{"id": a.id, "text": a.text(lang)} for a in g.assumptions],
        }
        return data
