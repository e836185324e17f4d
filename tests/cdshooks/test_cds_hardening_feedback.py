"""Issue 9, findings 8 and 12: bookkeeping that is bounded and cannot be forged.

Each attack of the issue is replayed over real HTTP against a real ``nkr serve``: the
integrators page must not count as EHR traffic, a cross-origin "simple" POST (``text/plain``)
must not reach the services, the issued-card table must be pruned, and feedback must match a
card nkr issued (its service, its suggestions, the override reasons it offered), once.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from nkr._app import create_app
from nkr._devserver import start_server, stop_server
from nkr._errors import InputError
from nkr._settings import Settings
from nkr.cdshooks import FeedbackStore, report
from nkr.cdshooks._feedback import (
    DB_NAME,
    FLUSH_SECONDS,
    RECENT_SECONDS,
    FeedbackRefused,
    may_be_pending,
    parse_feedback,
)
from nkr.cdshooks._kit import Uuids
from tests._async import run_async

from ..conftest import in_process
from .conftest import Cds, ServerProcess
from .fhir_data import SERVICE_IDS, hook_request, pain, procedure, radiculopathy, service_request

REASON_SYSTEM = "urn:nkr:cds-override-reason"
PATIENT_VIEW = SERVICE_IDS["patient-view"]
ORDER_SIGN = SERVICE_IDS["order-sign"]
# A card of another worker is written at most FLUSH_SECONDS after it was issued.
SETTLE_SECONDS = FLUSH_SECONDS + 1.0


def item(card: str, outcome: str = "accepted", **extra: Any) -> dict[str, Any]:
    return {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-11-26T09:15:00Z", **extra}


def override(card: str, code: str, system: str | None = REASON_SYSTEM) -> dict[str, Any]:
    reason: dict[str, Any] = {"code": code} | ({"system": system} if system else {})
    return item(card, "overridden", overrideReason={"reason": reason})


def accept(card: dict[str, Any]) -> dict[str, Any]:
    return item(card["uuid"], acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])


def post_feedback(
    to: str | httpx.Client,
    service: str,
    items: list[dict[str, Any]],
    content_type: str | None = "application/json",
) -> httpx.Response:
    """Feedback to a real server at its base URL, or through a client (the app in-process)."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    path, content = f"/cds-services/{service}/feedback", orjson.dumps({"feedback": items})
    if isinstance(to, str):
        with httpx.Client(base_url=to, timeout=10) as client:  # a connection of its own
            return client.post(path, content=content, headers=headers)
    return to.post(path, content=content, headers=headers)


def refused(response: httpx.Response, status: int, names: str) -> str:
    """The diagnostics of a refusal, checked to be an OperationOutcome naming ``names``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    diagnostics: str = issue["diagnostics"]
    assert diagnostics.startswith(f"{names}: "), diagnostics
    assert issue.get("expression") == [names]
    return diagnostics


def mri_and_surgeon_cards(cds: Cds) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh MRI card (order-sign) and spine-surgeon card (patient-view), each with its
    one suggestion."""
    drafts = [service_request("mri", "m1")]
    (mri,) = cds.cards("order-sign", hook_request("order-sign", drafts=drafts))
    surgeon_case = hook_request(
        "patient-view",
        conditions=[radiculopathy(100)],
        observations=[pain(8)],
        procedures=[procedure("supervised_exercise")],
    )
    surgeon = next(
        c
        for c in cds.cards("patient-view", surgeon_case)
        if c["source"]["topic"]["code"] == "spine-surgeon-assessment"
    )
    return mri, surgeon


