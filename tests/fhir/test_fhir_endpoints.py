"""The /fhir ValueSet endpoints: in-process on the defaults; a deployment's extra value sets
against a real ``nkr serve`` (which publishes them, or refuses to start on a broken file)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from nkr.guidelines.lumbar_radiculopathy.fhir import VALUESET_IDS
from nkr.guidelines.lumbar_radiculopathy.fhir import shipped as shipped_valuesets

from ..conftest import IN_PROCESS_BASE, ServerFactory

FHIR_JSON = "application/fhir+json"


def get(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> httpx.Response:
    return client.get(path, params=params)


def body(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith(FHIR_JSON)
    return response.json()


def test_search_returns_every_value_set_as_a_searchset_bundle(app_client: httpx.Client) -> None:
    response = get(app_client, "/fhir/ValueSet")
    assert response.status_code == 200
    bundle = body(response)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle["entry"]) == 11
    assert [e["resource"]["id"] for e in bundle["entry"]] == list(VALUESET_IDS)
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"{IN_PROCESS_BASE}/fhir/ValueSet/{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
        assert entry["resource"]["expansion"]["total"] >= 1


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"_id": "red-flags"}, ["red-flags"]),
        ({"_id": "bed-rest,acupuncture"}, ["acupuncture", "bed-rest"]),
        ({"_id": "nothing"}, []),
        ({"url": "urn:nkr:valueset:pain-intensity"}, ["pain-intensity"]),
        ({"url": "urn:nkr:valueset:pain-intensity|0.1.0"}, ["pain-intensity"]),
        ({"url": "http://example.org/ValueSet/x"}, []),
        ({"url": "urn:nkr:valueset:bed-rest", "_id": "bed-rest"}, ["bed-rest"]),
        ({"url": "urn:nkr:valueset:bed-rest", "_id": "acupuncture"}, []),
    ],
)
def test_search_filters_by_id_and_url(
    app_client: httpx.Client, params: dict[str, str], ids: list[str]
) -> None:
    bundle = body(get(app_client, "/fhir/ValueSet", params))
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ids
    assert bundle["total"] == len(ids)


def test_read_returns_the_value_set_with_provenance(app_client: httpx.Client) -> None:
    response = get(app_client, "/fhir/ValueSet/lumbar-radiculopathy")
    assert response.status_code == 200
    vs = body(response)
    assert vs["resourceType"] == "ValueSet"
    assert vs["url"] == "urn:nkr:valueset:lumbar-radiculopathy"
    contains = {(c["system"], c["code"]): c for c in vs["expansion"]["contains"]}
    m541 = contains[("http://hl7.org/fhir/sid/icd-10", "M54.1")]
    assert m541["display"] == "Radiculopathy"
    assert m541["extension"][0]["valueString"].startswith("verified: WHO ICD-10 2019")
    assert ("urn:oid:1.2.208.176.2.4.12", "DM541B") in contains
    assert ("urn:oid:1.2.208.176.2.4", "DM541B") in contains


@pytest.mark.parametrize("vs_id", ["nothing", "RED-FLAGS", "red-flags.json"])
def test_an_unknown_id_is_404_with_an_operation_outcome(
    app_client: httpx.Client, vs_id: str
) -> None:
    response = get(app_client, f"/fhir/ValueSet/{vs_id}")
    assert response.status_code == 404
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert outcome["issue"][0]["code"] == "not-found"


def test_a_deployment_s_extra_codes_are_published(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    # A real server: /fhir serves the value sets of the process's registry (from its
    # environment), not of the registry create_app is given.
    extra = {
        "id": "bed-rest",
        "codes": [
            {
                "system": "urn:oid:1.2.208.999.1",
                "code": "SENGELEJE",
                "display": "Sengeleje",
                "provenance": "local: Region test order catalogue",
            }
        ],
    }
    (tmp_path / "local.json").write_text(json.dumps(extra), encoding="utf-8")
    base = server_factory({"NKR_VALUESET_DIR": str(tmp_path)})
    vs = body(httpx.get(f"{base}/fhir/ValueSet/bed-rest", timeout=10))
    shipped = len(shipped_valuesets().get("bed-rest").codes)
    assert vs["expansion"]["total"] == shipped + 1
    local = vs["expansion"]["contains"][-1]
    assert (local["system"], local["code"], local["display"]) == (
        "urn:oid:1.2.208.999.1",
        "SENGELEJE",
        "Sengeleje",
    )
    assert local["extension"][0]["valueString"] == "local: Region test order catalogue"


def test_a_broken_extra_file_stops_the_server_at_start_up_naming_file_and_field(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps({"id": "bed-rest", "codes": [{"system": "urn:x:y"}]}))
    with pytest.raises(RuntimeError) as info:
        server_factory({"NKR_VALUESET_DIR": str(tmp_path)})
    message = str(info.value)
    assert "broken.json" in message
    assert "codes[0].code" in message


def test_a_value_set_two_guidelines_give_differently_stops_start_up(tmp_path: Path) -> None:
    from nkr import InputError
    from nkr.fhir._router import create_valueset_router
    from nkr.fhir._valuesets import load_valuesets
    from nkr.guidelines.lumbar_radiculopathy.fhir import RED_FLAG_ATTRIBUTE, VALUESET_DIR, load

    extra = tmp_path / "extra"
    extra.mkdir()
    code = {"system": "urn:example", "code": "x", "provenance": "local: a test"}
    (extra / "bed-rest.json").write_text(json.dumps({"id": "bed-rest", "codes": [code]}))
    same = shipped_valuesets()
    # The same value sets twice (two packages of one guideline family) are served once.
    router = create_valueset_router(same, same)
    assert len(router.routes) == 2
    # Loaded again (its expansion made at another time), it is still the same value set.
    later = load_valuesets(
        VALUESET_DIR, VALUESET_IDS, attributes=(RED_FLAG_ATTRIBUTE,), now=dt.datetime(2030, 1, 1)
    )
    create_valueset_router(same, later)
    with pytest.raises(InputError, match="'bed-rest' is given by two guidelines"):
        create_valueset_router(same, load(extra))
