"""Sundhedsstyrelsen's NKR on non-surgical treatment of recent-onset lumbar radiculopathy."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from nkr._errors import InputError
from nkr._guideline import Guideline, load_guideline
from nkr.guidelines.lumbar_radiculopathy.case import CASE_FORMAT_VERSION, Case, parse_case
from nkr.guidelines.lumbar_radiculopathy.rules import RULES, evaluate

GUIDELINE_FILE = Path(__file__).with_name("guideline.toml")

__all__ = [
    "CASE_FORMAT_VERSION",
    "GUIDELINE_FILE",
    "Case",
    "evaluate",
    "guideline",
    "parse_case",
]


@cache
def guideline() -> Guideline:
    """The guideline's content, loaded and validated once; its rules must cover it exactly."""
    loaded = load_guideline(GUIDELINE_FILE)
    ids = set(loaded.by_id)
    if ids != set(RULES):
        raise InputError(
            f"{GUIDELINE_FILE}: recommendations and rules differ: "
            f"without a rule: {sorted(ids - set(RULES))}, rules without a recommendation: "
            f"{sorted(set(RULES) - ids)}"
        )
    return loaded
