"""Card feedback: shape checks, durability across a killed server, and ``nkr feedback report``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from nkr._cli import main
from nkr._guideline import Lang
from nkr.cdshooks import FeedbackStore
from nkr.cdshooks._feedback import parse_feedback
from nkr.guidelines import lumbar_radiculopathy as lr

from ..conftest import in_process
from .conftest import Cds, ServerProcess
from .fhir_data import SERVICE_IDS, hook_request, service_request

JSON = {"Content-Type": "application/json"}


def post(cds: Cds, hook: str, body: dict[str, Any] | bytes) -> httpx.Response:
    """Feedback on the cards of ``hook``'s service."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return cds.client.post(
        f"/cds-services/{SERVICE_IDS[hook]}/feedback", content=content, headers=JSON
    )


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
    response = post(cds, "patient-view", body)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert names in response.json()["issue"][0]["diagnostics"]


def test_feedback_accepted(cds: Cds) -> None:
    drafts = [service_request("mri", "m1")]
    (card,) = cds.cards("order-sign", hook_request("order-sign", drafts=drafts))
    accepted = [{"id": card["suggestions"][0]["uuid"]}]
    response = post(
        cds, "order-sign", {"feedback": [item(card["uuid"], acceptedSuggestions=accepted)]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


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
    response = post(cds, "order-sign", body)
    assert response.status_code == 200
    more = {"feedback": [override(overview["uuid"], "acknowledged", "Set og vurderet")]}
    assert post(cds, "patient-view", more).is_success
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
        (overview["uuid"], "overridden", "acknowledged"),
    ]
    assert not any("comment" in c for c in columns)  # free text may name the patient
    assert b"Jens Hansen" not in db.read_bytes()

    server_process.start()  # the data survives a restart too
    stats = {r["topic"]: r for r in report(str(server_process.data_dir))}
    assert stats["mri"]["shown"] == 1
    assert stats["mri"]["accepted"] == 1
    assert stats["mri"]["overridden"] == 0
    assert stats["acupuncture"]["overridden"] == 1
    assert stats["acupuncture"]["override_reasons"] == [
        {"code": "patient-preference", "display": "Patientens informerede ønske", "count": 1}
    ]
    assert stats["overview"]["shown"] == 1
    assert stats["overview"]["overridden"] == 1
    table = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report"],
        capture_output=True,
        text=True,
        check=True,
        env={"NKR_DATA_DIR": str(server_process.data_dir), "COLUMNS": "160"},
    ).stdout
    assert "Tilsidesat" in table
    assert "1 × Patientens informerede ønske" in table


def test_feedback_report_table_and_errors(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report", "--data-dir", "/nonexistent"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("nkr: error: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    with in_process({}, tmp_path):  # the app started (and stopped) on the folder: no cards
        pass
    empty = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report", "--lang", "en"],
        capture_output=True,
        text=True,
        env={"NKR_DATA_DIR": str(tmp_path), "PATH": ""},
    )
    assert empty.returncode == 0, empty.stderr
    assert "No cards or feedback recorded yet." in empty.stdout


def _store_feedback(data_dir: Path) -> None:
    """Cards of three topics, overridden with a known reason (stored with its Danish display),
    and, as an earlier version of nkr stored them before feedback was checked against the
    card, an unknown local reason and a reason without display."""
    store = FeedbackStore.in_dir(data_dir)
    service = "nkr-lumbal-radikulopati-patient-view"
    cards = [
        ("c-surgeon", "spine-surgeon-assessment"),
        ("c-acupuncture", "acupuncture"),
        ("c-mri", "mri"),
        ("c-mri-2", "mri"),
    ]
    store.issued(service, cards)
    body = {
        "feedback": [
            override("c-surgeon", "referral-not-indicated", "Klinisk vurdering: henvisning ..."),
            override("c-acupuncture", "patient-preference", "Patientens informerede ønske"),
        ]
    }
    store.store(service, parse_feedback(orjson.dumps(body)))
    store.close()
    with sqlite3.connect(data_dir / "feedback.sqlite3") as conn:
        conn.executemany(
            "INSERT INTO feedback (service, card, outcome, accepted_suggestions, override_code, "
            "override_display, outcome_timestamp, received_at, topic) "
            "VALUES (?, ?, 'overridden', '[]', ?, ?, 'x', 'x', 'mri')",
            [
                (service, "c-mri", "local-reason", "Lokal begrundelse"),
                (service, "c-mri-2", "no-display", None),
            ],
        )


@pytest.mark.parametrize("lang", ["da", "en"])
def test_report_in_the_report_language_untruncated(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    lang: Lang,
) -> None:
    _store_feedback(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["feedback", "report", "--data-dir", str(tmp_path), "--lang", lang]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    # The full topic code, and its name in the report's language.
    assert "spine-surgeon-assessment" in out
    assert "acupuncture" in out
    g = lr.package().content
    topics, reasons = column_text(out, 1), column_text(out, 5)
    for rec_id in ("spine-surgeon-assessment", "acupuncture", "mri"):
        assert g.recommendation(rec_id).label(lang) in topics
    # Known reasons in the report's language, whatever display the EHR sent; unknown ones as
    # stored, or by their code.
    tx = lr.package().texts
    for code in ("referral-not-indicated", "patient-preference"):
        assert f"1 × {tx(f'override-reasons.{code}', lang)}" in reasons
    assert "1 × Lokal begrundelse" in reasons
    assert "1 × no-display" in reasons


def column_text(table: str, index: int) -> str:
    """The words of one column of a Rich table's body, in order."""
    cells = [line.split("│")[index] for line in table.splitlines() if line.startswith("│")]
    return " ".join(" ".join(cells).split())


def test_report_json_in_the_report_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store_feedback(tmp_path)
    args = ["feedback", "report", "--data-dir", str(tmp_path), "--json", "--lang", "en"]
    assert main(args) == 0
    rows = {r["topic"]: r for r in orjson.loads(capsys.readouterr().out)}
    assert rows["acupuncture"]["label"] == "Acupuncture"
    assert rows["acupuncture"]["override_reasons"] == [
        {"code": "patient-preference", "display": "The patient's informed preference", "count": 1}
    ]
    assert {r["display"] for r in rows["mri"]["override_reasons"]} == {
        "Lokal begrundelse",
        "no-display",
    }
