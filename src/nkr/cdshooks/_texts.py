"""The card texts of ``messages.toml``, loaded and checked once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nkr._guideline import Lang, Localized

MESSAGES_FILE = Path(__file__).with_name("messages.toml")

# Lists of ids, not texts.
_ID_LISTS = ("override-reasons-by-topic", "assumptions-by-topic")


@dataclass(frozen=True, slots=True)
class Texts:
    texts: dict[str, Localized]
    override_reasons_by_topic: dict[str, tuple[str, ...]]
    assumptions_by_topic: dict[str, tuple[str, ...]]

    def __call__(self, key: str, lang: Lang, **params: object) -> str:
        """The text at the dotted ``key`` in ``lang``, with ``{placeholders}`` filled in."""
        text = self.texts[key](lang)
        return text.format(**params) if params else text

    def has(self, key: str) -> bool:
        return key in self.texts


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, Localized]) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if not isinstance(value, dict):
            raise ValueError(f"{MESSAGES_FILE}: {key}: expected a table with 'da' and 'en'")
        if set(value) == {"da", "en"}:
            out[key] = Localized.model_validate(value)
        else:
            _flatten(key, value, out)


@cache
def texts() -> Texts:
    raw = tomllib.loads(MESSAGES_FILE.read_text(encoding="utf-8"))
    lists = {name: raw.pop(name) for name in _ID_LISTS}
    flat: dict[str, Localized] = {}
    _flatten("", raw, flat)
    overrides = {k: tuple(v) for k, v in lists["override-reasons-by-topic"].items()}
    for topic, codes in overrides.items():
        for code in codes:
            if f"override-reasons.{code}" not in flat:
                raise ValueError(f"{MESSAGES_FILE}: {topic}: unknown override reason '{code}'")
    return Texts(
        texts=flat,
        override_reasons_by_topic=overrides,
        assumptions_by_topic={k: tuple(v) for k, v in lists["assumptions-by-topic"].items()},
    )
