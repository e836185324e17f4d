"""The assessment form: what the clinician typed, turned into a patient case or inline errors.

Only input handling lives here (formats, required fields, the case format's own limits). The
case is validated by :func:`nkr.parse_case` and assessed by :func:`nkr.evaluate`; errors they
raise are mapped to the field they name.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from annotated_types import Ge, Le

from nkr._assessment import Assessment
from nkr._errors import InputError
from nkr._guideline import Guideline, Lang
from nkr.guidelines.lumbar_radiculopathy import Case, evaluate, parse_case
from nkr.web._text import text

# Single-valued fields, in the order of the form.
SINGLE_FIELDS = (
    "assessment_date",
    "birth_date",
    "age",
    "symptom_onset",
    "mri_confirmed",
    "severe_disabling_pain",
    "spine_surgeon_assessment",
)
# Checkbox groups; their options are the codes of the guideline's vocabulary of the same name.
MULTI_FIELDS = ("signs", "red_flags", "non_surgical_treatment", "planned")
CASE_FIELDS = (*SINGLE_FIELDS, *MULTI_FIELDS)
MRI_CHOICES = ("unknown", "yes", "no")

# ASCII digits only (re.ASCII): Python's ``\d`` and ``int`` also read Arabic-Indic, full-width
# and every other decimal digit, which no date or age in a patient record is written in.
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
_DANISH = re.compile(r"(\d{1,2})[-./](\d{1,2})[-./](\d{4})", re.ASCII)
_AGE = re.compile(r"\d{1,3}", re.ASCII)
_MAX_VALUE_CHARS = 200

# Errors raised by the case format or the engine: (field, words in the message) -> message key.
_ENGINE_ERRORS = (
    ("symptom_onset", "after the assessment date", "error-onset-future"),
    ("symptom_onset", "before birth_date", "error-onset-before-birth"),
    ("birth_date", "after the assessment date", "error-birth-future"),
    ("age", "", "error-age-range"),
)


def _age_limits() -> tuple[int, int]:
    """The case format's own limits for ``age``, so the form never disagrees with it."""
    low, high = 0, 150
    for item in Case.model_fields["age"].metadata:
        if isinstance(item, Ge):
            low = int(str(item.ge))
        elif isinstance(item, Le):
            high = int(str(item.le))
    return low, high


AGE_MIN, AGE_MAX = _age_limits()


@dataclass
class CaseForm:
    """The form as typed: raw values (kept for re-rendering) and errors by field."""

    values: dict[str, str] = field(default_factory=dict)
    checked: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, today: dt.date) -> CaseForm:
        return cls(values={"assessment_date": today.isoformat()})

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, str]]) -> CaseForm:
        """Read the submitted fields; unknown fields are ignored, long values cut short."""
        form = cls()
        for name, raw in items:
            value = raw.strip()[:_MAX_VALUE_CHARS]
            if name in SINGLE_FIELDS:
                form.values[name] = value
            elif name in MULTI_FIELDS and value and value not in form.checked.get(name, []):
                form.checked.setdefault(name, []).append(value)
        return form

    def hidden_items(self) -> list[tuple[str, str]]:
        """The form's values as (name, value) pairs, to carry them in hidden fields."""
        items = [(name, self.values[name]) for name in SINGLE_FIELDS if self.values.get(name)]
        items += [(name, code) for name in MULTI_FIELDS for code in self.checked.get(name, [])]
        return items

    def is_checked(self, name: str, code: str) -> bool:
        return code in self.checked.get(name, [])

    def error(self, name: str, key: str, lang: Lang, **params: object) -> None:
        self.errors.setdefault(name, text(key, lang, **params))


def parse_date(value: str) -> dt.date | None:
    """A date typed as YYYY-MM-DD or DD-MM-YYYY (also with . or /); raises ValueError for a
    date that does not exist, returns None for text that is not a date at all."""
    if match := _ISO.fullmatch(value):
        year, month, day = (int(g) for g in match.groups())
    elif match := _DANISH.fullmatch(value):
        day, month, year = (int(g) for g in match.groups())
    else:
        return None
    return dt.date(year, month, day)


def _read_date(form: CaseForm, name: str, lang: Lang) -> dt.date | None:
    value = form.values.get(name, "")
    if not value:
        return None
    try:
        parsed = parse_date(value)
    except ValueError:
        form.error(name, "error-date-impossible", lang, value=value)
        return None
    if parsed is None:
        form.error(name, "error-date-format", lang, value=value)
    return parsed


def _case_data(form: CaseForm, g: Guideline, lang: Lang, today: dt.date) -> dict[str, Any]:
    data: dict[str, Any] = {}
    on = _read_date(form, "assessment_date", lang) or today
    data["_on"] = on
    if (onset := _read_date(form, "symptom_onset", lang)) is not None:
        data["symptom_onset"] = onset.isoformat()
    elif "symptom_onset" not in form.errors:
        form.error("symptom_onset", "error-onset-required", lang)

    birth_text, age_text = form.values.get("birth_date", ""), form.values.get("age", "")
    if birth_text and age_text:
        form.error("age_group", "error-age-both", lang)
    elif not birth_text and not age_text:
        form.error("age_group", "error-age-neither", lang)
    elif birth_text:
        birth = _read_date(form, "birth_date", lang)
        if birth is not None and birth > on:
            form.error("birth_date", "error-birth-future", lang)
        elif birth is not None:
            data["birth_date"] = birth.isoformat()
    elif _AGE.fullmatch(age_text) is None:
        form.error("age", "error-age-number", lang, low=AGE_MIN, high=AGE_MAX)
    elif not AGE_MIN <= int(age_text) <= AGE_MAX:
        form.error("age", "error-age-range", lang, low=AGE_MIN, high=AGE_MAX)
    else:
        data["age"] = int(age_text)

    for name in MULTI_FIELDS:
        codes = form.checked.get(name, [])
        unknown = [c for c in codes if c not in g.vocabulary[name]]
        if unknown:
            form.error(name, "error-unknown-option", lang)
        data[name] = [c for c in codes if c in g.vocabulary[name]]

    mri = form.values.get("mri_confirmed", "unknown") or "unknown"
    if mri not in MRI_CHOICES:
        form.error("mri_confirmed", "error-unknown-option", lang)
    elif mri != "unknown":
        data["mri_confirmed"] = mri == "yes"
    data["severe_disabling_pain"] = form.values.get("severe_disabling_pain") == "yes"
    surgeon = form.values.get("spine_surgeon_assessment", "none") or "none"
    if surgeon not in g.vocabulary["spine_surgeon_assessment"]:
        form.error("spine_surgeon_assessment", "error-unknown-option", lang)
    else:
        data["spine_surgeon_assessment"] = surgeon
    return data


def _engine_error(form: CaseForm, exc: InputError, lang: Lang) -> None:
    message = str(exc)
    name, _, detail = message.partition(": ")
    for field_name, words, key in _ENGINE_ERRORS:
        if name == field_name and words in detail:
            form.error(field_name, key, lang, low=AGE_MIN, high=AGE_MAX)
            return
    target = name if name in CASE_FIELDS else "form"
    form.error(target, "error-invalid", lang, detail=message)


def assess(form: CaseForm, g: Guideline, lang: Lang, today: dt.date) -> Assessment | None:
    """The assessment of the case in ``form``, or None with ``form.errors`` filled in."""
    data = _case_data(form, g, lang, today)
    on: dt.date = data.pop("_on")
    if form.errors:
        return None
    try:
        return evaluate(parse_case(data), g, on)
    except InputError as exc:
        _engine_error(form, exc, lang)
        return None
