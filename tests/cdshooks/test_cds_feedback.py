"""Card feedback: shape checks, durability across a killed server, and ``nkr feedback report``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from typing import Any

import httpx
import orjson
import pytest

from .conftest import Cds, ServerProcess
from .fhir_data import SERVICE_IDS, hook_request, service_request


def feedback_url(base: str, hook: str) -> str:
    return f"{base}/cds-services/{SERVICE_IDS[hook]}/feedback"


def item(card: str, outcome: str = "accepted", **extra: Any) -> dict[str, Any]:
    return {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-11-26T09:15:00Z", **extra}


def override(card: str, code: str, display: str) -> dict[str, Any]:
    reason = {"reason": {"system": "urn:nkr:cds-override-reason", "code": code, "display": display}}
    return item(card, "overridden", overrideReason=reason | {"userComment": "Jens Hansen, cpr"})


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"{}", "feedback"),
        (b'{"feedback": []}', "feedback"),
        (orjson.dumps({"feedback": [{"card": "x", "outcome": "maybe"}]}), "outcome"),
        (orjson.dumps({"feedback": [item("x") | {"outcomeTimestamp": "yesterday"}]}), "outcome"),
        (orjson.dumps({"feedback": [{"outcome": "accepted"}]}), "card"),
        (orjson.dumps({"feedback": [override("x", "c", "d") | {"overrideReason": 5}]}), "override"),
    ],
)
def test_feedback_shape_400(cds: Cds, body: bytes, names: str) -> None:
    response = httpx.post(feedback_url(cds.base, "patient-view"), content=body)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert names in response.json()["issue"][0]["diagnostics"]


def test_feedback_accepted(cds: Cds) -> None:
    body = {"feedback": [item(str(uuid.uuid4()), acceptedSuggestions=[{"id": "s1"}])]}
    response = httpx.post(feedback_url(cds.base, "order-sign"), content=orjson.dumps(body))
    assert response.status_code == 200


def report(data_dir: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report", "--data-dir", data_dir, "--json"],
        capture_output=True,
        check=True,
    )
    rows: list[dict[str, Any]] = orjson.loads(result.stdout)
    return rows


def test_feedback_survives_a_killed_server_and_is_reported(server_process: ServerProcess) -> None:
    cds = Cds(server_process.start())
    drafts = [service_request("mri", "m1"), service_request("acupuncture", "a1")]
    cards = cds.cards("order-sign", hook_request("order-sign", drafts=drafts))
    by_topic = {c["source"]["topic"]["code"]: c for c in cards}
    mri, acupuncture = by_topic["mri"], by_topic["acupuncture"]
    overview = cds.cards("patient-view", hook_request("patient-view"))[0]
    body = {
        "feedback": [
            item(mri["uuid"], acceptedSuggestions=[{"id": mri["suggestions"][0]["uuid"]}]),
            override(acupuncture["uuid"], "patient-preference", "Patientens informerede ønske"),
        ]
    }
    response = httpx.post(feedback_url(cds.base, "order-sign"), content=orjson.dumps(body))
    assert response.status_code == 200
    more = {"feedback": [override(mri["uuid"], "clinical-judgement", "Klinisk vurdering")]}
    assert httpx.post(feedback_url(cds.base, "order-sign"), content=orjson.dumps(more)).is_success
    server_process.kill()  # right after the 200: no shutdown, no later flush

    db = server_process.data_dir / "feedback.sqlite3"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT card, outcome, override_code FROM feedback ORDER BY id"
        ).fetchall()
        columns = {r[1] for r in conn.execute("PRAGMA table_info(feedback)")}
    assert rows == [
        (mri["uuid"], "accepted", None),
        (acupuncture["uuid"], "overridden", "patient-preference"),
        (mri["uuid"], "overridden", "clinical-judgement"),
    ]
    assert not any("comment" in c for c in columns)  # free text may name the patient
    assert b"Jens Hansen" not in db.read_bytes()

    server_process.start()  # the data survives a restart too
    stats = {r["topic"]: r for r in report(str(server_process.data_dir))}
    assert stats["mri"]["shown"] == 1
    assert stats["mri"]["accepted"] == 1
    assert stats["mri"]["overridden"] == 1
    assert stats["acupuncture"]["overridden"] == 1
    assert stats["acupuncture"]["override_reasons"] == [
        {"code": "patient-preference", "display": "Patientens informerede ønske", "count": 1}
    ]
    assert stats["overview"]["shown"] == 1
    assert overview["uuid"]
    table = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report"],
        capture_output=True,
        text=True,
        check=True,
        env={"NKR_DATA_DIR": str(server_process.data_dir), "COLUMNS": "160"},
    ).stdout
    assert "Tilsidesat" in table
    assert "1 × Patientens informerede ønske" in table


def test_feedback_report_table_and_errors(server_process: ServerProcess) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report", "--data-dir", "/nonexistent"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("nkr: error: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    server_process.start()
    server_process.kill()
    empty = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report", "--lang", "en"],
        capture_output=True,
        text=True,
        env={"NKR_DATA_DIR": str(server_process.data_dir), "PATH": ""},
    )
    assert empty.returncode == 0, empty.stderr
    assert "No cards or feedback recorded yet." in empty.stdout
