"""A guideline's indicators from its data file (``indicators.toml``): the words of each, and
what the package's own code reads beside them (its keys are the package's)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import ValidationError

from nkr._errors import InputError, validation_error
from nkr._guideline import Guideline, Localized
from nkr.audit._model import Better, Indicator

_TEXTS: Final = ("title", "numerator", "denominator", "exclusions")


def load_indicators(
    path: Path, content: Guideline, extra: tuple[str, ...] = ()
) -> tuple[tuple[Indicator, Mapping[str, Any]], ...]:
    """Each ``[[indicators]]`` table of ``path`` as an :class:`Indicator`, with the keys of
    ``extra`` that the package reads itself. Raises InputError naming the file and field: an
    unknown key, an id used twice, a recommendation the guideline does not have."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path.name}: cannot read: {exc}") from None
    rows = raw.get("indicators")
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{path.name}: indicators", "expected at least one [[indicators]]")
    found: list[tuple[Indicator, Mapping[str, Any]]] = []
    for i, row in enumerate(rows):
        where = f"{path.name}: indicators[{i}]"
        unknown = set(row) - {"id", "recommendation", "better", *_TEXTS, *extra}
        if unknown:
            raise InputError(f"{where}.{sorted(unknown)[0]}", "unknown field")
        for name in ("id", "recommendation", "better", *_TEXTS):
            if name not in row:
                raise InputError(f"{where}.{name}", "required field is missing")
        if row["better"] not in get_args(Better):
            raise InputError(f"{where}.better", "expected 'higher' or 'lower'")
        if row["recommendation"] not in content.by_id:
            raise InputError(f"{where}.recommendation", "not a recommendation of the guideline")
        if any(row["id"] == ind.id for ind, _ in found):
            raise InputError(f"{where}.id", "used twice")
        texts: dict[str, Localized] = {}
        for name in _TEXTS:
            try:
                texts[name] = Localized.model_validate(row[name])
            except ValidationError as exc:
                raise validation_error(exc).at(f"{where}.{name}") from None
        indicator = Indicator(
            id=str(row["id"]),
            recommendation=str(row["recommendation"]),
            better=row["better"],
            **texts,
        )
        found.append((indicator, {k: row[k] for k in extra if k in row}))
    return tuple(found)
