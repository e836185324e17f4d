"""JWT authentication of the EHR, as CDS Hooks 2.0 describes it.

The EHR signs a short-lived JWT with an asymmetric key and sends it as a bearer token; the
service accepts it only from an allowed issuer, verified with that issuer's keys, with ``aud``
equal to the exact endpoint URL under ``NKR_PUBLIC_BASE_URL`` (never one derived from the
request's Host header), and only once (``jti``). ``none`` and HMAC algorithms are refused. A
token longer than ``NKR_MAX_TOKEN_BYTES`` is refused before it is decoded at all: a bogus
multi-megabyte token must not cost the service more than a length check.

Keys: an issuer configured with a JWKS file is verified with that file's keys only; a ``jku``
in its tokens is ignored and never fetched (an EHR such as HL7's CDS Hooks sandbox sends one on
every token, and a hospital without internet access must still be able to use the file). An
issuer configured with a JWKS URL has that one URL as its allowlist: a ``jku`` naming any other
URL is refused, and nkr only ever fetches the configured URL.

The replay store is a table in SQLite in the data folder (:class:`ReplayStore`), shared by
every worker process and kept across restarts; a ``jti`` is forgotten once its token has
expired.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson

from nkr._errors import InputError
from nkr._metrics import JWT_REJECTIONS

log = logging.getLogger("nkr.cdshooks")

# Asymmetric algorithms only; CDS Hooks recommends ES384 and RS384.
ALLOWED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
# CDS Hooks: exp SHALL be no more than five minutes in the future.
MAX_LIFETIME_SECONDS = 300
# Clock skew tolerated between the EHR and the service.
LEEWAY_SECONDS = 30
JWKS_URL_TTL_SECONDS = 3600.0
# After an unknown kid, refetch a JWKS URL at most this often (key rotation, not a DoS lever).
JWKS_REFETCH_SECONDS = 60.0
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
# The replay table's file in the data folder (beside the feedback store, not inside it: the
# replay check writes on every call and need not wait for feedback's synced commits).
REPLAY_DB_NAME = "jti.sqlite3"
# Expired jti rows are deleted at most this often (by whichever call comes first).
PRUNE_SECONDS = 60.0


class AuthError(Exception):
    """The request is not authenticated: answered with 401 and an OperationOutcome.

    ``reason`` is a short code for the metrics label (``nkr_jwt_rejections_total``); the
    message is for the caller and never holds the token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthUnavailable(AuthError):
    """The token could not be checked for replay (the database failed): answered with 503,
    since the fault is the service's, and refused all the same (deny by default)."""


@dataclass(slots=True)
class _KeySet:
    source: str
    is_url: bool
    keys: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: float = 0.0
    parsed: dict[tuple[str | None, str], jwt.PyJWK] = field(default_factory=dict)


def parse_issuers(pairs: tuple[str, ...]) -> dict[str, str]:
    """``issuer=jwks-url-or-file`` pairs as a dict; the issuer is everything before the
    first ``=``."""
    issuers: dict[str, str] = {}
    for pair in pairs:
        issuer, sep, source = pair.partition("=")
        if not sep or not issuer.strip() or not source.strip():
            raise InputError(f"setting NKR_JWT_ISSUERS: '{pair}' is not 'issuer=jwks-url-or-file'")
        issuers[issuer.strip()] = source.strip()
    return issuers


def _jwks_keys(data: object, source: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InputError(f"{source}: not a JWKS (expected an object with a 'keys' array)")
    return [k for k in data["keys"] if isinstance(k, dict)]


def _load_file(path: str) -> list[dict[str, Any]]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"JWKS file {path}: cannot read: {exc.strerror}") from None
    try:
        return _jwks_keys(orjson.loads(raw), f"JWKS file {path}")
    except orjson.JSONDecodeError:
        raise InputError(f"JWKS file {path}: not valid JSON") from None


