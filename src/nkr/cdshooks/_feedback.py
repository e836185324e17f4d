"""Card feedback from the EHR, stored durably in SQLite, and the report over it.

Stored for each card issued: its uuid, service, topic, the uuids of its suggestions and when
it was issued, so that feedback can be checked against the card (the override reasons a card
offers follow from its topic: the list ``override-reasons-by-topic`` of the texts of the
service's guideline). Card records
are kept ``NKR_CARD_RETENTION_DAYS`` days; pruned cards are counted in ``pruned_shown`` so that
the report's "shown" counts stay whole. For each feedback item: the card's uuid and topic, the
service, the outcome, accepted suggestion ids, the override reason's coding, the outcome
timestamp and when it was received. Feedback rows are kept (one per card at most). Nothing
about the patient: the free-text ``userComment`` of an override is not stored, since it may
name the patient.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from nkr._errors import InputError, describe_validation_error
from nkr._guideline import Lang
from nkr._package import Registry, registry
from nkr._texts import t
from nkr.cdshooks._kit import OVERRIDE_REASON_SYSTEM
from nkr.fhir._outcome import IssueType

log = logging.getLogger("nkr.cdshooks")

DB_NAME = "feedback.sqlite3"
# Issued-card records are written in batches by a background task, at most this long after the
# card was issued, each batch in one synced commit. So a crash (kill -9, out of memory, power
# cut) loses at most the "shown" records of the last FLUSH_SECONDS (plus the time a write
# takes), per worker; feedback is synced before its 200 and never lost. Without the task (no
# lifespan), the buffer is written when FLUSH_BATCH calls are in it, and before any feedback.
FLUSH_SECONDS = 1.0
FLUSH_BATCH = 25_000
# Issued-card rows per INSERT statement. sqlite3 lets go of the GIL around every statement it
# runs, and each time the serving thread must hand it back: one statement per row made that
# hand-over cost the service more than the writing itself. (5 parameters a row keep a
# statement under SQLite's smallest limit of 999.)
ROWS_PER_INSERT = 999 // 5
# Card records older than the retention are pruned by the background task: first a moment
# after start-up, then every PRUNE_SECONDS, PRUNE_BATCH cards per transaction (a few ms: the
# database is never held long) and at most PRUNE_BATCHES_PER_TICK batches before the task
# writes issued cards again.
PRUNE_SECONDS = 60.0
PRUNE_BATCH = 2_000
PRUNE_BATCHES_PER_TICK = 10
# Another worker writes the cards it issued up to FLUSH_SECONDS later: feedback naming a card
# this worker does not know, whose uuid says it was issued within the last RECENT_SECONDS, is
# looked up once more after RECHECK_SECONDS before it is refused.
RECHECK_SECONDS = FLUSH_SECONDS + 0.5
RECENT_SECONDS = 10.0
# The key in an ASGI scope that marks a call made by the integrators page in-process (see
# ``nkr.web._cds``): not EHR traffic, so its cards are not recorded. A scope key, not a
# header: no HTTP request can set it.
INTERNAL_CALL: Final = "nkr.internal_call"

SCHEMA_VERSION = 2
# Version 1 (before the issued-card checks) had issued_card without suggestions, feedback
# without topic, and neither pruned_shown nor schema_version; the upgrade adds them.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS issued_card (
        uuid TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        topic TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        suggestions TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS feedback (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        card TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
        accepted_suggestions TEXT NOT NULL,
        override_system TEXT,
        override_code TEXT,
        override_display TEXT,
        outcome_timestamp TEXT NOT NULL,
        received_at TEXT NOT NULL,
        topic TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card)",
    # How many cards were shown before their records were pruned, per service and topic.
    """CREATE TABLE IF NOT EXISTS pruned_shown (
        service TEXT NOT NULL,
        topic TEXT NOT NULL,
        shown INTEGER NOT NULL,
        PRIMARY KEY (service, topic)
    )""",
    # One row per part of nkr that keeps tables in this database file.
    """CREATE TABLE IF NOT EXISTS schema_version (
        component TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    )""",
)

Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Lenient(BaseModel):
    # CDS Hooks allows extensions anywhere; unknown fields are ignored, not stored.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Coding(_Lenient):
    system: Short | None = None
    code: Short
    display: Annotated[str, StringConstraints(max_length=500)] | None = None


class OverrideReason(_Lenient):
    reason: Coding | None = None
    userComment: str | None = None


class AcceptedSuggestion(_Lenient):
    id: Short


class FeedbackItem(_Lenient):
    # Field names as the CDS Hooks specification spells them.
    card: Short
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] = Field(default_factory=list, max_length=50)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: dt.datetime


class FeedbackRequest(_Lenient):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


def parse_feedback(body: bytes) -> FeedbackRequest:
    """The feedback request, or :class:`InputError` naming the field."""
    if not body.strip():
        raise InputError("the request body is empty (expected an object with 'feedback')")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the request body is not valid JSON: {exc}") from None
    try:
        return FeedbackRequest.model_validate(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc)) from None


class FeedbackRefused(Exception):
    """A feedback item that does not match a card nkr issued; nothing of the request is
    stored. ``where`` names the item's field (``feedback[0].card``)."""

    def __init__(
        self, status: int, code: IssueType, where: str, problem: str, *, unknown: str = ""
    ) -> None:
        super().__init__(f"{where}: {problem}")
        self.status = status
        self.code: IssueType = code
        self.where = where
        self.diagnostics = f"{where}: {problem}"
        # The uuid of a card not on record (yet): another worker may write it within
        # FLUSH_SECONDS. Empty for every other refusal.
        self.unknown = unknown


