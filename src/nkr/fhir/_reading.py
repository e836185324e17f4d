"""What a guideline's reading of a FHIR record gives: its case (or None), notes on how the
record was read, and the draft orders it recognised. Generic: the guideline fills it."""

from __future__ import annotations

from typing import Any

import msgspec

from nkr._assessment import Term
from nkr._guideline import Guideline, Lang
from nkr._texts import Texts


class Note(msgspec.Struct, frozen=True, gc=False):
    """A note on how the record was read (a text key of the guideline's texts, with its
    parameters: plain values, or Terms of the case vocabulary), rendered per language."""

    key: str
    params: tuple[tuple[str, object], ...] = ()

    def text(self, texts: Texts, lang: Lang, content: Guideline) -> str:
        """The note in ``lang``; Term parameters are rendered by the guideline ``content``'s
        vocabulary labels."""
        values = {
            name: content.label(v.vocabulary, v.code, lang) if isinstance(v, Term) else v
            for name, v in self.params
        }
        return texts(self.key, lang, **values)


class DraftOrder(msgspec.Struct, frozen=True, gc=False):
    """A draft order the guideline recognised: what it concerns (a term of its case
    vocabulary, as a rule's outcome names it) and the resource it is."""

    concerns: Term
    resource_type: str
    resource_id: str | None

    @property
    def reference(self) -> str | None:
        return None if not self.resource_id else f"{self.resource_type}/{self.resource_id}"


class FhirReading(msgspec.Struct, frozen=True, gc=False):
    """The case read from a patient's record. ``case`` is None when the record gives none
    (no qualifying diagnosis, no birth date: a note says why); the draft orders are read even
    then."""

    case: Any | None
    notes: tuple[Note, ...]
    orders: tuple[DraftOrder, ...]
