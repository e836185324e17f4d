"""The clinical rules: one short function per recommendation, pure functions of a case and a date.

Every interface (CLI, CDS Hooks, web) turns its input into a :class:`Case` and calls
:func:`evaluate`; none of them decides anything clinical on its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import msgspec

from nkr._assessment import (
    Assessment,
    Deadline,
    Fact,
    Notice,
    Outcome,
    Reason,
    RecommendationResult,
    RecStatus,
    Term,
)
from nkr._errors import InputError
from nkr._guideline import Guideline, Lang
from nkr._rules import RuleBook
from nkr.guidelines.lumbar_radiculopathy.case import Case, Planned

# Red flags that mean acute assessment and referral (general Danish practice, not the NKR).
ACUTE_RED_FLAGS = frozenset({"cauda_equina", "progressive_paresis"})


class Context(msgspec.Struct, gc=False):
    """What every rule may look at: the case, the date and the scope decision. Rules only
    read it (not frozen only because it is built on every call, and frozen costs there)."""

    case: Case
    on: dt.date
    days_since_onset: int
    week: int
    in_scope: bool
    # Outside scope, but only because symptoms have lasted longer than 12 weeks.
    beyond_12_weeks_only: bool
    not_in_scope: Outcome
    in_scope_reason: Reason
    spine_surgeon_due: dt.date
    # What a recommendation without a rule of its own says: it applies (in scope) or not.
    applies: Outcome


# This guideline's rules, one per recommendation id.
RULES: RuleBook[Context] = RuleBook("nkr-lumbal-radikulopati")
SURGEON = "spine-surgeon-assessment"


def _applies(ctx: Context) -> Outcome:
    return ctx.applies


def _caution_if_planned(ctx: Context, intervention: Planned) -> Outcome:
    if ctx.in_scope and intervention in ctx.case.planned:
        return Outcome(
            RecStatus.CAUTION, _PLANNED_REASONS[intervention], Term("planned", intervention)
        )
    return _applies(ctx)


_PLANNED_REASONS = {
    code: Reason("planned", (("intervention", Term("planned", code)),))
    for code in ("mri", "glucocorticoid_injection", "acupuncture", "bed_rest")
}


@RULES.rule("physical-activity")
def physical_activity(ctx: Context) -> Outcome:
    """Normal activity rather than bed rest: caution when bed rest is planned."""
    return _caution_if_planned(ctx, "bed_rest")


@RULES.rule("supervised-exercise")
def supervised_exercise(ctx: Context) -> Outcome:
    return _applies(ctx)


@RULES.rule("specific-exercise")
def specific_exercise(ctx: Context) -> Outcome:
    return _applies(ctx)


@RULES.rule("combined-exercise")
def combined_exercise(ctx: Context) -> Outcome:
    return _applies(ctx)


@RULES.rule("manual-mobilisation")
def manual_mobilisation(ctx: Context) -> Outcome:
    return _applies(ctx)


@RULES.rule("acupuncture")
def acupuncture(ctx: Context) -> Outcome:
    """Not good practice to offer routinely: caution when acupuncture is planned."""
    return _caution_if_planned(ctx, "acupuncture")


@RULES.rule("exercise-or-mobilisation")
def exercise_or_mobilisation(ctx: Context) -> Outcome:
    return _applies(ctx)


@RULES.rule("mri")
def mri(ctx: Context) -> Outcome:
    """MRI only after careful consideration: caution when an MRI is planned."""
    return _caution_if_planned(ctx, "mri")


@RULES.rule("glucocorticoid-injection")
def glucocorticoid_injection(ctx: Context) -> Outcome:
    """Injection only after careful consideration: caution when one is planned."""
    return _caution_if_planned(ctx, "glucocorticoid_injection")


_SURGEON_DONE = Outcome(RecStatus.DONE, Reason("surgeon-done"))
_SURGEON_REFERRED = Outcome(RecStatus.DONE, Reason("surgeon-referred"))
_SURGEON_REFERRAL_PLANNED = Outcome(RecStatus.DONE, Reason("surgeon-referral-planned"))
_NO_SEVERE_PAIN = Outcome(RecStatus.NOT_APPLICABLE, Reason("surgeon-no-severe-pain"))
_NO_TREATMENT_YET = Outcome(RecStatus.NOT_APPLICABLE, Reason("surgeon-no-treatment-yet"))


@RULES.rule("spine-surgeon-assessment")
def spine_surgeon_assessment(ctx: Context) -> Outcome:
    """Assessment by a spine surgeon within 12 weeks of onset when severe, disabling pain
    persists despite non-surgical treatment; overdue after that, even past the 12 weeks."""
    if not (ctx.in_scope or ctx.beyond_12_weeks_only):
        return ctx.not_in_scope
    case = ctx.case
    if case.spine_surgeon_assessment == "done":
        return _SURGEON_DONE
    if case.spine_surgeon_assessment == "referred":
        return _SURGEON_REFERRED
    if "spine_surgeon_referral" in case.planned:
        return _SURGEON_REFERRAL_PLANNED
    if not ctx.in_scope and not (case.severe_disabling_pain and case.non_surgical_treatment):
        return ctx.not_in_scope
    if not case.severe_disabling_pain:
        return _NO_SEVERE_PAIN
    if not case.non_surgical_treatment:
        return _NO_TREATMENT_YET
    due = (("due_date", ctx.spine_surgeon_due),)
    if ctx.on <= ctx.spine_surgeon_due:
        return Outcome(RecStatus.DUE, Reason("surgeon-due", due))
    return Outcome(RecStatus.OVERDUE, Reason("surgeon-overdue", due))


def _scope_reasons(
    case: Case, guideline: Guideline, age: int, days: int
) -> tuple[tuple[Reason, ...], bool]:
    """Why the case is outside the guideline's population, and whether duration is the only
    reason."""
    reasons: list[Reason] = []
    if age < guideline.scope.min_age_years:
        reasons.append(Reason("scope-under-18", (("age", age),)))
    beyond = days > guideline.scope.max_symptom_days
    if beyond:
        reasons.append(Reason("scope-beyond-12-weeks", (("days", days),)))
    if not case.signs:
        reasons.append(Reason("scope-no-signs"))
    if case.red_flags:
        flags = tuple(Term("red_flags", f) for f in sorted(case.red_flags))
        reasons.append(Reason("scope-red-flags", (("flags", flags),)))
    return tuple(reasons), beyond and len(reasons) == 1


def _safety(case: Case) -> Notice | None:
    """Red flags: outside the guideline, shown before it (general Danish practice)."""
    if not case.red_flags:
        return None
    flags = tuple(sorted(case.red_flags))
    acute = not ACUTE_RED_FLAGS.isdisjoint(flags)
    terms = tuple(Term("red_flags", f) for f in flags)
    key = "safety-acute" if acute else "safety-non-acute"
    return Notice(
        topic="safety",
        critical=acute,
        title=Reason("safety-title"),
        text=Reason(key, (("flags", terms),)),
        items=terms,
    )


class Course(msgspec.Struct, frozen=True, gc=False):
    """This guideline's own facts about an assessment, as its JSON fields (documented in the
    README): age, days since onset and week, the red-flag notice, the spine-surgeon date."""

    guideline: Guideline
    age_years: int
    days_since_onset: int
    week: int
    safety: Notice | None
    # The spine-surgeon date only where it means something (see _deadline), and its wording.
    spine_surgeon: Deadline | None

    @property
    def beyond_scope_duration(self) -> bool:
        """Symptoms have lasted longer than the guideline's population allows."""
        return self.days_since_onset > self.guideline.scope.max_symptom_days

    @property
    def week_reason(self) -> Reason:
        key = "week-beyond" if self.beyond_scope_duration else "week-within"
        return Reason(key, (("week", self.week),))

    def week_text(self, lang: Lang) -> str:
        """'week 6 of 12' within the guideline's duration, 'week 15 (beyond the 12 weeks)'
        after it."""
        return self.week_reason.text(self.guideline, lang)

    @staticmethod
    def of(assessment: Assessment) -> Course:
        """The course of an assessment made by this guideline's rules."""
        if not isinstance(assessment.details, Course):
            raise TypeError("not an assessment of nkr-lumbal-radikulopati")
        return assessment.details

    @property
    def spine_surgeon_due(self) -> dt.date | None:
        return None if self.spine_surgeon is None else self.spine_surgeon.date

    def to_json(self, lang: Lang) -> dict[str, Any]:
        g, notice, surgeon = self.guideline, self.safety, self.spine_surgeon
        return {
            "age_years": self.age_years,
            "days_since_onset": self.days_since_onset,
            "week": self.week,
            "week_text": self.week_text(lang),
            "safety": None
            if notice is None
            else {
                "title": notice.title.text(g, lang),
                "red_flags": [t.code for t in notice.items],
                "acute": notice.critical,
                "text": notice.text.text(g, lang),
            },
            "spine_surgeon_due": None if surgeon is None else surgeon.date.isoformat(),
            "spine_surgeon_due_text": None if surgeon is None else surgeon.text.text(g, lang),
        }


