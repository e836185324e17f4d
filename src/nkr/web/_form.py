"""The assessment form: what the clinician typed, turned into a guideline's patient case or
inline errors.

Only input handling lives here: the formats of the field kinds of a :class:`FormSpec`, required
fields, and the checks the spec declares. The case is validated by the guideline's
``parse_case`` and assessed by its ``evaluate``; an :class:`~nkr.InputError` they raise lands at
the field its ``location`` names.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nkr._assessment import Assessment
from nkr._errors import InputError
from nkr._guideline import Lang
from nkr._package import GuidelinePackage
from nkr.web._spec import (
    BirthOrAgeField,
    CheckboxesField,
    ChoiceField,
    DateField,
    FlagField,
    FormSpec,
    IntegerField,
    TriStateField,
)

TRISTATE = ("unknown", "yes", "no")

# ASCII digits only (re.ASCII): Python's ``\d`` and ``int`` also read Arabic-Indic, full-width
# and every other decimal digit, which no date or age in a patient record is written in.
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
_DANISH = re.compile(r"(\d{1,2})[-./](\d{1,2})[-./](\d{4})", re.ASCII)
_AGE = re.compile(r"\d{1,3}", re.ASCII)
_WHOLE = re.compile(r"-?\d{1,9}", re.ASCII)
_MAX_VALUE_CHARS = 200


@dataclass
class CaseForm:
    """The form as typed: raw values (kept for re-rendering) and error texts by field."""

    spec: FormSpec
    values: dict[str, str] = field(default_factory=dict)
    checked: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, spec: FormSpec, today: dt.date) -> CaseForm:
        values = {
            f.name: today.isoformat() for f in spec.fields if isinstance(f, DateField) and f.today
        }
        return cls(spec, values=values)

    @classmethod
    def from_items(cls, spec: FormSpec, items: Iterable[tuple[str, str]]) -> CaseForm:
        """Read the submitted fields; unknown fields are ignored, long values cut short."""
        form = cls(spec)
        single, multi = spec.single_names(), spec.multi_names()
        for name, raw in items:
            value = raw.strip()[:_MAX_VALUE_CHARS]
            if name in single:
                form.values[name] = value
            elif name in multi and value and value not in form.checked.get(name, []):
                form.checked.setdefault(name, []).append(value)
        return form

    def hidden_items(self) -> list[tuple[str, str]]:
        """The form's values as (name, value) pairs, to carry them in hidden fields."""
        items = [(n, self.values[n]) for n in self.spec.single_names() if self.values.get(n)]
        items += [(n, c) for n in self.spec.multi_names() for c in self.checked.get(n, [])]
        return items

    def is_checked(self, name: str, code: str) -> bool:
        return code in self.checked.get(name, [])

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)


def has_case(spec: FormSpec, items: Iterable[tuple[str, str]]) -> bool:
    """Whether ``items`` carry any field of the form (a case, not just a language)."""
    names = {*spec.single_names(), *spec.multi_names()}
    return any(name in names for name, _ in items)


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


