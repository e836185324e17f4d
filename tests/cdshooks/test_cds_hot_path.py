"""The service's hot-path shortcuts give what the plain ways gave: card UUIDs, the batched
issued-card records, the base URL of a request."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

from starlette.requests import Request

from nkr._settings import Settings
from nkr.cdshooks._feedback import ROWS_PER_INSERT, FeedbackStore
from nkr.cdshooks._kit import Uuids
from nkr.cdshooks._routes import BASE_URLS_KEPT, CdsHooks


def test_card_uuids_are_time_ordered_version_7_uuids() -> None:
    before = time.time_ns() // 1_000_000
    made = [Uuids().next() for _ in range(2000)]  # a call's first UUID, 2000 times
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    # Ordered by time (to the millisecond) ...
    stamps = [uuid.UUID(text).int >> 80 for text in made]
    assert stamps == sorted(stamps)
    # ... and random after the timestamp: every random hex digit takes more than one value.
    for position in range(15, 36):
        if made[0][position] != "-" and position != 19:
            assert len({text[position] for text in made}) > 1, position


def test_the_uuids_of_one_call_share_its_time_and_differ_in_their_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    uuids = Uuids()
    made = [uuids.next() for _ in range(50)]  # the random pool is drawn again many times
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    parsed = [uuid.UUID(text) for text in made]
    assert [str(p) for p in parsed] == made
    assert {p.version for p in parsed} == {7}
    assert {p.variant for p in parsed} == {uuid.RFC_4122}
    assert len({p.int >> 80 for p in parsed}) == 1
    assert before <= parsed[0].int >> 80 <= after


def test_issued_cards_are_all_recorded_whatever_the_batch_size(tmp_path: Path) -> None:
    store = FeedbackStore.in_dir(tmp_path)
    count = 2 * ROWS_PER_INSERT + 51  # full statements and a partial one
    cards = [(str(uuid.uuid4()), "overview") for _ in range(count)]
    for i in range(0, count, 2):
        store.issued("svc", cards[i : i + 2])
    store.issued("svc", cards[:3])  # issued again: kept once
    store.close()
    with sqlite3.connect(tmp_path / "feedback.sqlite3") as conn:
        rows = conn.execute("SELECT uuid, service, topic, issued_at FROM issued_card").fetchall()
    assert sorted(r[0] for r in rows) == sorted(c for c, _ in cards)
    assert {(r[1], r[2]) for r in rows} == {("svc", "overview")}
    assert all(r[3].endswith("+00:00") and len(r[3]) == 25 for r in rows)


def _request(
    host: bytes | None,
    scheme: str = "http",
    root_path: str = "",
    server: object = ("127.0.0.1", 8000),
) -> Request:
    headers = [(b"content-type", b"application/json")]
    if host is not None:
        headers.append((b"host", host))
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": scheme,
            "path": "/cds-services/x",
            "root_path": root_path,
            "query_string": b"",
            "headers": headers,
            "server": server,
        }
    )


def test_the_base_url_follows_each_requests_origin(tmp_path: Path) -> None:
    hooks = CdsHooks(Settings(data_dir=tmp_path))
    requests = [
        _request(b"ehr.example:8080"),
        _request(b"ehr.example:8080", scheme="https"),
        _request(b"other.example"),
        _request(b"ehr.example:8080", root_path="/nkr"),
        *(_request(f"h{i}.example".encode()) for i in range(BASE_URLS_KEPT + 5)),
    ]
    for _ in range(2):  # derived, then remembered
        for request in requests:
            assert hooks.base_url(request) == str(request.base_url).rstrip("/")
    assert hooks.base_url(requests[0]) == "http://ehr.example:8080"
    assert hooks.base_url(requests[3]) == "http://ehr.example:8080/nkr"
    hooks.store.close()


def test_the_base_url_takes_a_server_address_given_as_a_list(tmp_path: Path) -> None:
    # ASGI allows any iterable for "server"; Starlette's TestClient gives a list.
    hooks = CdsHooks(Settings(data_dir=tmp_path))
    for _ in range(2):
        assert hooks.base_url(_request(None, server=["10.0.0.5", 8080])) == "http://10.0.0.5:8080"
        assert hooks.base_url(_request(b"ehr.example", server=["10.0.0.5", 80])) == (
            "http://ehr.example"
        )
        bare = _request(None, server=None)
        assert hooks.base_url(bare) == str(bare.base_url).rstrip("/")
    hooks.store.close()
