"""What an audit run gives, whichever engine ran it: the episodes, the figures, the counts and
the problems, and the summary of them that ``summary.json`` holds."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from nkr.audit._judge import Judged, Problem, ProblemKind
from nkr.audit._model import Figure, Indicator

# Problems kept with their file and line, per kind (all are counted).
KEPT_PER_KIND: Final = 10_000


@dataclass
class Tally:
    """The counts an engine keeps while it reads, and the problems (up to
    :data:`KEPT_PER_KIND` of each kind with their file and line; every one counted)."""

    resources: int = 0
    # Resources of types outside the Patient compartment (an Organization): shared data.
    shared: int = 0
    patients: int = 0
    without_episode: int = 0
    problem_counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    # The names of the organizations (Organization/ID -> name) found among the shared data.
    organizations: dict[str, str] = field(default_factory=dict)

    def problem(self, problem: Problem) -> None:
        self.problem_counts[problem.kind] += 1
        if self.problem_counts[problem.kind] <= KEPT_PER_KIND:
            self.problems.append(problem)

    def add(self, judged: Judged) -> None:
        self.patients += judged.patients
        self.without_episode += judged.without_episode
        for problem in judged.problems:
            self.problem(problem)


@dataclass(frozen=True)
class AuditResult:
    """One run of the audit: the episodes selected by the period (:data:`nkr.audit._judge
    .EPISODES_SCHEMA`, patient references: not for sharing), the figures (suppressed cells
    without counts) and the counts."""

    guideline: str
    engine: str
    indicators: tuple[Indicator, ...]
    files: tuple[str, ...]
    period: tuple[dt.date | None, dt.date | None]
    min_cell: int
    episodes: pa.Table
    episodes_total: int
    figures: tuple[Figure, ...]
    tally: Tally
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The run in numbers, for ``summary.json`` and the end of the command's output."""
        episodes = self.episodes
        in_scope = int(pc.sum(episodes.column("in_scope")).as_py() or 0) if len(episodes) else 0
        exclusions: Counter[str] = Counter(
            e for e in episodes.column("exclusion").to_pylist() if e is not None
        )
        kinds: tuple[ProblemKind, ...] = ("malformed", "unknown-type", "no-patient", "invalid")
        t = self.tally
        return {
            "guideline": self.guideline,
            "engine": self.engine,
            "files": len(self.files),
            "resources": t.resources,
            "shared_resources": t.shared,
            "patients": t.patients,
            "patients_without_episode": t.without_episode,
            "episodes": self.episodes_total,
            "episodes_in_period": len(episodes),
            "in_scope": in_scope,
            "exclusions": {k: exclusions.get(k, 0) for k in sorted(exclusions)},
            "period": {
                "from": None if self.period[0] is None else self.period[0].isoformat(),
                "to": None if self.period[1] is None else self.period[1].isoformat(),
            },
            "min_cell": self.min_cell,
            "problem_counts": {k: t.problem_counts.get(k, 0) for k in kinds},
            "problems_total": sum(t.problem_counts.values()),
            # Each problem with its file and line (up to problems_kept_per_kind of a kind).
            "problems": [
                {"kind": p.kind, "file": p.file, "line": p.line, "problem": p.detail}
                for p in sorted(t.problems, key=lambda p: (p.file, p.line))
            ],
            "problems_kept_per_kind": KEPT_PER_KIND,
            "seconds": round(self.seconds, 3),
        }
