"""Clinical vignettes, written with their expected outcome first: where the spine-surgeon date
is shown, and how it is worded.

The date means "assessment by a spine surgeon by this day" only in scope or when that
assessment is due or overdue; anywhere else (a red flag, a 16-year-old, no sign of root
involvement) a date would read as a deadline that applies, so none is given. Each vignette is
checked in the engine, in ``nkr evaluate --json`` and in ``nkr evaluate --format summary``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import nkr
from nkr._cli import main

ON = dt.date(2026, 3, 2)
G = nkr.guideline()


def onset(days_ago: int) -> str:
    return (ON - dt.timedelta(days=days_ago)).isoformat()


def deadline(days_ago: int) -> str:
    """Onset + 84 days: the last day of the 12 weeks."""
    return (ON - dt.timedelta(days=days_ago) + dt.timedelta(days=84)).isoformat()


SEVERE_TREATED: dict[str, Any] = {
    "severe_disabling_pain": True,
    "non_surgical_treatment": ["supervised_exercise"],
}


@dataclass(frozen=True)
class Vignette:
    name: str
    case: dict[str, Any]
    in_scope: bool
    surgeon: str  # the spine-surgeon recommendation's status
    due: str | None  # the spine-surgeon date shown, or None
    wording: str | None  # which wording: "if" (the condition), "due", "overdue", or None
    extra: dict[str, Any] = field(default_factory=dict)


def case(days_ago: int = 20, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "age": 45,
        "symptom_onset": onset(days_ago),
        "signs": ["radicular_leg_pain"],
    }
    data.update(fields)
    return data


VIGNETTES = [
    Vignette(
        "GP, week 3, leg pain, no severe pain", case(20), True, "not-applicable", deadline(20), "if"
    ),
    Vignette("physio, week 1, day 0", case(0), True, "not-applicable", deadline(0), "if"),
    Vignette(
        "severe pain but nothing tried yet",
        case(30, severe_disabling_pain=True),
        True,
        "not-applicable",
        deadline(30),
        "if",
    ),
    Vignette(
        "severe pain despite exercise, week 6",
        case(40, **SEVERE_TREATED),
        True,
        "due",
        deadline(40),
        "due",
    ),
    Vignette(
        "severe pain despite treatment, day 84 (last day)",
        case(84, **SEVERE_TREATED),
        True,
        "due",
        deadline(84),
        "due",
    ),
    Vignette(
        "severe pain despite treatment, day 85: overdue past 12 weeks",
        case(85, **SEVERE_TREATED),
        False,
        "overdue",
        deadline(85),
        "overdue",
    ),
    Vignette(
        "severe pain despite treatment, week 20: overdue",
        case(140, **SEVERE_TREATED),
        False,
        "overdue",
        deadline(140),
        "overdue",
    ),
    Vignette(
        "week 15, no severe pain: out of scope, no date",
        case(100),
        False,
        "not-applicable",
        None,
        None,
    ),
    Vignette(
        "week 15, severe pain, nothing tried: no date",
        case(100, severe_disabling_pain=True),
        False,
        "not-applicable",
        None,
        None,
    ),
    Vignette(
        "acute cauda equina: no date beside the safety notice",
        case(20, red_flags=["cauda_equina"], **SEVERE_TREATED),
        False,
        "not-applicable",
        None,
        None,
    ),
    Vignette(
        "suspected fracture: no date",
        case(10, red_flags=["suspected_fracture"]),
        False,
        "not-applicable",
        None,
        None,
    ),
    Vignette(
        "16-year-old with severe pain despite treatment: no date",
        case(30, age=16, **SEVERE_TREATED),
        False,
        "not-applicable",
        None,
        None,
    ),
    Vignette(
        "no sign of root involvement: no date",
        case(30, signs=[]),
        False,
        "not-applicable",
        None,
        None,
    ),
    Vignette(
        "referred, in scope: says so, never the condition still pending",
        case(40, spine_surgeon_assessment="referred", **SEVERE_TREATED),
        True,
        "done",
        deadline(40),
        "referred",
    ),
    Vignette(
        "assessment done, week 7: says so",
        case(45, spine_surgeon_assessment="done", **SEVERE_TREATED),
        True,
        "done",
        deadline(45),
        "done",
    ),
    Vignette(
        "assessment done past 12 weeks: no date",
        case(100, spine_surgeon_assessment="done", **SEVERE_TREATED),
        False,
        "done",
        None,
        None,
    ),
    Vignette(
        "referral planned now, week 8",
        case(55, planned=["spine_surgeon_referral"], **SEVERE_TREATED),
        True,
        "done",
        deadline(55),
        "planned",
    ),
    Vignette(
        "turns 18 today, severe pain despite treatment: due",
        case(30, age=None, birth_date="2008-03-02", **SEVERE_TREATED),
        True,
        "due",
        deadline(30),
        "due",
    ),
    Vignette(
        "turns 18 tomorrow: out of scope, no date",
        case(30, age=None, birth_date="2008-03-03", **SEVERE_TREATED),
        False,
        "not-applicable",
        None,
        None,
    ),
    Vignette(
        "MRI planned, week 4, no severe pain: caution and the condition",
        case(25, planned=["mri"]),
        True,
        "not-applicable",
        deadline(25),
        "if",
        {"mri": "caution"},
    ),
]


def _case_json(v: Vignette) -> dict[str, Any]:
    return {k: value for k, value in v.case.items() if value is not None}


WORDING_KEYS = {
    "referred": "surgeon-referred",
    "done": "surgeon-done",
    "planned": "surgeon-referral-planned",
    "if": "surgeon-deadline-if",
    "due": "surgeon-deadline-due",
    "overdue": "surgeon-deadline-overdue",
}


@pytest.mark.parametrize("v", VIGNETTES, ids=lambda v: v.name)
def test_engine(v: Vignette) -> None:
    a = nkr.evaluate(nkr.parse_case(_case_json(v)), G, ON)
    assert a.in_scope is v.in_scope
    assert a.result("spine-surgeon-assessment").status.value == v.surgeon
    assert (a.spine_surgeon_due.isoformat() if a.spine_surgeon_due else None) == v.due
    key = a.spine_surgeon_deadline.key if a.spine_surgeon_deadline else None
    assert key == (WORDING_KEYS[v.wording] if v.wording else None)
    for rec_id, status in v.extra.items():
        assert a.result(rec_id).status.value == status


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("v", VIGNETTES, ids=lambda v: v.name)
def test_cli_json_and_summary(
    v: Vignette, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(_case_json(v)), encoding="utf-8")
    out = json.loads(_cli(["evaluate", str(path), "--date", ON.isoformat(), "--json"], capsys))
    assert out["spine_surgeon_due"] == v.due
    summary = {
        lang: _cli(
            [
                "evaluate",
                str(path),
                "--date",
                ON.isoformat(),
                "--format",
                "summary",
                "--lang",
                lang,
            ],
            capsys,
        )
        for lang in nkr.LANGS
    }
    text_output = _cli(["evaluate", str(path), "--date", ON.isoformat()], capsys)
    if v.due is None:
        assert out["spine_surgeon_due_text"] is None
        for text in [*summary.values(), text_output]:
            assert deadline(_days(v)) not in text
        return
    text = out["spine_surgeon_due_text"]
    if v.wording in ("referred", "done", "planned"):
        # What has happened, never the condition as if the assessment were still pending.
        assert text == G.message(WORDING_KEYS[v.wording], "da")
        assert text in summary["da"]
        assert G.message(WORDING_KEYS[v.wording], "en") in summary["en"]
        return
    assert v.due in text_output
    assert v.due in text
    if v.wording == "if":
        # The condition it is, never a deadline that already applies.
        assert text.startswith("Hvis svære og funktionshæmmende smerter varer ved")
    elif v.wording == "due":
        assert "bør ske senest" in text
    else:
        assert "overskredet" in text
    assert v.due in summary["da"]
    assert v.due in summary["en"]


def _days(v: Vignette) -> int:
    return (ON - dt.date.fromisoformat(v.case["symptom_onset"])).days


def test_there_are_at_least_fifteen_vignettes_on_the_surgeon_date() -> None:
    assert len(VIGNETTES) >= 15
    shown = {v.wording for v in VIGNETTES}
    assert shown == {"if", "due", "overdue", "referred", "done", "planned", None}
