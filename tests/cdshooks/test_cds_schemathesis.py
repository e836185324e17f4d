"""Property-based fuzzing of the CDS Hooks endpoints from the app's own OpenAPI schema: no
input, valid or not, may yield a server error.

Each operation gets positive cases (bodies that follow the documented schema) and negative
ones (bodies that break it), a bounded number of each, sent to the real server.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok

from .conftest import Cds

EXAMPLES_PER_MODE = 50
CLOSED_PORT = "http://127.0.0.1:9"
Operation = schemathesis.APIOperation[Any, Any, Any, Any]


@pytest.fixture(scope="module")
def operations(cds: Cds) -> list[Operation]:
    schema = schemathesis.openapi.from_url(f"{cds.base}/openapi.json")
    found: list[Operation] = []
    for result in schema.include(path_regex="^/cds-services").get_all_operations():
        assert isinstance(result, Ok), result
        found.append(result.ok())
    assert len(found) == 3
    return found


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode))
def test_no_server_errors(operations: list[Operation], mode: schemathesis.GenerationMode) -> None:
    session = requests.Session()
    for operation in operations:
        if mode is schemathesis.GenerationMode.NEGATIVE and operation.method == "get":
            continue  # nothing in GET /cds-services can be made invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            if isinstance(case.body, dict) and "fhirServer" in case.body:
                # Only loopback: a closed port, so fetching fails fast (HTTP 412).
                case.body["fhirServer"] = CLOSED_PORT
            response = case.call(session=session, timeout=10)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])

        no_server_error()
