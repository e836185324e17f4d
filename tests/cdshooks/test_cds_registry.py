"""The CDS Hooks adapter serves the guidelines of its registry: every installed guideline's
services in discovery, each call by its guideline's card rules, feedback checked against the
card's guideline, and a guideline's options (here the pain threshold) reaching its cards.
In-process (ASGI): nothing here needs a server process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from nkr._assessment import Assessment
from nkr._guideline import Lang, Localized
from nkr._package import Registry, ServiceSpec
from nkr._settings import Settings
from nkr.cdshooks import CardKit, create_router
from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy, Options

from .fhir_data import SERVICE_IDS, hook_request, pain, procedure, radiculopathy

TOPIC = "second-opinion"
LUMBAR = LumbarRadiculopathy().content


class Echo(LumbarRadiculopathy):
    """A second guideline as the adapter sees it: its own id, slug, one service and one card
    rule with a topic of its own (its case and rules are borrowed: the adapter never looks)."""

    @property
    def id(self) -> str:
        return "test-echo"

    @property
    def slug(self) -> str:
        return "echo"

    @cached_property
    def services(self) -> tuple[ServiceSpec, ...]:
        return (
            ServiceSpec(
                "test-echo-patient-view",
                "patient-view",
                Localized(da="Ekko", en="Echo"),
                Localized(da="Et ekko", en="An echo"),
            ),
        )

    def cards(self, hook: str, assessment: Assessment, kit: CardKit) -> None:
        kit.add(
            topic=TOPIC,
            indicator="info",
            summary=f"{kit.tag}: " + "x" * 200,
            detail=kit.detail(kit.block("mri"), "", kit.footer(TOPIC)),
            link_to="mri",
        )

    def topic_label(self, topic: str, lang: Lang) -> str | None:
        return "Ekko" if topic == TOPIC else None


@contextmanager
def client_for(tmp_path: Path, *packages: Any) -> Iterator[TestClient]:
    app = FastAPI()
    known = Registry(packages, packages[0].id)
    app.include_router(create_router(Settings(data_dir=tmp_path), known))
    with TestClient(app, base_url="https://ehr.example") as client:
        yield client


@pytest.fixture
def two(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(tmp_path, LumbarRadiculopathy(), Echo()) as client:
        yield client


def call(client: TestClient, service: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(
        f"/cds-services/{service}",
        content=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def test_discovery_lists_the_services_of_every_guideline(two: TestClient) -> None:
    services = two.get("/cds-services").json()["services"]
    assert [s["id"] for s in services] == [*SERVICE_IDS.values(), "test-echo-patient-view"]
    assert services[-1]["title"] == "Ekko"
    assert services[-1]["prefetch"] == services[0]["prefetch"]
    document = two.get("/openapi.json").json()
    assert "/cds-services/test-echo-patient-view" in document["paths"]


def test_each_service_is_served_by_its_own_guideline(two: TestClient) -> None:
    body = hook_request("patient-view")
    assert [c["source"]["topic"]["code"] for c in call(two, SERVICE_IDS["patient-view"], body)] == [
        "overview"
    ]
    (card,) = call(two, "test-echo-patient-view", body)
    assert card["source"]["topic"]["display"] == "Ekko"
    assert len(card["summary"]) < 140
    # Links under the guideline's own slug; no override reasons for a topic with none listed.
    assert card["links"][0]["url"] == "https://ehr.example/echo/anbefalinger/mri"
    assert card["overrideReasons"] == []
    # The recommendation quoted as every guideline's cards quote it, then the footer.
    rec, g = LUMBAR.recommendation("mri"), LUMBAR
    assert card["detail"].startswith(f"**{rec.label('da')}** · **{rec.symbols}** · ")
    assert f"> {rec.wording('da')}" in card["detail"]
    assert card["detail"].endswith(f"**Retningslinjens status:** {g.status.text('da')}")


def test_unknown_service_names_every_guidelines_services(two: TestClient) -> None:
    response = two.post(
        "/cds-services/nope", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 404
    text = response.json()["issue"][0]["diagnostics"]
    assert "test-echo-patient-view" in text
    assert SERVICE_IDS["order-sign"] in text


def test_feedback_is_checked_against_the_cards_guideline(two: TestClient) -> None:
    (card,) = call(two, "test-echo-patient-view", hook_request("patient-view"))
    overridden = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-26T09:15:00Z",
        # A reason the lumbar guideline's overview offers, not this card.
        "overrideReason": {
            "reason": {"system": "urn:nkr:cds-override-reason", "code": "acknowledged"}
        },
    }
    response = two.post(
        "/cds-services/test-echo-patient-view/feedback",
        content=orjson.dumps({"feedback": [overridden]}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "codes none" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(("threshold", "card"), [(5, True), (6, False)])
def test_the_guidelines_pain_threshold_option_reaches_the_cards(
    tmp_path: Path, threshold: int, card: bool
) -> None:
    package = LumbarRadiculopathy(Options(pain_threshold=threshold))
    body = hook_request(
        "patient-view",
        conditions=[radiculopathy(60)],
        observations=[pain(5)],
        procedures=[procedure("supervised_exercise")],
    )
    with client_for(tmp_path, package) as client:
        cards = call(client, SERVICE_IDS["patient-view"], body)
    by_topic = {c["source"]["topic"]["code"]: c for c in cards}
    assert ("spine-surgeon-assessment" in by_topic) is card
    if card:
        # The card's assumption names the configured threshold.
        assert "(standard NRS ≥ 5)" in by_topic["spine-surgeon-assessment"]["detail"]
