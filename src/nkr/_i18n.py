"""Moved to :mod:`nkr._texts` (issue 10); kept only until its last importers (cdshooks/_cards,
web/_text, fhir/_mapping) move to ``nkr._texts``. Delete it then."""

from pathlib import Path

from nkr._guideline import Localized
from nkr._texts import load_texts, t

__all__ = ["load_messages", "t"]


def load_messages(path: Path) -> dict[str, Localized]:
    texts = load_texts(path)
    keys = texts.keys()
    return {key: found for key in keys if (found := texts.get(key)) is not None}