def _deadline(ctx: Context, surgeon: RecommendationResult) -> Deadline | None:
    """How the spine-surgeon date is shown, if at all: as due or overdue when it is; as what
    has happened when the patient is referred or assessed (never as a condition still
    pending); as the condition it is for a patient in scope without that need (yet); nowhere
    else (out of scope, a red flag, under 18), where a date would read as a deadline that
    applies."""
    due, date = (("due_date", ctx.spine_surgeon_due),), ctx.spine_surgeon_due
    if surgeon.status is RecStatus.DUE:
        return Deadline(SURGEON, date, "due", Reason("surgeon-deadline-due", due))
    if surgeon.status is RecStatus.OVERDUE:
        return Deadline(SURGEON, date, "overdue", Reason("surgeon-deadline-overdue", due))
    if not ctx.in_scope:
        return None
    if surgeon.status is RecStatus.DONE:
        return Deadline(SURGEON, date, "done", surgeon.reason)
    return Deadline(SURGEON, date, "if", Reason("surgeon-deadline-if", due))


def evaluate(case: Case, guideline: Guideline, on: dt.date) -> Assessment:
    """Assess ``case`` against ``guideline`` on the date ``on``.

    Pure: the same case, guideline and date always give the same assessment. Raises
    :class:`~nkr.InputError` when the case's dates are impossible on that date.
    """
    days = (on - case.symptom_onset).days
    if days < 0:
        raise InputError("symptom_onset", f"{case.symptom_onset} is after the assessment date {on}")
    age = case.age_on(on)
    scope_reasons, beyond_only = _scope_reasons(case, guideline, age, days)
    in_scope = not scope_reasons
    week = max(1, -(-days // 7))
    not_in_scope = Outcome(
        RecStatus.NOT_APPLICABLE, Reason("out-of-scope", (("reasons", scope_reasons),))
    )
    in_scope_reason = Reason("in-scope", (("week", week),))
    ctx = Context(
        case=case,
        on=on,
        days_since_onset=days,
        week=week,
        in_scope=in_scope,
        beyond_12_weeks_only=beyond_only,
        not_in_scope=not_in_scope,
        in_scope_reason=in_scope_reason,
        spine_surgeon_due=case.symptom_onset + dt.timedelta(days=guideline.scope.max_symptom_days),
        applies=Outcome(RecStatus.APPLIES, in_scope_reason) if in_scope else not_in_scope,
    )
    results = RULES.apply(guideline, ctx)
    surgeon = results[_surgeon_index(guideline)]
    deadline = _deadline(ctx, surgeon)
    safety = _safety(case) if case.red_flags else None
    course = Course(guideline, age, days, week, safety, deadline)
    return Assessment(
        guideline,
        on,
        in_scope,
        scope_reasons,
        results,
        (
            Fact("age", _AGE, Reason("fact-age-value", (("age", age),))),
            Fact(
                "days-since-onset",
                _DAYS,
                Reason("fact-days-value", (("days", days), ("week", course.week_reason))),
            ),
        ),
        () if safety is None else (safety,),
        () if deadline is None else (deadline,),
        course,
    )


_AGE: Final = Reason("fact-age")
_DAYS: Final = Reason("fact-days-since-onset")
_SURGEON_INDEX: dict[int, tuple[Guideline, int]] = {}


def _surgeon_index(guideline: Guideline) -> int:
    """Where the spine-surgeon recommendation is in the guideline's order (found once)."""
    hit = _SURGEON_INDEX.get(id(guideline))
    if hit is None:
        ids = [r.id for r in guideline.recommendations]
        hit = _SURGEON_INDEX[id(guideline)] = (guideline, ids.index(SURGEON))
    return hit[1]
