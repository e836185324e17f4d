"""JWT authentication per CDS Hooks 2.0, against a real server with NKR_JWT_ISSUERS set.

Keys are generated here (EC P-384 and RSA); one issuer's JWKS is a file, the other's is served
over loopback HTTP. The server is called at its loopback address, and a token's ``aud`` is the
endpoint under NKR_PUBLIC_BASE_URL (what the EHR knows the service as), not the address called.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ..conftest import AppFactory
from .conftest import Loopback
from .fhir_data import SERVICE_IDS, hook_request

FILE_ISSUER = "https://ehr.example.org"
URL_ISSUER = "https://other-ehr.example.org/auth"
PUBLIC = "https://cds.example.org"


@dataclass
class Keys:
    es: EllipticCurvePrivateKey
    rs: RSAPrivateKey
    url_rs: RSAPrivateKey
    stranger: EllipticCurvePrivateKey


@dataclass
class AuthServer:
    base: str
    keys: Keys
    jwks_url: str
    client: httpx.Client

    def endpoint(self, hook: str = "patient-view") -> str:
        """The endpoint's public URL: what ``aud`` must be."""
        return f"{PUBLIC}/cds-services/{SERVICE_IDS[hook]}"

    def address(self, hook: str = "patient-view") -> str:
        """Where the test calls the endpoint."""
        return f"{self.base}/cds-services/{SERVICE_IDS[hook]}"


def _jwk(public: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if alg.startswith("ES") else RSAAlgorithm
    data: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)
    return data | {"kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def auth_server(
    app_factory: AppFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthServer]:
    keys = Keys(
        es=ec.generate_private_key(ec.SECP384R1()),
        rs=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        url_rs=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        stranger=ec.generate_private_key(ec.SECP384R1()),
    )
    jwks_file = tmp_path_factory.mktemp("jwks") / "ehr-jwks.json"
    jwks_file.write_bytes(
        orjson.dumps(
            {
                "keys": [
                    _jwk(keys.es.public_key(), "ec-1", "ES384"),
                    _jwk(keys.rs.public_key(), "rsa-1", "RS384"),
                ]
            }
        )
    )
    served = orjson.dumps({"keys": [_jwk(keys.url_rs.public_key(), "url-rsa", "RS384")]})
    jwks_server = Loopback(lambda _: (200, served))
    jwks_url = f"{jwks_server.url}/.well-known/jwks.json"
    issuers = f"{FILE_ISSUER}={Path(jwks_file)},{URL_ISSUER}={jwks_url}"
    client = app_factory({"NKR_JWT_ISSUERS": issuers, "NKR_PUBLIC_BASE_URL": PUBLIC})
    yield AuthServer(str(client.base_url).rstrip("/"), keys, jwks_url, client)
    jwks_server.close()


