"""Errors a user can cause, with messages that name the field and what was expected."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class InputError(ValueError):
    """Bad input from a user: a file, a case or a request, as data: where (``location``: a
    field name, ``age``, or a JSON path, ``$.prefetch.conditions.entry[0].resource.code``)
    and what is wrong (``problem``), never a patient value. Rendered as one CLI line
    (``str(exc)``: "location: problem"), an inline form error, or an OperationOutcome issue
    with ``expression`` set to the location.

    ``InputError(problem)`` alone has no location (a file name or an option may then lead the
    problem text)."""

    def __init__(self, location: str | None, problem: str | None = None) -> None:
        if problem is None:
            location, problem = None, location or ""
        self.location = location
        self.problem = problem
        super().__init__(f"{location}: {problem}" if location else problem)

    def at(self, prefix: str) -> InputError:
        """The same error, its location under ``prefix`` (a file name, a JSON path)."""
        where = f"{prefix}.{self.location}" if self.location else prefix
        return type(self)(where, self.problem)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def validation_error(exc: ValidationError) -> InputError:
    """The first problem pydantic found as an InputError: its location (``signs[0]``) and
    what is wrong (with how many more problems there are)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required field is missing"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InputError(_location(tuple(first["loc"])) or None, message)


def describe_validation_error(exc: ValidationError) -> str:
    """One line describing the first problem pydantic found (and how many more there are)."""
    return str(validation_error(exc))


def parse_model(model: type[M], data: bytes | str | dict[str, Any]) -> M:
    """``model`` from JSON text or a JSON-shaped dict (read as JSON either way: dates as
    strings); an InputError naming the field when it is not valid."""
    if isinstance(data, dict):
        data = orjson.dumps(data)
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
