"""A guideline's rule book: one rule per recommendation, registered by id, checked against the
guideline's content.

Each guideline keeps its own book (nothing is shared between guidelines)::

    RULES: RuleBook[Context] = RuleBook("my-guideline")

    @RULES.rule("exercise")
    def exercise(ctx: Context) -> Outcome: ...

The book knows nothing of what a rule looks at (``C``: the guideline's own context, built
once per evaluation); it only guarantees that every recommendation has exactly one rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from nkr._assessment import Outcome, RecommendationResult
from nkr._errors import InputError
from nkr._guideline import Guideline

C = TypeVar("C")
Rule = Callable[[C], Outcome]


class RuleBook(Generic[C]):
    """The rules of one guideline, by recommendation id."""

    __slots__ = ("_rules", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._rules: dict[str, Rule[C]] = {}

    def rule(self, rec_id: str) -> Callable[[Rule[C]], Rule[C]]:
        """Register the decorated function as the rule of recommendation ``rec_id``."""

        def register(fn: Rule[C]) -> Rule[C]:
            if rec_id in self._rules:
                raise ValueError(f"{self.name}: a second rule for recommendation {rec_id!r}")
            self._rules[rec_id] = fn
            return fn

        return register

    def __getitem__(self, rec_id: str) -> Rule[C]:
        return self._rules[rec_id]

    def __contains__(self, rec_id: object) -> bool:
        return rec_id in self._rules

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._rules)

    def check(self, guideline: Guideline, source: Path | str) -> Guideline:
        """``guideline`` when its recommendations and these rules match one to one; else an
        InputError naming ``source`` and the ids on either side."""
        ids = set(guideline.by_id)
        if ids != set(self._rules):
            raise InputError(
                f"{source}: recommendations and rules differ: "
                f"without a rule: {sorted(ids - set(self._rules))}, "
                f"rules without a recommendation: {sorted(set(self._rules) - ids)}"
            )
        return guideline

    def apply(self, guideline: Guideline, ctx: C) -> tuple[RecommendationResult, ...]:
        """Every recommendation's result for ``ctx``, in the guideline's order."""
        rules = self._rules
        results = []
        for rec in guideline.recommendations:
            outcome = rules[rec.id](ctx)
            results.append(
                RecommendationResult(rec, outcome.status, outcome.reason, outcome.concerns)
            )
        return tuple(results)