def card_rows(data_dir: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT uuid, service, topic FROM issued_card").fetchall()


def cli_report(data_dir: Path) -> dict[str | None, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        check=True,
    )
    return {r["topic"]: r for r in orjson.loads(result.stdout)}


# -- finding 8: the integrators page is not EHR traffic ----------------------------------------

V7_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_integrators_page_calls_add_no_shown_rows(tmp_path: Path) -> None:
    with in_process({}, tmp_path) as client:
        page = f"/integration?service={PATIENT_VIEW}&sample=2-surgeon-due"
        for _ in range(20):
            response = client.get(page)
            assert response.status_code == 200
            assert "cds-card" in response.text  # the page did call the service and got cards
        page_cards = set(V7_UUID.findall(response.text))
        assert page_cards
        # An outside client that sends whatever an in-process marker could look like as
        # headers is EHR traffic all the same: counted.
        spoofed = {
            "X-Nkr-Internal": "1",
            "nkr.internal_call": "true",
            "X-Forwarded-For": "127.0.0.1",
            "User-Agent": "python-httpx/0.28.1",
        }
        external = Cds.of(client).cards("patient-view", hook_request("patient-view"), spoofed)
        # Feedback on a card of the page is refused: it was never recorded.
        refused(
            post_feedback(client, PATIENT_VIEW, [item(sorted(page_cards)[0])]),
            404,
            "feedback[0].card",
        )
    # Leaving the app ends its lifespan (a graceful stop): the store writes what it holds.
    rows = card_rows(tmp_path)
    assert sorted(r[0] for r in rows) == sorted(c["uuid"] for c in external)
    stats = cli_report(tmp_path)
    assert stats["overview"]["shown"] == 1
    assert "spine-surgeon-assessment" not in stats


# -- finding 8: JSON only ---------------------------------------------------------------------

REFUSED_TYPES = [
    None,
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=iso-8859-1",
    "application/jsonp",
    "application/fhir+json",
]


@pytest.mark.parametrize("content_type", REFUSED_TYPES)
def test_hook_call_without_json_content_type_gets_415(cds: Cds, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = cds.client.post(
        f"/cds-services/{PATIENT_VIEW}",
        content=orjson.dumps(hook_request("patient-view")),
        headers=headers,
    )
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "application/json" in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_with_charset_or_in_capitals_is_json(cds: Cds, content_type: str) -> None:
    response = cds.client.post(
        f"/cds-services/{PATIENT_VIEW}",
        content=orjson.dumps(hook_request("patient-view")),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    ok = post_feedback(cds.client, PATIENT_VIEW, [item(card["uuid"], "overridden")], content_type)
    assert ok.status_code == 200, ok.text


def test_text_plain_feedback_gets_415_and_is_not_stored(cds: Cds) -> None:
    mri, _ = mri_and_surgeon_cards(cds)
    for content_type in REFUSED_TYPES:
        response = post_feedback(cds.client, ORDER_SIGN, [accept(mri)], content_type)
        assert response.status_code == 415, (content_type, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    # None of them was stored: the card's one outcome is still to be given.
    assert post_feedback(cds.client, ORDER_SIGN, [accept(mri)]).status_code == 200


# -- finding 12: forged feedback ----------------------------------------------------------------


def test_unknown_card_is_refused(cds: Cds) -> None:
    mri, _ = mri_and_surgeon_cards(cds)
    unknown = str(uuid.uuid4())
    refused(post_feedback(cds.client, ORDER_SIGN, [item(unknown)]), 404, "feedback[0].card")
    response = post_feedback(cds.client, ORDER_SIGN, [accept(mri), item(unknown)])
    refused(response, 404, "feedback[1].card")
    # All or nothing: the good item of the refused request was not stored.
    assert post_feedback(cds.client, ORDER_SIGN, [accept(mri)]).status_code == 200


def test_feedback_for_another_services_card_is_refused(cds: Cds) -> None:
    mri, surgeon = mri_and_surgeon_cards(cds)
    diagnostics = refused(
        post_feedback(cds.client, PATIENT_VIEW, [accept(mri)]), 400, "feedback[0].card"
    )
    assert ORDER_SIGN in diagnostics  # where it belongs
    refused(post_feedback(cds.client, ORDER_SIGN, [accept(surgeon)]), 400, "feedback[0].card")
    assert post_feedback(cds.client, ORDER_SIGN, [accept(mri)]).status_code == 200
    assert post_feedback(cds.client, PATIENT_VIEW, [accept(surgeon)]).status_code == 200


def test_suggestion_not_on_the_card_is_refused(cds: Cds) -> None:
    mri, surgeon = mri_and_surgeon_cards(cds)
    names = "feedback[0].acceptedSuggestions[0].id"
    for foreign in (str(uuid.uuid4()), surgeon["suggestions"][0]["uuid"], mri["uuid"]):
        body = [item(mri["uuid"], acceptedSuggestions=[{"id": foreign}])]
        refused(post_feedback(cds.client, ORDER_SIGN, body), 400, names)
    twice = [{"id": mri["suggestions"][0]["uuid"]}] * 2
    body = [item(mri["uuid"], acceptedSuggestions=twice)]
    refused(post_feedback(cds.client, ORDER_SIGN, body), 400, "feedback[0].acceptedSuggestions")
    assert post_feedback(cds.client, ORDER_SIGN, [accept(mri)]).status_code == 200


def test_an_accepted_outcome_names_the_suggestion_it_took(cds: Cds) -> None:
    """CDS Hooks: acceptedSuggestions is required for an accepted outcome; without it an
    'accepted' would inflate a card's acceptance with nothing taken."""
    mri, _ = mri_and_surgeon_cards(cds)
    names = "feedback[0].acceptedSuggestions"
    for body in ([item(mri["uuid"])], [item(mri["uuid"], acceptedSuggestions=[])]):
        refused(post_feedback(cds.client, ORDER_SIGN, body), 400, names)
    assert post_feedback(cds.client, ORDER_SIGN, [accept(mri)]).status_code == 200


def test_override_reason_the_card_never_offered_is_refused(cds: Cds) -> None:
    mri, _ = mri_and_surgeon_cards(cds)
    offered = {(r["system"], r["code"]) for r in mri["overrideReasons"]}
    assert (REASON_SYSTEM, "carefully-considered") in offered
    names = "feedback[0].overrideReason.reason"
    for body in (
        override(mri["uuid"], "acknowledged"),  # offered on the overview card, not this one
        override(mri["uuid"], "made-up-reason"),
        override(mri["uuid"], "carefully-considered", "urn:other:system"),
        override(mri["uuid"], "carefully-considered", None),
    ):
        refused(post_feedback(cds.client, ORDER_SIGN, [body]), 400, names)
    # The outcome and its details must agree.
    wrong = [
        item(mri["uuid"], "overridden", acceptedSuggestions=accept(mri)["acceptedSuggestions"])
    ]
    refused(post_feedback(cds.client, ORDER_SIGN, wrong), 400, "feedback[0].acceptedSuggestions")
    reason = override(mri["uuid"], "carefully-considered")["overrideReason"]
    wrong = [item(mri["uuid"], "accepted", overrideReason=reason)]
    refused(post_feedback(cds.client, ORDER_SIGN, wrong), 400, "feedback[0].overrideReason")
    good = override(mri["uuid"], "carefully-considered")
    assert post_feedback(cds.client, ORDER_SIGN, [good]).status_code == 200


def test_override_without_a_reason_is_kept(cds: Cds) -> None:
    # The HL7 sandbox's "dismiss": overridden, no reason.
    mri, _ = mri_and_surgeon_cards(cds)
    assert post_feedback(cds.client, ORDER_SIGN, [item(mri["uuid"], "overridden")]).is_success


def test_accept_then_override_counts_once(tmp_path: Path) -> None:
    with in_process({}, tmp_path) as client:
        cds = Cds.of(client)
        mri, surgeon = mri_and_surgeon_cards(cds)
        assert post_feedback(client, ORDER_SIGN, [accept(mri)]).status_code == 200
        later = post_feedback(client, ORDER_SIGN, [override(mri["uuid"], "carefully-considered")])
        refused(later, 409, "feedback[0].card")
        again = post_feedback(client, ORDER_SIGN, [accept(mri)])  # a second click
        refused(again, 409, "feedback[0].card")
        both = [accept(surgeon), override(surgeon["uuid"], "not-severe")]
        refused(post_feedback(client, PATIENT_VIEW, both), 409, "feedback[1].card")
        assert post_feedback(client, PATIENT_VIEW, both[1:]).status_code == 200
        stats = cli_report(tmp_path)
        assert (stats["mri"]["accepted"], stats["mri"]["overridden"]) == (1, 0)
        surgeon_stats = stats["spine-surgeon-assessment"]
        assert (surgeon_stats["accepted"], surgeon_stats["overridden"]) == (0, 1)
        with sqlite3.connect(tmp_path / DB_NAME) as conn:
            assert conn.execute("SELECT count(*) FROM feedback").fetchone() == (2,)


def test_feedback_right_after_the_call_across_two_workers(tmp_path: Path) -> None:
    """With two workers, the card may have been issued by the other one, which writes it up
    to a second later: the feedback still finds it."""
    proc, base = start_server({}, tmp_path, args=["--workers", "2"])
    try:
        for _ in range(4):
            # A new connection each time: either worker may answer either request.
            response = httpx.post(
                f"{base}/cds-services/{PATIENT_VIEW}",
                content=orjson.dumps(hook_request("patient-view")),
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            (card,) = response.json()["cards"]
            ok = post_feedback(base, PATIENT_VIEW, [item(card["uuid"], "overridden")])
            assert ok.status_code == 200, ok.text
    finally:
        stop_server(proc)


# -- finding 8: retention and pruning ----------------------------------------------------------


def _seed(data_dir: Path, days_ago: float, cards: list[tuple[str, str, str]], service: str) -> None:
    """Cards issued ``days_ago`` days ago, written by a store whose clock says so."""
    then = time.time() - days_ago * 86_400
    store = FeedbackStore.in_dir(data_dir, clock=lambda: then)
    store.issued(service, cards)
    store.close()


def test_old_cards_are_pruned_and_the_report_still_counts(tmp_path: Path) -> None:
    data_dir = tmp_path
    old_mri = [(str(uuid.uuid4()), "mri", str(uuid.uuid4())) for _ in range(30)]
    old_overview = [(str(uuid.uuid4()), "overview", "") for _ in range(10)]
    young = [(str(uuid.uuid4()), "mri", "") for _ in range(5)]
    _seed(data_dir, 100, old_mri, ORDER_SIGN)
    _seed(data_dir, 100, old_overview, PATIENT_VIEW)
    _seed(data_dir, 1, young, ORDER_SIGN)
    store = FeedbackStore.in_dir(data_dir)
    taken = [{"id": old_mri[1][2]}]
    body = {
        "feedback": [
            override(old_mri[0][0], "carefully-considered"),
            item(old_mri[1][0], acceptedSuggestions=taken),
        ]
    }
    store.store(ORDER_SIGN, parse_feedback(orjson.dumps(body)))
    store.close()
    before = cli_report(data_dir)
    assert before["mri"]["shown"] == 35

    with in_process({"NKR_CARD_RETENTION_DAYS": "30"}, data_dir) as client:
        deadline = time.monotonic() + 20
        while len(card_rows(data_dir)) > len(young) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sorted(r[0] for r in card_rows(data_dir)) == sorted(c for c, _, _ in young)
        # The counts are kept: the pruned cards' shown counts are rolled up, their feedback
        # kept.
        assert cli_report(data_dir) == before
        after = cli_report(data_dir)["mri"]
        assert (after["shown"], after["accepted"], after["overridden"]) == (35, 1, 1)
        # Feedback on a pruned card: its record is gone, so it is refused; a young one is fine.
        diagnostics = refused(
            post_feedback(client, ORDER_SIGN, [item(old_mri[2][0])]), 404, "feedback[0].card"
        )
        assert "30 days" in diagnostics
        young_feedback = post_feedback(client, ORDER_SIGN, [item(young[0][0], "overridden")])
        assert young_feedback.status_code == 200


def test_pruning_runs_in_bounded_batches(tmp_path: Path) -> None:
    now = time.time()
    store = FeedbackStore.in_dir(tmp_path, retention_days=30, clock=lambda: now - 40 * 86_400)
    old = [(f"old-{i}", "mri" if i % 3 else "overview") for i in range(2_500)]
    store.issued(ORDER_SIGN, old)
    store.clock = lambda: now - 5 * 86_400
    store.issued(ORDER_SIGN, [("young", "mri")])
    store.clock = lambda: now
    body = {"feedback": [item("old-1", "overridden")]}
    store.store(ORDER_SIGN, parse_feedback(orjson.dumps(body)))
    before = report(tmp_path / DB_NAME)
    batches = []
    while (pruned := store.prune(limit=1_000)) > 0:
        batches.append(pruned)
    assert batches == [1_000, 1_000, 500]
    assert report(tmp_path / DB_NAME) == before
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        assert conn.execute("SELECT uuid FROM issued_card").fetchall() == [("young",)]
    with pytest.raises(FeedbackRefused) as refusal:
        store.store(ORDER_SIGN, parse_feedback(orjson.dumps({"feedback": [item("old-2")]})))
    assert refusal.value.status == 404
    store.close()


def test_the_store_prunes_in_its_background_loop(tmp_path: Path) -> None:
    now = time.time()
    store = FeedbackStore.in_dir(tmp_path, retention_days=1, clock=lambda: now - 3 * 86_400)
    store.issued(PATIENT_VIEW, [(f"c{i}", "overview") for i in range(50)])
    store.flush()
    store.clock = time.time

    async def run() -> None:
        async with store.running():
            deadline = time.monotonic() + 10
            while len(card_rows(tmp_path)) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)

    run_async(run())
    assert card_rows(tmp_path) == []
    (row,) = report(tmp_path / DB_NAME)
    assert (row.topic, row.shown) == ("overview", 50)


# -- "shown" counts and a crash -------------------------------------------------------------


def test_cards_older_than_the_flush_window_survive_a_kill(server_process: ServerProcess) -> None:
    cds = Cds(server_process.start())
    cards = [c for _ in range(5) for c in cds.cards("patient-view", hook_request("patient-view"))]
    time.sleep(SETTLE_SECONDS)  # the documented window: FLUSH_SECONDS
    server_process.kill()
    assert sorted(r[0] for r in card_rows(server_process.data_dir)) == sorted(
        c["uuid"] for c in cards
    )


# -- the database: versions, metrics ----------------------------------------------------------

LEGACY_SCHEMA = """
CREATE TABLE issued_card (
    uuid TEXT PRIMARY KEY, service TEXT NOT NULL, topic TEXT NOT NULL, issued_at TEXT NOT NULL
);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY, service TEXT NOT NULL, card TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions TEXT NOT NULL, override_system TEXT, override_code TEXT,
    override_display TEXT, outcome_timestamp TEXT NOT NULL, received_at TEXT NOT NULL
);
CREATE INDEX feedback_card ON feedback (card);
"""


def _legacy_db(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(LEGACY_SCHEMA)
        conn.executemany(
            "INSERT INTO issued_card VALUES (?, ?, 'mri', '2026-01-01T00:00:00+00:00')",
            [("a", ORDER_SIGN), ("b", ORDER_SIGN)],
        )
        conn.execute(
            "INSERT INTO feedback (service, card, outcome, accepted_suggestions, "
            "outcome_timestamp, received_at) VALUES (?, 'a', 'accepted', '[]', 'x', 'x')",
            (ORDER_SIGN,),
        )


def test_a_database_of_the_earlier_version_is_upgraded(tmp_path: Path) -> None:
    _legacy_db(tmp_path / DB_NAME)
    legacy = report(tmp_path / DB_NAME)  # the report reads it before the upgrade
    assert [(r.topic, r.shown, r.accepted) for r in legacy] == [("mri", 2, 1)]
    store = FeedbackStore.in_dir(tmp_path, retention_days=30)
    assert report(tmp_path / DB_NAME) == legacy
    with pytest.raises(FeedbackRefused) as refusal:  # one outcome per card, older ones too
        store.store(ORDER_SIGN, parse_feedback(orjson.dumps({"feedback": [item("a")]})))
    assert refusal.value.status == 409
    store.store(ORDER_SIGN, parse_feedback(orjson.dumps({"feedback": [item("b", "overridden")]})))
    assert store.prune(limit=100) == 2  # 2026-01-01 is long past 30 days
    (row,) = report(tmp_path / DB_NAME)
    assert (row.topic, row.shown, row.accepted, row.overridden) == ("mri", 2, 1, 1)
    store.close()
    FeedbackStore.in_dir(tmp_path).close()  # opened again: already upgraded


def test_a_database_of_a_later_version_is_not_touched(tmp_path: Path) -> None:
    FeedbackStore.in_dir(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'feedback'")
    with pytest.raises(InputError, match="newer"):
        FeedbackStore.in_dir(tmp_path)


def _feedback_count(outcome: str) -> float:
    return REGISTRY.get_sample_value("nkr_feedback_total", {"outcome": outcome}) or 0.0


def test_feedback_metrics_count_accepted_overridden_and_refused(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            drafts = [service_request("mri", "m1"), service_request("acupuncture", "a1")]
            answer = await c.post(
                f"/cds-services/{ORDER_SIGN}", json=hook_request("order-sign", drafts=drafts)
            )
            cards = answer.json()["cards"]
            url = f"/cds-services/{ORDER_SIGN}/feedback"
            body = {"feedback": [accept(cards[0]), item(cards[1]["uuid"], "overridden")]}
            assert (await c.post(url, json=body)).status_code == 200
            assert (await c.post(url, json=body)).status_code == 409
            assert (
                await c.post(url, content=b"{}", headers={"Content-Type": "text/plain"})
            ).status_code == 415

    counts = {o: _feedback_count(o) for o in ("accepted", "overridden", "refused")}
    run_async(run())
    assert _feedback_count("accepted") - counts["accepted"] == 1
    assert _feedback_count("overridden") - counts["overridden"] == 1
    assert _feedback_count("refused") - counts["refused"] == 3  # two items, one unread body


def test_only_a_recent_version_7_uuid_may_be_pending_in_another_worker() -> None:
    now = time.time()
    fresh = Uuids().next()
    assert may_be_pending(fresh, now)
    assert not may_be_pending(fresh, now + RECENT_SECONDS + 1)  # long since written
    assert not may_be_pending(str(uuid.uuid4()), now)  # not one nkr makes
    assert not may_be_pending("not-a-uuid", now)
    assert not may_be_pending("zzzzzzzz-zzzz-7zzz-8zzz-zzzzzzzzzzzz", now)
    assert not may_be_pending("", now)