class ReplayStore:
    """Seen ``jti`` values until their token expires, in a SQLite table that every worker
    process shares and that survives a restart.

    One connection per process (WAL, so that readers never wait for the writer); the check and
    the record are one ``INSERT ... ON CONFLICT``, so of two workers racing on the same ``jti``
    exactly one sees its row inserted. A row whose token has expired may be taken over by a new
    token with the same ``jti``. The ``jti`` is stored as its SHA-256 digest: fixed size, and
    nothing of the token kept. ``synchronous=NORMAL``: a record survives a crash of the process
    (kill -9), and only an operating-system crash may lose the last ones, of tokens that expire
    within minutes anyway.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=5.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS seen_jti (issuer TEXT NOT NULL, jti BLOB NOT NULL, "
            "expires REAL NOT NULL, PRIMARY KEY (issuer, jti)) WITHOUT ROWID"
        )
        self._conn.execute("CREATE INDEX IF NOT EXISTS seen_jti_expires ON seen_jti (expires)")
        self._lock = threading.Lock()
        self._next_prune = 0.0

    @classmethod
    def in_dir(cls, data_dir: Path) -> ReplayStore:
        return cls(data_dir / REPLAY_DB_NAME)

    def first_use(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        """Record ``jti`` until ``expires``; False when it is already recorded and unexpired."""
        digest = hashlib.sha256(jti.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_SECONDS
                self._conn.execute("DELETE FROM seen_jti WHERE expires <= ?", (now,))
            cursor = self._conn.execute(
                "INSERT INTO seen_jti (issuer, jti, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (issuer, jti) DO UPDATE SET expires = excluded.expires "
                "WHERE seen_jti.expires <= ?",
                (issuer, digest, expires, now),
            )
            return cursor.rowcount == 1

    def count(self) -> int:
        """How many rows the table holds (for tests and operators)."""
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM seen_jti").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Authenticator:
    """Checks the bearer JWT of a request against the allowed issuers."""

    def __init__(
        self,
        issuers: Mapping[str, str],
        *,
        timeout: float,
        replay: ReplayStore,
        max_token_bytes: int,
    ) -> None:
        self._sets: dict[str, _KeySet] = {}
        for issuer, source in issuers.items():
            is_url = source.startswith(("https://", "http://"))
            key_set = _KeySet(source, is_url)
            if not is_url:
                key_set.keys = _load_file(source)
            self._sets[issuer] = key_set
        self._timeout = timeout
        self._replay = replay
        self._max_token_bytes = max_token_bytes
        self._lock = asyncio.Lock()

    async def _fetch(self, key_set: _KeySet) -> None:
        async with self._lock:
            now = time.monotonic()
            if key_set.fetched_at and now - key_set.fetched_at < JWKS_REFETCH_SECONDS:
                return
            key_set.fetched_at = now
            try:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.get(key_set.source)
                response.raise_for_status()
                key_set.keys = _jwks_keys(orjson.loads(response.content), key_set.source)
                key_set.parsed.clear()
            except (httpx.HTTPError, orjson.JSONDecodeError, InputError):
                # Keep the keys we had; the token is refused if none of them fits.
                return

    async def _key(self, key_set: _KeySet, kid: str | None, alg: str) -> jwt.PyJWK:
        if key_set.is_url and (
            not key_set.fetched_at or time.monotonic() - key_set.fetched_at > JWKS_URL_TTL_SECONDS
        ):
            await self._fetch(key_set)
        found = self._find(key_set, kid, alg)
        if found is None and key_set.is_url:
            await self._fetch(key_set)
            found = self._find(key_set, kid, alg)
        if found is None:
            raise AuthError(
                "unknown-key", f"no key of the issuer's JWKS matches the token (kid {kid!r})"
            )
        return found

    @staticmethod
    def _find(key_set: _KeySet, kid: str | None, alg: str) -> jwt.PyJWK | None:
        cached = key_set.parsed.get((kid, alg))
        if cached is not None:
            return cached
        candidates = [k for k in key_set.keys if kid is None or k.get("kid") == kid]
        for data in candidates:
            if data.get("alg") not in (None, alg):
                continue
            try:
                key = jwt.PyJWK(data, algorithm=alg)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
                continue
            key_set.parsed[(kid, alg)] = key
            return key
        return None

    async def check(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The verified claims, or :class:`AuthError` saying what is wrong (each refusal is
        counted in ``nkr_jwt_rejections_total`` by its reason code)."""
        try:
            return await self._check(authorization, audience)
        except AuthError as exc:
            JWT_REJECTIONS.labels(exc.reason).inc()
            raise

    async def _check(self, authorization: str | None, audience: str) -> dict[str, Any]:
        if not authorization:
            raise AuthError(
                "missing-token", "missing Authorization header (expected 'Bearer <JWT>')"
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("bad-scheme", "the Authorization header is not 'Bearer <JWT>'")
        # Before any decoding: the cost of a refusal must not grow with the token.
        if len(token) > self._max_token_bytes:
            raise AuthError(
                "token-too-long",
                f"the bearer token is longer than {self._max_token_bytes} bytes",
            )
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("malformed", "the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthError("bad-alg", "unsigned JWT (alg 'none') refused")
        if alg.upper().startswith("HS"):
            raise AuthError("bad-alg", f"HMAC-signed JWT ({alg}) refused; use ES384 or RS384")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError("bad-alg", f"JWT algorithm {alg!r} not allowed; use ES384 or RS384")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthError("bad-typ", "JWT header typ must be 'JWT'")
        issuer = unverified.get("iss")
        key_set = self._sets.get(issuer) if isinstance(issuer, str) else None
        if key_set is None or not isinstance(issuer, str):
            raise AuthError("unknown-issuer", "JWT issuer (iss) is not on the allowlist")
        # Keys from a file: jku is ignored (never fetched). Keys from a URL: that URL is the
        # only jku allowed, and the only one ever fetched.
        jku = header.get("jku")
        if key_set.is_url and jku is not None and jku != key_set.source:
            raise AuthError("jku-not-allowed", "JWT header jku is not the issuer's JWKS URL")
        kid = header.get("kid")
        key = await self._key(key_set, kid if isinstance(kid, str) else None, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired", "JWT has expired (exp)") from None
        except jwt.InvalidAudienceError:
            raise AuthError(
                "bad-aud", f"JWT aud must be the endpoint URL called: {audience}"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(
                "missing-claim", f"JWT lacks the required claim {exc.claim!r}"
            ) from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad-signature", "JWT signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise AuthError("invalid-claims", f"JWT refused: {exc}") from None
        now = time.time()
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            raise AuthError("lifetime-too-long", "JWT exp is more than five minutes in the future")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthError("bad-jti", "JWT jti must be a non-empty string")
        try:
            first = await asyncio.to_thread(
                self._replay.first_use, issuer, jti, float(exp) + LEEWAY_SECONDS, now
            )
        except sqlite3.Error as exc:
            log.error("JWT replay store failed: %s", type(exc).__name__)
            raise AuthUnavailable(
                "replay-store-error", "the JWT replay check is unavailable; try again"
            ) from None
        if not first:
            raise AuthError("replay", "JWT jti has been used before (replay refused)")
        return claims