class _Reader:
    """One reading of a posted form into case JSON, with its errors."""

    def __init__(self, form: CaseForm, package: GuidelinePackage, lang: Lang) -> None:
        self.form, self.package, self.lang = form, package, lang
        self.dates: dict[str, dt.date] = {}
        self.data: dict[str, Any] = {}

    def error(self, name: str, key: str, **params: object) -> None:
        self.form.error(name, self.package.texts(key, self.lang, **params))

    def date(self, name: str) -> dt.date | None:
        value = self.form.values.get(name, "")
        if not value:
            return None
        try:
            parsed = parse_date(value)
        except ValueError:
            self.error(name, "error-date-impossible", value=value)
            return None
        if parsed is None:
            self.error(name, "error-date-format", value=value)
        return parsed

    def birth_or_age(self, f: BirthOrAgeField, on: dt.date) -> None:
        birth_text, age_text = self.form.values.get(f.birth, ""), self.form.values.get(f.age, "")
        limits = {"low": f.age_min, "high": f.age_max}
        if birth_text and age_text:
            self.error(f.name, "error-age-both")
        elif not birth_text and not age_text:
            if f.required:
                self.error(f.name, "error-age-neither")
        elif birth_text:
            birth = self.date(f.birth)
            if birth is not None and birth > on:
                self.error(f.birth, "error-birth-future")
            elif birth is not None:
                self.data[f.birth] = birth.isoformat()
                self.dates[f.birth] = birth
        elif _AGE.fullmatch(age_text) is None:
            self.error(f.age, "error-age-number", **limits)
        elif not f.age_min <= int(age_text) <= f.age_max:
            self.error(f.age, "error-age-range", **limits)
        else:
            self.data[f.age] = int(age_text)

    def integer(self, f: IntegerField) -> None:
        text = self.form.values.get(f.name, "")
        if not text:
            if f.required:
                self.error(f.name, "error-required")
        elif _WHOLE.fullmatch(text) is None or not f.minimum <= int(text) <= f.maximum:
            self.error(f.name, "error-whole-number", low=f.minimum, high=f.maximum)
        else:
            self.data[f.name] = int(text)

    def codes(self, f: CheckboxesField) -> None:
        known = self.package.content.vocabulary[f.vocabulary_name]
        codes = self.form.checked.get(f.name, [])
        if any(c not in known for c in codes):
            self.error(f.name, "error-unknown-option")
        self.data[f.name] = [c for c in codes if c in known]

    def read(self, today: dt.date) -> dt.date:
        """Fill ``data`` with the case; returns the assessment date."""
        spec, values = self.form.spec, self.form.values
        on = self.date(spec.date) or today
        self.dates[spec.date] = on
        for f in spec.fields:
            if isinstance(f, DateField) and f.name != spec.date:
                if (value := self.date(f.name)) is not None:
                    self.data[f.name] = value.isoformat()
                    self.dates[f.name] = value
                elif f.required and f.name not in self.form.errors:
                    self.error(f.name, f.missing)
            elif isinstance(f, BirthOrAgeField):
                self.birth_or_age(f, on)
            elif isinstance(f, CheckboxesField):
                self.codes(f)
            elif isinstance(f, IntegerField):
                self.integer(f)
            elif isinstance(f, TriStateField):
                answer = values.get(f.name) or "unknown"
                if answer not in TRISTATE:
                    self.error(f.name, "error-unknown-option")
                elif answer != "unknown":
                    self.data[f.name] = answer == "yes"
            elif isinstance(f, FlagField):
                self.data[f.name] = values.get(f.name) == "yes"
            elif isinstance(f, ChoiceField):
                code = values.get(f.name) or f.default
                if code not in self.package.content.vocabulary[f.vocabulary_name]:
                    self.error(f.name, "error-unknown-option")
                else:
                    self.data[f.name] = code
        for check in spec.checks:
            earlier, later = self.dates.get(check.earlier), self.dates.get(check.later)
            if earlier is not None and later is not None and earlier > later:
                self.error(check.at, check.message)
        return on


def _field_of(spec: FormSpec, location: str | None) -> str:
    """The form field an error's location names (``form`` when none does)."""
    where = (location or "").removeprefix("$.").split(".")[0].split("[")[0]
    for f in spec.fields:
        if where == f.name or (isinstance(f, BirthOrAgeField) and where in (f.birth, f.age)):
            return where
    return "form"


def assess(
    form: CaseForm, package: GuidelinePackage, lang: Lang, today: dt.date
) -> Assessment | None:
    """The assessment of the case in ``form``, or None with ``form.errors`` filled in."""
    reader = _Reader(form, package, lang)
    on = reader.read(today)
    if form.errors:
        return None
    try:
        return package.evaluate(package.parse_case(reader.data), on)
    except InputError as exc:
        form.error(
            _field_of(form.spec, exc.location),
            package.texts("error-invalid", lang, detail=exc.problem),
        )
        return None
