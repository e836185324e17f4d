"""Interface texts of the web app, loaded once from ``messages.toml`` beside this module.

Keys not found there fall back to the interface texts shared by every interface
(``nkr/messages.toml``), so a status label or "version" is written once.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from nkr._guideline import LANGS, Lang, Localized
from nkr._i18n import load_messages, t

_MESSAGES_FILE = Path(__file__).with_name("messages.toml")


@cache
def messages() -> dict[str, Localized]:
    """The web app's own texts, validated: every key in every language."""
    return load_messages(_MESSAGES_FILE)


def text(key: str, lang: Lang, **params: object) -> str:
    """The interface text ``key`` in ``lang`` with ``{placeholders}`` filled in."""
    localized = messages().get(key)
    if localized is None:
        return t(key, lang, **params)
    value = localized(lang)
    return value.format(**params) if params else value


def long_date(value: dt.date, lang: Lang) -> str:
    """A date as written in running text: '22. marts 2023' / '22 March 2023'."""
    month = text("months", lang).split(",")[value.month - 1].strip()
    if lang == "da":
        return f"{value.day}. {month} {value.year}"
    return f"{value.day} {month} {value.year}"


def parse_lang(value: str | None) -> Lang:
    """The page language from a ``lang`` parameter; Danish unless English is asked for."""
    for lang in LANGS:
        if value == lang:
            return lang
    return "da"
