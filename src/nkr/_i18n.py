"""Interface texts: files of ``key = { da = "…", en = "…" }`` entries, loaded and checked once.

``messages.toml`` beside this module holds the texts shared by every interface; an interface
or guideline with texts of its own loads its file with :func:`load_messages`.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from nkr._errors import InputError, describe_validation_error
from nkr._guideline import Lang, Localized

_MESSAGES_FILE = Path(__file__).with_name("messages.toml")
_MESSAGES = TypeAdapter(dict[str, Localized])


def load_messages(path: Path) -> dict[str, Localized]:
    """Every text of ``path``, in every language; errors name the file and the key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return _MESSAGES.validate_python(raw)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise InputError(f"{path}: {describe_validation_error(exc)}") from None


@cache
def _messages() -> dict[str, Localized]:
    return load_messages(_MESSAGES_FILE)


def t(key: str, lang: Lang, **params: object) -> str:
    """The interface text ``key`` in ``lang``, with ``{placeholders}`` filled in."""
    text = _messages()[key](lang)
    return text.format(**params) if params else text
