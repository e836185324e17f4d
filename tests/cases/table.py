"""The table of cases as data: ``lumbar.toml`` and ``fictional.toml`` beside this module (one
file per guideline; README.md there says what each field means), and the one comparison of
what an interface showed with what the table expects."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).parent
TABLES: Final = (HERE / "lumbar.toml", HERE / "fictional.toml")


def _json_ready(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class TableCase:
    """One row: a guideline's patient case on a date, and what every interface must show."""

    guideline: str
    name: str
    date: dt.date
    case: Mapping[str, Any]
    in_scope: bool
    # The status of each recommendation: those named, and ``others`` for the rest.
    statuses: Mapping[str, str]
    others: str
    # Each deadline as the assessment's JSON gives it (its text in Danish).
    deadlines: tuple[Mapping[str, str], ...]
    notices: tuple[Mapping[str, Any], ...]
    # Text that no rendering of the assessment may contain (a date that would read as a
    # deadline that applies).
    absent: tuple[str, ...] = ()
    # Per CDS hook, the cards as "topic:indicator", in order (None: not in the table).
    cards: Mapping[str, tuple[str, ...]] | None = None

    @property
    def id(self) -> str:
        return f"{self.guideline}: {self.name}"

    def expected_statuses(self, rec_ids: list[str]) -> dict[str, str]:
        unknown = set(self.statuses) - set(rec_ids)
        assert not unknown, f"{self.id}: the table names unknown recommendations {unknown}"
        return {rec_id: self.statuses.get(rec_id, self.others) for rec_id in rec_ids}


def load(path: Path) -> list[TableCase]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    rows = []
    for row in raw["cases"]:
        row = _json_ready(row)
        cards = row.pop("cards", None)
        rows.append(
            TableCase(
                guideline=raw["guideline"],
                name=row.pop("name"),
                date=dt.date.fromisoformat(row.pop("date", raw["date"].isoformat())),
                case=row.pop("case"),
                in_scope=row.pop("in_scope"),
                statuses=row.pop("statuses"),
                others=row.pop("others"),
                deadlines=tuple(row.pop("deadlines")),
                notices=tuple(row.pop("notices")),
                absent=tuple(row.pop("absent", ())),
                cards=None if cards is None else {k: tuple(v) for k, v in cards.items()},
            )
        )
        assert not row, f"{path}: {rows[-1].name}: unknown fields {sorted(row)}"
    return rows


CASES: Final = [case for path in TABLES for case in load(path)]


def form_fields(case: TableCase) -> dict[str, str | list[str]]:
    """The case as the form posts it: its fields by name (lists as repeated fields, yes/no
    for booleans) and the assessment date."""

    def text(value: Any) -> str:
        return "yes" if value is True else "no" if value is False else str(value)

    fields: dict[str, str | list[str]] = {"assessment_date": case.date.isoformat()}
    for name, value in case.case.items():
        fields[name] = [text(v) for v in value] if isinstance(value, list) else text(value)
    return fields


@dataclass
class Observed:
    """What one interface showed for a case; None where the interface does not show it."""

    in_scope: bool | None = None
    statuses: dict[str, str] | None = None
    deadlines: list[dict[str, str]] | None = None
    notices: list[dict[str, Any]] | None = None
    # Every text the interface rendered, for the table's ``absent``.
    rendered: str | None = None
    cards: dict[str, tuple[str, ...]] | None = None
    # The recommendations that apply now (as $apply's RequestGroup gives them) and the status
    # of each: applies, caution, due or overdue.
    applying: dict[str, str] | None = None


# The statuses of a recommendation that applies now (in $apply's RequestGroup).
APPLY_NOW: Final = ("applies", "caution", "due", "overdue")


def check(case: TableCase, seen: Observed, rec_ids: list[str]) -> None:
    """Assert that ``seen`` shows what the table expects for ``case``."""
    if seen.in_scope is not None:
        assert seen.in_scope is case.in_scope
    if seen.statuses is not None:
        assert seen.statuses == case.expected_statuses(rec_ids)
    if seen.deadlines is not None:
        assert seen.deadlines == [dict(d) for d in case.deadlines]
    if seen.notices is not None:
        assert seen.notices == [dict(n) for n in case.notices]
    if seen.rendered is not None:
        for text in case.absent:
            assert text not in seen.rendered
        for deadline in case.deadlines:
            # Its wording, in Danish; and its date, unless it says what has happened.
            assert deadline["text"] in seen.rendered
            assert deadline["kind"] == "done" or deadline["date"] in seen.rendered
    if seen.cards is not None:
        assert case.cards is not None, f"{case.id}: no cards in the table"
        assert seen.cards == dict(case.cards)
    if seen.applying is not None:
        expected = case.expected_statuses(rec_ids)
        assert seen.applying == {r: s for r, s in expected.items() if s in APPLY_NOW}
