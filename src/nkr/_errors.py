"""Errors a user can cause, with messages that name the field and what was expected."""

from __future__ import annotations

from pydantic import ValidationError


class InputError(ValueError):
    """Bad input from a user: a file, a case or a request. The message is one line."""


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def describe_validation_error(exc: ValidationError) -> str:
    """One line describing the first problem pydantic found (and how many more there are)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = _location(tuple(first["loc"]))
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required field is missing"
    text = f"{where}: {message}" if where else message
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text
