"""Card feedback from the EHR, stored durably in SQLite, and the report over it.

Stored: the card's uuid, the service, the outcome, accepted suggestion ids, the override
reason's coding, the outcome timestamp and when it was received; and for each card issued, its
uuid, service and topic (so that the report can count per topic). Nothing about the patient:
the free-text ``userComment`` of an override is not stored, since it may name the patient.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from nkr._errors import InputError, describe_validation_error
from nkr._guideline import Lang
from nkr.cdshooks._cards import OVERVIEW, SAFETY, topic_display
from nkr.cdshooks._texts import texts
from nkr.guidelines.lumbar_radiculopathy import guideline

DB_NAME = "feedback.sqlite3"
# Issued-card records are written in batches by a background task, at most this long after the
# card was issued; they are not synced one by one (a power cut may lose the last second of
# "shown" counts, never feedback). Without the task (no lifespan), a full buffer is written.
FLUSH_SECONDS = 1.0
FLUSH_BATCH = 50_000
# Issued-card rows per INSERT statement. sqlite3 lets go of the GIL around every statement it
# runs, and each time the serving thread must hand it back: one statement per row made that
# hand-over cost the service more than the writing itself. (4 parameters a row keeps a
# statement under SQLite's smallest limit of 999.)
ROWS_PER_INSERT = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued_card (
    uuid TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    topic TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions TEXT NOT NULL,
    override_system TEXT,
    override_code TEXT,
    override_display TEXT,
    outcome_timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card);
"""

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


@cache
def _insert_issued(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return f"INSERT OR IGNORE INTO issued_card (uuid, service, topic, issued_at) VALUES {values}"


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


@dataclass(slots=True)
class FeedbackStore:
    """The SQLite database in the data folder (WAL mode; every feedback commit is synced)."""

    path: Path
    _conn: sqlite3.Connection = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _pending: list[tuple[str, str, str, float]] = field(init=False, default_factory=list)
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
        self._conn.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, data_dir: Path) -> FeedbackStore:
        return cls(data_dir / DB_NAME)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._conn.close()

    # -- issued cards (hot path: memory only) ----------------------------------------------

    def issued(self, service: str, cards: Sequence[tuple[str, str]]) -> None:
        if not cards:
            return
        now = time.time()
        with self._pending_lock:
            self._pending.extend([(card, service, topic, now) for card, topic in cards])
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
        for card, service, topic, when in batch:
            issued_at = times.get(when)
            if issued_at is None:
                issued_at = times[when] = _iso(when)
            params += (card, service, topic, issued_at)
        per_statement = 4 * ROWS_PER_INSERT
        with self._lock:
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("BEGIN")
            for start in range(0, len(params), per_statement):
                chunk = params[start : start + per_statement]
                self._conn.execute(_insert_issued(len(chunk) // 4), chunk)
            self._conn.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Flush issued-card records in the background while the app runs."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                if self._pending:
                    await asyncio.to_thread(self.flush)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.close()

    # -- feedback ----------------------------------------------------------------------------

    def store(self, service: str, request: FeedbackRequest) -> None:
        """Write every item in one synced transaction; returns once it is on disk.

        Pending issued-card records are written first, so a card is on record before any
        feedback on it."""
        self.flush()
        received = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        rows: list[tuple[Any, ...]] = []
        for item in request.feedback:
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
                )
            )
        with self._lock:
            # FULL: the commit returns only once the WAL (with any card records before it) is
            # on disk.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO feedback (service, card, outcome, accepted_suggestions, "
                    "override_system, override_code, override_display, outcome_timestamp, "
                    "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


def reason_display(code: str | None, stored: str | None, lang: Lang) -> str:
    """An override reason as the report shows it: nkr's own text in ``lang`` for nkr's codes
    (whatever display the EHR sent back); for other codes, the display the EHR sent, or the
    code; a dash when no reason was given."""
    tx = texts()
    if code is not None and tx.has(f"override-reasons.{code}"):
        return tx(f"override-reasons.{code}", lang)
    return stored or code or "–"


def topic_label(topic: str | None, lang: Lang) -> str:
    """A card topic's name for people in ``lang``, as the cards show it; for a topic this
    version of nkr does not know, the code itself."""
    if topic is None:
        return texts()("report.unknown-topic", lang)
    g = guideline()
    if topic in (OVERVIEW, SAFETY) or topic in g.by_id:
        return topic_display(g, topic, lang)
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
        shown = dict(conn.execute("SELECT topic, count(*) FROM issued_card GROUP BY topic"))
        outcomes: dict[tuple[str | None, str], int] = {
            (topic, outcome): n
            for topic, outcome, n in conn.execute(
                "SELECT i.topic, f.outcome, count(*) FROM feedback f "
                "LEFT JOIN issued_card i ON i.uuid = f.card GROUP BY i.topic, f.outcome"
            )
        }
        reasons: dict[str | None, list[tuple[str | None, str | None, int]]] = {}
        for topic, code, display, n in conn.execute(
            "SELECT i.topic, f.override_code, max(f.override_display), count(*) FROM feedback f "
            "LEFT JOIN issued_card i ON i.uuid = f.card WHERE f.outcome = 'overridden' "
            "GROUP BY i.topic, f.override_code ORDER BY count(*) DESC, f.override_code"
        ):
            reasons.setdefault(topic, []).append((code, display, n))
    except sqlite3.Error as exc:
        raise InputError(f"{path}: not a feedback database: {exc}") from None
    finally:
        conn.close()
    topics: list[str | None] = sorted(set(shown) | {t for t, _ in outcomes if t is not None})
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