def may_be_pending(card: str, now: float) -> bool:
    """Whether ``card`` looks like a uuid nkr issued in the last RECENT_SECONDS (card uuids
    are version 7: their first 48 bits are the time in ms), so that another worker may not
    have written it yet. Random uuids and other strings get their 404 without a wait."""
    if len(card) != 36 or card[14] != "7":
        return False
    try:
        issued = int(card[:8] + card[9:13], 16) / 1000
    except ValueError:
        return False
    return now - RECENT_SECONDS <= issued <= now + 1


@cache
def _insert_issued(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT OR IGNORE INTO issued_card (uuid, service, topic, issued_at, suggestions) "
        f"VALUES {values}"
    )


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class TopicReport:
    topic: str | None  # None: feedback on a card this service has no record of
    shown: int
    accepted: int
    overridden: int
    # (code, display, count), most frequent first; code None when no reason was given.
    reasons: tuple[tuple[str | None, str | None, int], ...]


# The cards of one call: (card uuid, topic) or (card uuid, topic, suggestion uuids separated
# by spaces).
IssuedCards = Sequence[tuple[str, ...]]


@dataclass(slots=True)
class FeedbackStore:
    """The SQLite database in the data folder (WAL mode; every commit is synced).

    Shared by all workers of a server: each keeps its own connection, and every check of
    feedback against the cards on record runs in the same write transaction as its insert, so
    two workers cannot both accept an outcome for one card."""

    path: Path
    retention_days: int = 90
    # Seconds since the epoch: when a card is issued, and "now" for the retention.
    clock: Callable[[], float] = time.time
    # The guidelines whose services' cards are on record (None: the installed ones): a card's
    # override reasons are its guideline's for its topic.
    registry: Registry | None = None
    _conn: sqlite3.Connection = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    # (service, when, cards) for each call whose cards are not yet written.
    _pending: list[tuple[str, float, IssuedCards]] = field(init=False, default_factory=list)
    _pending_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        # Card uuids are random, so every batch of issued cards lands all over the uuid index:
        # a page cache that holds the index, and a checkpoint every 10,000 WAL pages (about
        # 40 MB) rather than 1,000, keep a batch's cost from growing with the table as fast
        # (at 100,000 cards, 5 instead of 12 us per call). Durability is unchanged.
        self._conn.execute("PRAGMA cache_size=-16384")
        self._conn.execute("PRAGMA wal_autocheckpoint=10000")
        try:
            self._create_or_upgrade()
        except BaseException:
            self._conn.close()
            raise

    def _create_or_upgrade(self) -> None:
        """The tables of this version, created or upgraded in one transaction (two workers
        starting at once: the second finds the work done)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute(
                "SELECT version FROM schema_version WHERE component = 'feedback'"
            ).fetchone()
            version = 1 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise InputError(
                    f"{self.path}: written by a newer version of nkr (feedback schema "
                    f"{version}; this one knows {SCHEMA_VERSION}); it was not changed"
                )
            if version < SCHEMA_VERSION:
                self._upgrade_from_1()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _upgrade_from_1(self) -> None:
        # Cards issued before the upgrade have no suggestion uuids on record: an accepted
        # suggestion on one of them is refused (deny by default), an override is not.
        conn = self._conn
        if "suggestions" not in _columns(conn, "issued_card"):
            conn.execute("ALTER TABLE issued_card ADD COLUMN suggestions TEXT NOT NULL DEFAULT ''")
        if "topic" not in _columns(conn, "feedback"):
            conn.execute("ALTER TABLE feedback ADD COLUMN topic TEXT")
        # The topic of earlier feedback, while its card is still on record.
        conn.execute(
            "UPDATE feedback SET topic = (SELECT i.topic FROM issued_card i "
            "WHERE i.uuid = feedback.card) WHERE topic IS NULL"
        )
        conn.execute(
            "INSERT OR REPLACE INTO schema_version (component, version) VALUES ('feedback', ?)",
            (SCHEMA_VERSION,),
        )

    @classmethod
    def in_dir(
        cls,
        data_dir: Path,
        *,
        retention_days: int = 90,
        clock: Callable[[], float] = time.time,
        registry: Registry | None = None,
    ) -> FeedbackStore:
        return cls(data_dir / DB_NAME, retention_days, clock, registry)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._conn.close()

    # -- issued cards (hot path: memory only) ----------------------------------------------

    def issued(self, service: str, cards: IssuedCards) -> None:
        if not cards:
            return
        with self._pending_lock:
            self._pending.append((service, self.clock(), cards))
            full = len(self._pending) >= FLUSH_BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        # The statements' parameters, row after row. The cards of one call share their time:
        # each distinct time is formatted once.
        params: list[str] = []
        times: dict[float, str] = {}
        for service, when, cards in batch:
            issued_at = times.get(when)
            if issued_at is None:
                issued_at = times[when] = _iso(when)
            for card in cards:
                params += (card[0], service, card[1], issued_at, card[2] if len(card) > 2 else "")
        per_statement = 5 * ROWS_PER_INSERT
        with self._lock:
            # FULL: the batch is on disk when the commit returns (the sync runs in the
            # background task's thread, without the GIL).
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("BEGIN")
            try:
                for start in range(0, len(params), per_statement):
                    chunk = params[start : start + per_statement]
                    self._conn.execute(_insert_issued(len(chunk) // 5), chunk)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def prune(self, limit: int = PRUNE_BATCH) -> int:
        """Remove up to ``limit`` of the oldest card records that are past the retention, in
        one transaction, adding them to ``pruned_shown``; returns how many were removed.

        Only the ``limit`` oldest rows (by rowid, which follows the order of writing) are
        looked at, so a batch costs the same however large the table; when fewer than
        ``limit`` are removed, the oldest record left is within the retention (give or take
        the second by which workers' writes interleave)."""
        cutoff = _iso(self.clock() - self.retention_days * 86_400)
        oldest = "SELECT rowid FROM issued_card ORDER BY rowid LIMIT ?"
        with self._lock:
            conn = self._conn
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                counts = conn.execute(
                    f"SELECT service, topic, count(*) FROM issued_card WHERE rowid IN ({oldest}) "
                    "AND issued_at < ? GROUP BY service, topic",
                    (limit, cutoff),
                ).fetchall()
                conn.executemany(
                    "INSERT INTO pruned_shown (service, topic, shown) VALUES (?, ?, ?) "
                    "ON CONFLICT (service, topic) DO UPDATE SET shown = shown + excluded.shown",
                    counts,
                )
                removed = conn.execute(
                    f"DELETE FROM issued_card WHERE rowid IN ({oldest}) AND issued_at < ?",
                    (limit, cutoff),
                ).rowcount
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return removed

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Write issued-card records, and prune old ones, in the background while the app
        runs."""

        async def loop() -> None:
            prune_at = 0.0  # the first tick prunes
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                try:
                    if self._pending:
                        await asyncio.to_thread(self.flush)
                    if time.monotonic() >= prune_at:
                        prune_at = await self._prune_some(prune_at)
                except sqlite3.Error as exc:
                    # The next tick tries again; the log names the error, never a card.
                    log.error("feedback store: background write failed: %s", exc)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.close()

    async def _prune_some(self, prune_at: float) -> float:
        """A few batches, each its own transaction (the lock is free between them); the
        time of the next pruning: the next tick while a backlog remains."""
        for _ in range(PRUNE_BATCHES_PER_TICK):
            if await asyncio.to_thread(self.prune) < PRUNE_BATCH:
                return time.monotonic() + PRUNE_SECONDS
        return prune_at

    # -- feedback ----------------------------------------------------------------------------

    def store(self, service: str, request: FeedbackRequest) -> None:
        """Check every item against the card it names and write them all in one synced
        transaction; returns once they are on disk. Raises :class:`FeedbackRefused` (and
        stores nothing) when an item does not match a card ``service`` issued, or its card
        has an outcome already.

        Pending issued-card records are written first, so a card is on record before any
        feedback on it."""
        self.flush()
        received = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._lock:
            # FULL: the commit returns only once the WAL (with any card records before it) is
            # on disk. IMMEDIATE: the checks and the insert hold the write lock together.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._checked_rows(service, request, received)
                self._conn.executemany(
                    "INSERT INTO feedback (service, card, outcome, accepted_suggestions, "
                    "override_system, override_code, override_display, outcome_timestamp, "
                    "received_at, topic) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _override_reasons(self, service: str, topic: str) -> tuple[str, ...]:
        found = (self.registry or registry()).service(service)
        if found is None:
            return ()
        return found[0].texts.lists("override-reasons-by-topic").get(topic, ())

    def _checked_rows(
        self, service: str, request: FeedbackRequest, received: str
    ) -> list[tuple[Any, ...]]:
        """The rows to insert, or :class:`FeedbackRefused` for the first item that does not
        match its card. One outcome per card: a later one is refused (409), the first kept,
        so that a second click never counts twice."""
        conn = self._conn
        rows: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        for i, item in enumerate(request.feedback):
            at = f"feedback[{i}]"
            record = conn.execute(
                "SELECT service, topic, suggestions FROM issued_card WHERE uuid = ?",
                (item.card,),
            ).fetchone()
            if record is None:
                raise FeedbackRefused(
                    404,
                    "not-found",
                    f"{at}.card",
                    "nkr has no record of issuing this card (card records are kept "
                    f"{self.retention_days} days; the integrators page's cards are not "
                    "recorded)",
                    unknown=item.card,
                )
            issuer, topic, suggestions = record
            if issuer != service:
                raise FeedbackRefused(
                    400,
                    "business-rule",
                    f"{at}.card",
                    f"the card was issued by the service '{issuer}': its feedback goes to "
                    f"/cds-services/{issuer}/feedback",
                )
            if (
                item.card in seen
                or conn.execute(
                    "SELECT 1 FROM feedback WHERE card = ? LIMIT 1", (item.card,)
                ).fetchone()
            ):
                raise FeedbackRefused(
                    409,
                    "conflict",
                    f"{at}.card",
                    "this card has an outcome already; a card takes one outcome, and the "
                    "first is kept",
                )
            seen.add(item.card)
            _check_outcome(at, item, self._override_reasons(service, topic), suggestions)
            reason = item.overrideReason.reason if item.overrideReason else None
            rows.append(
                (
                    service,
                    item.card,
                    item.outcome,
                    orjson.dumps([s.id for s in item.acceptedSuggestions]).decode(),
                    reason.system if reason else None,
                    reason.code if reason else None,
                    reason.display if reason else None,
                    item.outcomeTimestamp.isoformat(),
                    received,
                    topic,
                )
            )
        return rows


def _check_outcome(at: str, item: FeedbackItem, codes: tuple[str, ...], suggestions: str) -> None:
    """An accepted outcome names exactly one suggestion of the card (CDS Hooks requires them,
    and nkr's cards let one be chosen); an overridden one names no suggestion, and a reason
    only if the card offered it (its system and one of ``codes``, its topic's)."""
    if item.outcome == "accepted":
        if item.overrideReason is not None:
            raise FeedbackRefused(
                400, "invalid", f"{at}.overrideReason", "only an 'overridden' outcome has one"
            )
        offered = suggestions.split()
        for j, accepted in enumerate(item.acceptedSuggestions):
            if accepted.id not in offered:
                raise FeedbackRefused(
                    400,
                    "business-rule",
                    f"{at}.acceptedSuggestions[{j}].id",
                    "not the uuid of a suggestion on this card",
                )
        if len(item.acceptedSuggestions) != 1:
            raise FeedbackRefused(
                400,
                "business-rule",
                f"{at}.acceptedSuggestions",
                "an accepted outcome names the one suggestion taken (CDS Hooks requires "
                "acceptedSuggestions; the card's selectionBehavior is at-most-one)",
            )
        return
    if item.acceptedSuggestions:
        raise FeedbackRefused(
            400, "invalid", f"{at}.acceptedSuggestions", "only an 'accepted' outcome has them"
        )
    reason = item.overrideReason.reason if item.overrideReason else None
    if reason is None:
        return  # overridden without a reason (the HL7 sandbox's "dismiss")
    if reason.system != OVERRIDE_REASON_SYSTEM or reason.code not in codes:
        raise FeedbackRefused(
            400,
            "business-rule",
            f"{at}.overrideReason.reason",
            "not one of the override reasons this card offered (system "
            f"{OVERRIDE_REASON_SYSTEM}, codes {', '.join(codes) or 'none'})",
        )


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def reason_display(
    code: str | None, stored: str | None, lang: Lang, known: Registry | None = None
) -> str:
    """An override reason as the report shows it: nkr's own text in ``lang`` for nkr's codes
    (whatever display the EHR sent back); for other codes, the display the EHR sent, or the
    code; a dash when no reason was given. ``known``: the guidelines (default: installed)."""
    if code is not None:
        key = f"override-reasons.{code}"
        for package in (known or registry()).packages:
            if package.texts.has(key):
                return package.texts(key, lang)
    return stored or code or "–"


def topic_label(topic: str | None, lang: Lang, known: Registry | None = None) -> str:
    """A card topic's name for people in ``lang``, as the cards show it (the first installed
    guideline that knows it names it); for a topic no guideline knows, the code itself."""
    if topic is None:
        return t("report.unknown-topic", lang)
    for package in (known or registry()).packages:
        label = package.topic_label(topic, lang)
        if label is not None:
            return label
    return topic


def report(path: Path) -> list[TopicReport]:
    """Per card topic: cards shown, accepted and overridden, and the override reasons."""
    if not path.is_file():
        raise InputError(
            f"{path}: no feedback database (has the server run with this data folder?)"
        )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"{path}: cannot open: {exc}") from None
    try:
        shown: dict[str, int] = dict(
            conn.execute("SELECT topic, count(*) FROM issued_card GROUP BY topic")
        )
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "pruned_shown" in tables:
            for topic, n in conn.execute(
                "SELECT topic, sum(shown) FROM pruned_shown GROUP BY topic"
            ):
                shown[topic] = shown.get(topic, 0) + n
        # A feedback row keeps its card's topic (the card record may be pruned); rows written
        # before version 2 take it from the card record, while there is one.
        topic_of = (
            "coalesce(f.topic, i.topic)" if "topic" in _columns(conn, "feedback") else "i.topic"
        )
        joined = "FROM feedback f LEFT JOIN issued_card i ON i.uuid = f.card"
        outcomes: dict[tuple[str | None, str], int] = {
            (topic, outcome): n
            for topic, outcome, n in conn.execute(
                f"SELECT {topic_of}, f.outcome, count(*) {joined} GROUP BY 1, 2"
            )
        }
        reasons: dict[str | None, list[tuple[str | None, str | None, int]]] = {}
        for topic, code, display, n in conn.execute(
            f"SELECT {topic_of}, f.override_code, max(f.override_display), count(*) {joined} "
            "WHERE f.outcome = 'overridden' GROUP BY 1, f.override_code "
            "ORDER BY count(*) DESC, f.override_code"
        ):
            reasons.setdefault(topic, []).append((code, display, n))
    except sqlite3.Error as exc:
        raise InputError(f"{path}: not a feedback database: {exc}") from None
    finally:
        conn.close()
    topics: list[str | None] = [*sorted(set(shown) | {t for t, _ in outcomes if t is not None})]
    if any(t is None for t, _ in outcomes):
        topics.append(None)
    return [
        TopicReport(
            topic=topic,
            shown=shown.get(topic, 0) if topic is not None else 0,
            accepted=outcomes.get((topic, "accepted"), 0),
            overridden=outcomes.get((topic, "overridden"), 0),
            reasons=tuple(reasons.get(topic, ())),
        )
        for topic in topics
    ]