def token(
    key: Any,
    alg: str,
    *,
    aud: str,
    iss: str = FILE_ISSUER,
    kid: str | None = "ec-1",
    exp_in: int = 120,
    jti: str | None = None,
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    now = int(time.time())
    claims = {
        "iss": iss,
        "aud": aud,
        "exp": now + exp_in,
        "iat": now,
        "jti": jti or str(uuid.uuid4()),
    }
    for name in drop:
        del claims[name]
    header = {"typ": "JWT"} | ({"kid": kid} if kid else {}) | (headers or {})
    return jwt.encode(claims, key, algorithm=alg, headers=header)


def call(server: AuthServer, bearer: str | None, hook: str = "patient-view") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return server.client.post(
        server.address(hook), content=orjson.dumps(hook_request(hook)), headers=headers
    )


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert response.headers["www-authenticate"].startswith("Bearer")
    diagnostics: str = body["issue"][0]["diagnostics"]
    return diagnostics


def test_es384_passes(auth_server: AuthServer) -> None:
    good = token(auth_server.keys.es, "ES384", aud=auth_server.endpoint())
    response = call(auth_server, good)
    assert response.status_code == 200, response.text
    assert len(response.json()["cards"]) == 1


def test_rs384_passes(auth_server: AuthServer) -> None:
    good = token(auth_server.keys.rs, "RS384", aud=auth_server.endpoint(), kid="rsa-1")
    assert call(auth_server, good).status_code == 200


def test_rs384_from_jwks_url_passes(auth_server: AuthServer) -> None:
    good = token(
        auth_server.keys.url_rs,
        "RS384",
        aud=auth_server.endpoint("order-sign"),
        iss=URL_ISSUER,
        kid="url-rsa",
        headers={"jku": auth_server.jwks_url},
    )
    assert call(auth_server, good, "order-sign").status_code == 200


def test_missing_token(auth_server: AuthServer) -> None:
    assert "Authorization" in refused(call(auth_server, None))
    response = auth_server.client.post(
        auth_server.address(), content=b"{}", headers={"Authorization": "Basic dXNlcjpwdw=="}
    )
    refused(response)


def test_garbage_token(auth_server: AuthServer) -> None:
    assert "well-formed" in refused(call(auth_server, "not.a.jwt"))


def test_unsigned_token(auth_server: AuthServer) -> None:
    unsigned = token(None, "none", aud=auth_server.endpoint())
    assert "none" in refused(call(auth_server, unsigned))


def test_hmac_token(auth_server: AuthServer) -> None:
    hmac = token(b"a-shared-secret-of-at-least-32-bytes!", "HS256", aud=auth_server.endpoint())
    assert "HMAC" in refused(call(auth_server, hmac))


def test_wrong_audience(auth_server: AuthServer) -> None:
    keys, endpoint = auth_server.keys, auth_server.endpoint()
    # The address called is not the aud either: only NKR_PUBLIC_BASE_URL's endpoint is.
    wrong = (auth_server.base, auth_server.endpoint("order-sign"), endpoint + "/")
    for aud in (*wrong, auth_server.address()):
        assert "aud" in refused(call(auth_server, token(keys.es, "ES384", aud=aud)))


def test_expired(auth_server: AuthServer) -> None:
    old = token(auth_server.keys.es, "ES384", aud=auth_server.endpoint(), exp_in=-120)
    assert "expired" in refused(call(auth_server, old))


def test_exp_too_far_ahead(auth_server: AuthServer) -> None:
    long = token(auth_server.keys.es, "ES384", aud=auth_server.endpoint(), exp_in=3600)
    assert "five minutes" in refused(call(auth_server, long))


def test_replayed_jti(auth_server: AuthServer) -> None:
    once = token(auth_server.keys.es, "ES384", aud=auth_server.endpoint())
    assert call(auth_server, once).status_code == 200
    assert "replay" in refused(call(auth_server, once))


@pytest.mark.parametrize("claim", ["jti", "exp", "iat"])
def test_required_claims(auth_server: AuthServer, claim: str) -> None:
    incomplete = token(auth_server.keys.es, "ES384", aud=auth_server.endpoint(), drop=(claim,))
    assert claim in refused(call(auth_server, incomplete))


def test_unknown_issuer(auth_server: AuthServer) -> None:
    stranger = token(auth_server.keys.es, "ES384", aud=auth_server.endpoint(), iss="https://x.test")
    assert "allowlist" in refused(call(auth_server, stranger))


def test_signed_by_another_key(auth_server: AuthServer) -> None:
    forged = token(auth_server.keys.stranger, "ES384", aud=auth_server.endpoint())
    refused(call(auth_server, forged))


def test_jku_not_on_allowlist(auth_server: AuthServer) -> None:
    # An issuer with a JWKS URL: that URL is the only jku allowed.
    elsewhere = token(
        auth_server.keys.url_rs,
        "RS384",
        aud=auth_server.endpoint(),
        iss=URL_ISSUER,
        kid="url-rsa",
        headers={"jku": "https://attacker.example/jwks.json"},
    )
    assert "jku" in refused(call(auth_server, elsewhere))


def test_jku_ignored_with_keys_from_a_file(auth_server: AuthServer) -> None:
    # An issuer with a JWKS file: verified with the file's keys; its jku is never fetched.
    with_jku = token(
        auth_server.keys.es,
        "ES384",
        aud=auth_server.endpoint(),
        headers={"jku": "https://attacker.example/jwks.json"},
    )
    assert call(auth_server, with_jku).status_code == 200


def test_key_of_other_issuer_refused(auth_server: AuthServer) -> None:
    mixed = token(
        auth_server.keys.url_rs,
        "RS384",
        aud=auth_server.endpoint(),
        iss=FILE_ISSUER,
        kid="url-rsa",
    )
    refused(call(auth_server, mixed))


def test_discovery_stays_open(auth_server: AuthServer) -> None:
    assert auth_server.client.get("/cds-services").status_code == 200


def test_feedback_needs_its_own_audience(auth_server: AuthServer) -> None:
    # Feedback on a card the service really issued, with a reason that card offers.
    issued = call(auth_server, token(auth_server.keys.es, "ES384", aud=auth_server.endpoint()))
    [card] = issued.json()["cards"]
    url = auth_server.address() + "/feedback"
    aud = auth_server.endpoint() + "/feedback"
    body = orjson.dumps(
        {
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "overrideReason": {"reason": card["overrideReasons"][0]},
                    "outcomeTimestamp": "2026-11-26T08:00:00Z",
                }
            ]
        }
    )
    keys = auth_server.keys
    json = {"Content-Type": "application/json"}
    wrong = token(keys.es, "ES384", aud=auth_server.endpoint())
    refused(
        auth_server.client.post(
            url, content=body, headers={"Authorization": f"Bearer {wrong}"} | json
        )
    )
    right = token(keys.es, "ES384", aud=aud)
    response = auth_server.client.post(
        url, content=body, headers={"Authorization": f"Bearer {right}"} | json
    )
    assert response.status_code == 200, response.text
