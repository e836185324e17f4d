"""Interface texts: one loader and one way to look a text up, for the texts every interface
shares and for each guideline's own.

A text file is TOML: ``key = { da = "…", en = "…" }`` entries, possibly in tables, whose keys
are then dotted (``[card]`` + ``tag = {…}`` is ``card.tag``). A :class:`Texts` looks a key up
in its own entries, then in the texts it falls back on: a guideline's texts fall back on the
generic ones, so "version" or a status label is written once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from nkr._errors import InputError
from nkr._guideline import Lang, Localized

# The texts shared by every interface and every guideline.
GENERIC_FILES: Final = (
    Path(__file__).with_name("messages.toml"),
    Path(__file__).parent / "web" / "messages.toml",
    Path(__file__).parent / "cdshooks" / "messages.toml",
    Path(__file__).parent / "audit" / "report.toml",
)


class Texts:
    """Texts by dotted key in every language, with ``{placeholders}``, and lists of ids
    (tables of plain string lists, such as the override reasons of each card topic)."""

    __slots__ = ("_entries", "_fallback", "_lists")

    def __init__(
        self,
        entries: Mapping[str, Localized],
        lists: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
        fallback: Texts | None = None,
    ) -> None:
        self._entries = dict(entries)
        self._lists = dict(lists or {})
        self._fallback = fallback

    def get(self, key: str) -> Localized | None:
        found = self._entries.get(key)
        if found is None and self._fallback is not None:
            return self._fallback.get(key)
        return found

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def __call__(self, key: str, lang: Lang, **params: object) -> str:
        """The text ``key`` in ``lang``, with ``{placeholders}`` filled in; KeyError when no
        file has it (a programming error: every key is checked by the tests)."""
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        text = found(lang)
        return text.format(**params) if params else text

    def lists(self, name: str) -> Mapping[str, tuple[str, ...]]:
        """The id lists of table ``name`` (``{}`` when there is none here or below)."""
        found = self._lists.get(name)
        if found is None and self._fallback is not None:
            return self._fallback.lists(name)
        return found or {}

    def keys(self) -> set[str]:
        own = set(self._entries)
        return own | self._fallback.keys() if self._fallback is not None else own


def _flatten(
    path: Path,
    prefix: str,
    table: Mapping[str, Any],
    out: dict[str, Localized],
    lists: dict[str, dict[str, tuple[str, ...]]],
) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict) and set(value) & {"da", "en"}:
            if set(value) != {"da", "en"}:
                raise InputError(f"{path}: {key}: expected texts in 'da' and 'en', only")
            try:
                out[key] = Localized.model_validate(value)
            except ValidationError:
                raise InputError(f"{path}: {key}: expected texts in 'da' and 'en'") from None
        elif isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
            if not all(isinstance(i, str) for v in value.values() for i in v):
                raise InputError(f"{path}: {key}: expected lists of ids")
            lists[key] = {k: tuple(v) for k, v in value.items()}
        elif isinstance(value, dict):
            _flatten(path, key, value, out, lists)
        else:
            raise InputError(f"{path}: {key}: expected a table with 'da' and 'en'")


def load_texts(*paths: Path, fallback: Texts | None = None) -> Texts:
    """The texts of ``paths`` (a key given twice is an error naming both files), falling
    back on ``fallback``."""
    entries: dict[str, Localized] = {}
    lists: dict[str, dict[str, tuple[str, ...]]] = {}
    where: dict[str, Path] = {}
    for path in paths:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML: {exc}") from None
        own: dict[str, Localized] = {}
        _flatten(path, "", raw, own, lists)
        for key in own:
            if key in where:
                raise InputError(f"{path}: {key}: already given in {where[key]}")
            where[key] = path
        entries |= own
    return Texts(entries, lists, fallback)


@cache
def generic_texts() -> Texts:
    """The texts every interface and guideline shares (loaded once)."""
    return load_texts(*GENERIC_FILES)


def t(key: str, lang: Lang, **params: object) -> str:
    """A generic interface text (see :func:`generic_texts`)."""
    return generic_texts()(key, lang, **params)
