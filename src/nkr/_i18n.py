"""Interface texts shared by every guideline, loaded once from ``messages.toml``."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from pydantic import TypeAdapter

from nkr._guideline import Lang, Localized

_MESSAGES_FILE = Path(__file__).with_name("messages.toml")


@cache
def _messages() -> dict[str, Localized]:
    raw = tomllib.loads(_MESSAGES_FILE.read_text(encoding="utf-8"))
    return TypeAdapter(dict[str, Localized]).validate_python(raw)


def t(key: str, lang: Lang, **params: object) -> str:
    """The interface text ``key`` in ``lang``, with ``{placeholders}`` filled in."""
    text = _messages()[key](lang)
    return text.format(**params) if params else text
