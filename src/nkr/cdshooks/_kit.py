"""The card frame: what a guideline's card rules build CDS Hooks cards with.

A guideline decides which cards an assessment gives and what they say about the patient
(:meth:`nkr._package.GuidelinePackage.cards`); this module gives every card the same frame:
its uuid, source, links, override reasons, footer and the guideline's exact wording, and keeps
the record of issued cards that feedback is checked against. Nothing here knows a guideline.

Texts come from the guideline's texts (which fall back on the generic ones in
``messages.toml``); its lists ``override-reasons-by-topic`` and ``assumptions-by-topic`` say
which override reasons and which of the software's assumptions each card topic shows. A topic
whose texts have a ``<topic>.source-label`` rests on something other than the guideline: its
source names that, with no link to the guideline.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nkr._assessment import Assessment, Reason, RecStatus, Term
from nkr._guideline import Guideline, Lang
from nkr._render import grade_in_words
from nkr._texts import t

if TYPE_CHECKING:
    from nkr._package import GuidelinePackage
    from nkr.fhir._reading import DraftOrder, FhirReading

# nkr's own code systems for card topics and override reasons: local URNs, as for the value sets.
TOPIC_SYSTEM = "urn:nkr:cds-card-topic"
OVERRIDE_REASON_SYSTEM = "urn:nkr:cds-override-reason"

Card = dict[str, Any]

_MD_SPECIAL = re.compile(r"[\\`*_\[\]<>#|]")


def _backslashed(match: re.Match[str]) -> str:
    return "\\" + match[0]


def md_escape(text: str) -> str:
    """Escape text that comes from the request (it may hold any characters) for markdown."""
    # A function, not a template: re would parse the template again on every call.
    return _MD_SPECIAL.sub(_backslashed, text)


# The first digit of a UUID's fourth group is 8, 9, a or b (the RFC 9562 variant).
_VARIANT_DIGIT = "89ab" * 4


class Uuids:
    """Version 7 UUIDs (RFC 9562) for the cards of one call: 48 bits of Unix time in
    milliseconds, then 74 random bits. The time is read once, and random bytes are drawn for
    a few UUIDs at a time (one system call rather than one per UUID).

    Card UUIDs are time-ordered so that the feedback store's index of issued cards grows at
    its end: random UUIDs land all over it, and recording a card gets dearer as it grows."""

    __slots__ = ("head", "pool")

    def __init__(self) -> None:
        stamp = f"{time.time_ns() // 1_000_000:012x}"
        self.head = f"{stamp[:8]}-{stamp[8:]}-7"
        self.pool = ""

    def next(self) -> str:
        if len(self.pool) < 19:
            self.pool = os.urandom(40).hex()  # 80 hex digits: four UUIDs' worth
        r, self.pool = self.pool[:19], self.pool[19:]
        return f"{self.head}{r[:3]}-{_VARIANT_DIGIT[int(r[3], 16)]}{r[4:7]}-{r[7:19]}"


def fit(summary: str) -> str:
    """A summary as the spec allows it: fewer than 140 characters (texts are written to fit;
    this is a guard)."""
    return summary if len(summary) < 140 else summary[:138] + "…"


@dataclass(slots=True)
class Frame:
    """Every text of one guideline's cards that depends only on the guideline and the
    language, rendered once: a call fills in only what is about the patient. The per-topic
    and per-recommendation parts are rendered the first time a card needs them."""

    package: GuidelinePackage
    guideline: Guideline
    lang: Lang
    # Every text of the guideline's texts (with the generic ones) in the language, by key.
    text: dict[str, str]
    tag: str
    why: str
    notes_heading: str
    link_guide: str
    link_recommendation: str
    source_label: str
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    override_reasons: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    footers: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, str] = field(default_factory=dict)
    lists: dict[tuple[tuple[str, RecStatus], ...], tuple[str, str]] = field(default_factory=dict)

    def source(self, topic: str) -> dict[str, Any]:
        found = self.sources.get(topic)
        if found is None:
            found = self.sources[topic] = self._source(topic)
        return found

    def _source(self, topic: str) -> dict[str, Any]:
        display = self.package.topic_label(topic, self.lang) or topic
        coding = {"system": TOPIC_SYSTEM, "code": topic, "display": display}
        own = self.text.get(f"{topic}.source-label")
        if own is not None:
            # Not the guideline's: no url (the spec allows it), none of the guideline's pages.
            return {"label": own, "topic": coding}
        return {"label": self.source_label, "url": self.guideline.source.url, "topic": coding}

    def reasons(self, topic: str) -> list[dict[str, str]]:
        found = self.override_reasons.get(topic)
        if found is None:
            codes = self.package.texts.lists("override-reasons-by-topic").get(topic, ())
            found = self.override_reasons[topic] = [
                {
                    "system": OVERRIDE_REASON_SYSTEM,
                    "code": code,
                    "display": self.text[f"override-reasons.{code}"],
                }
                for code in codes
            ]
        return found

    def footer(self, topic: str) -> str:
        """The software's assumptions for this topic and the guideline's status."""
        found = self.footers.get(topic)
        if found is None:
            g, lang = self.guideline, self.lang
            wanted = self.package.texts.lists("assumptions-by-topic").get(topic, ())
            parts: list[str] = []
            chosen = [a for a in g.assumptions if a.id in wanted]
            if chosen:
                items = "\n".join(f"- {a.text(lang)}" for a in chosen)
                parts.append(f"**{self.text['card.assumptions']}:**\n\n{items}")
            parts.append(f"**{self.text['card.status']}:** {g.status.text(lang)}")
            found = self.footers[topic] = "\n\n".join(parts)
        return found

    def block(self, rec_id: str) -> str:
        """The recommendation as a card quotes it: its short name, grade, exact wording."""
        found = self.blocks.get(rec_id)
        if found is None:
            g, lang = self.guideline, self.lang
            rec = g.recommendation(rec_id)
            # Separators, not brackets: the grade in words may hold brackets of its own.
            found = self.blocks[rec_id] = (
                f"**{rec.label(lang)}** · **{rec.symbols}** · {grade_in_words(g, rec.id, lang)}"
                f"\n\n> {rec.wording(lang)}\n>\n> — *{self.text['card.quote-attribution']}*"
            )
        return found

    def recommendation_list(self, listed: tuple[tuple[str, RecStatus], ...]) -> tuple[str, str]:
        found = self.lists.get(listed)
        if found is None:
            g, lang = self.guideline, self.lang
            lines = []
            for rec_id, status in listed:
                rec = g.recommendation(rec_id)
                line = f"- **{rec.symbols}** {rec.wording(lang)}"
                if status is not RecStatus.APPLIES:
                    line += f" *({t(f'status-{status}', lang)})*"
                lines.append(line)
            # A dash, not brackets: the English attribution holds brackets of its own.
            heading = f"**{self.text['card.applying']}** – *{self.text['card.quote-attribution']}*:"
            counts = Counter(g.recommendation(rec_id).strength_symbol for rec_id, _ in listed)
            symbols = ", ".join(f"{symbol}×{n}" for symbol, n in counts.items())
            found = self.lists[listed] = (heading + "\n\n" + "\n".join(lines), symbols)
        return found


def _new_frame(package: GuidelinePackage, lang: Lang) -> Frame:
    g, texts = package.content, package.texts
    keys = texts.keys()
    text = {key: texts(key, lang) for key in keys}
    in_force = g.status.in_force
    status = text["card.status-in-force" if in_force else "card.status-not-in-force"]
    return Frame(
        package=package,
        guideline=g,
        lang=lang,
        text=text,
        tag=text["card.tag-in-force" if in_force else "card.tag-not-in-force"],
        why=f"**{text['card.why']}:** ",
        notes_heading=f"**{text['card.data-notes']}:**\n\n",
        link_guide=text["card.link-guide"],
        link_recommendation=text["card.link-recommendation"],
        source_label=texts(
            "card.source-label",
            lang,
            publisher=g.publisher,
            short_title=g.short_title(lang),
            version=g.version,
            status=status,
        ),
    )


# By package identity and language; the package is kept (in the value) so that its id is
# never reused. Packages live as long as the process.
_FRAMES: dict[tuple[int, Lang], tuple[object, Frame]] = {}


def frame(package: GuidelinePackage, lang: Lang) -> Frame:
    """The card frame of ``package`` in ``lang`` (built once)."""
    hit = _FRAMES.get((id(package), lang))
    if hit is None:
        hit = _FRAMES[(id(package), lang)] = (package, _new_frame(package, lang))
    return hit[1]


class CardKit:
    """What a guideline's card rules use to add the cards of one hook call: texts in the
    call's language, the frame's parts, the patient's references, the draft orders of the
    reading, and :meth:`add`. Cheap to make: everything shared lives in the cached
    :class:`Frame`."""

    __slots__ = (
        "_notes",
        "_query",
        "assessment",
        "base_url",
        "cards",
        "encounter",
        "frame",
        "issued",
        "lang",
        "package",
        "patient",
        "reading",
        "uuids",
    )

    def __init__(
        self,
        package: GuidelinePackage,
        assessment: Assessment,
        reading: FhirReading,
        *,
        lang: Lang,
        base_url: str,
        patient: str,
        encounter: str | None,
    ) -> None:
        self.package = package
        self.assessment = assessment
        self.reading = reading
        self.lang = lang
        self.frame = frame(package, lang)
        self.base_url = base_url
        # Danish is the pages' default.
        self._query = "?lang=en" if lang == "en" else ""
        self.patient = patient
        self.encounter = encounter
        self.cards: list[Card] = []
        # (card uuid, topic, its suggestions' uuids separated by spaces), for feedback.
        self.issued: list[tuple[str, str, str]] = []
        self._notes: str | None = None
        self.uuids = Uuids()

    # -- texts -----------------------------------------------------------------------------

    def text(self, key: str, **params: object) -> str:
        """The guideline's text ``key`` in the call's language."""
        text = self.frame.text[key]
        return text.format(**params) if params else text

    def has(self, key: str) -> bool:
        return key in self.frame.text

    @property
    def tag(self) -> str:
        """The short source tag summaries end with (whether the guideline is in force)."""
        return self.frame.tag

    def reason(self, reason: Reason) -> str:
        return reason.text(self.frame.guideline, self.lang)

    def label(self, term: Term) -> str:
        return self.frame.guideline.label(term.vocabulary, term.code, self.lang)

    def why(self, reason: Reason) -> str:
        """The "why this card" line with the engine's reason."""
        return self.frame.why + reason.text(self.frame.guideline, self.lang)

    def block(self, rec_id: str) -> str:
        """The recommendation quoted: short name, strength symbols, grade, exact wording."""
        return self.frame.block(rec_id)

    def footer(self, topic: str) -> str:
        return self.frame.footer(topic)

    def recommendation_list(self, listed: tuple[tuple[str, RecStatus], ...]) -> tuple[str, str]:
        """The recommendations ``listed`` with their exact wording (and status where it is not
        "applies") under a heading; and their strength symbols counted ("↑×5, √×2")."""
        return self.frame.recommendation_list(listed)

    @property
    def notes(self) -> str:
        """The notes on how the record was read, the same on every card of the call (rendered
        once; they may hold any characters from the request, so they are escaped)."""
        if self._notes is None:
            notes = self.reading.notes
            if notes:
                package, lang = self.package, self.lang
                texts, content = package.texts, package.content
                self._notes = self.frame.notes_heading + "\n".join(
                    [f"- {md_escape(n.text(texts, lang, content))}" for n in notes]
                )
            else:
                self._notes = ""
        return self._notes

    @staticmethod
    def detail(*parts: str) -> str:
        """A card's detail: its non-empty parts, as paragraphs."""
        return "\n\n".join([p for p in parts if p])

    # -- orders and suggestions ------------------------------------------------------------

    def drafts(self, concerns: Term) -> list[DraftOrder]:
        """The draft orders of the call that are about ``concerns`` (a rule's outcome)."""
        # By the code first: comparing the Terms whole costs more, on every order of a call.
        code, vocabulary = concerns.code, concerns.vocabulary
        return [
            d
            for d in self.reading.orders
            if d.concerns.code == code and d.concerns.vocabulary == vocabulary
        ]

    def suggestion(
        self, label: str, actions: list[dict[str, Any]], *, recommended: bool
    ) -> dict[str, Any]:
        return {
            "label": label,
            "uuid": self.uuids.next(),
            "isRecommended": recommended,
            "actions": actions,
        }

    @staticmethod
    def create(description: str, resource: dict[str, Any]) -> dict[str, Any]:
        return {"type": "create", "description": description, "resource": resource}

    @staticmethod
    def delete(description: str, reference: str) -> dict[str, Any]:
        return {"type": "delete", "description": description, "resourceId": reference}

    # -- cards -----------------------------------------------------------------------------

    def page_url(self, rec_id: str | None) -> str:
        """The web app's page of the guideline, or of one recommendation, in the language."""
        slug = self.package.slug
        path = f"/{slug}/" if rec_id is None else f"/{slug}/anbefalinger/{rec_id}"
        return f"{self.base_url}{path}{self._query}"

    def add(
        self,
        *,
        topic: str,
        indicator: str,
        summary: str,
        detail: str,
        link_to: str | None,
        suggestions: list[dict[str, Any]] | None = None,
    ) -> None:
        """A card about ``topic`` (a recommendation id or the guideline's own topic), linking
        to the recommendation ``link_to`` (None: the guide)."""
        f = self.frame
        card_id = self.uuids.next()
        card: Card = {
            "uuid": card_id,
            "summary": fit(summary),
            "detail": detail,
            "indicator": indicator,
            "source": f.source(topic),
        }
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = "at-most-one"
        card["overrideReasons"] = f.reasons(topic)
        label = f.link_guide if link_to is None else f.link_recommendation
        card["links"] = [{"label": label, "url": self.page_url(link_to), "type": "absolute"}]
        self.cards.append(card)
        self.issued.append(
            (card_id, topic, " ".join([s["uuid"] for s in suggestions]) if suggestions else "")
        )
