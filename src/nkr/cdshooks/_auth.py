"""JWT authentication of the EHR, as CDS Hooks 2.0 describes it.

The EHR signs a short-lived JWT with an asymmetric key and sends it as a bearer token; the
service accepts it only from an allowed issuer, verified with that issuer's published keys
(JWKS, from a URL or a file), with ``aud`` equal to the exact endpoint URL called, and only
once (``jti``). ``none`` and HMAC algorithms are refused.

The replay store is in memory, per worker process, and forgets a ``jti`` once its token has
expired: with several workers or a restart, a token can be replayed within its (at most five
minutes') lifetime. A shared store would close that gap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson

from nkr._errors import InputError

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


class AuthError(Exception):
    """The request is not authenticated: answered with 401 and an OperationOutcome."""


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
    """Seen ``jti`` values until their token expires (in memory, per process)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._next_purge = 0.0

    def first_use(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        if now >= self._next_purge:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            self._next_purge = now + 30
        key = (issuer, jti)
        if key in self._seen:
            return False
        self._seen[key] = expires + LEEWAY_SECONDS
        return True


class Authenticator:
    """Checks the bearer JWT of a request against the allowed issuers."""

    def __init__(self, issuers: Mapping[str, str], timeout: float) -> None:
        self._sets: dict[str, _KeySet] = {}
        for issuer, source in issuers.items():
            is_url = source.startswith(("https://", "http://"))
            key_set = _KeySet(source, is_url)
            if not is_url:
                key_set.keys = _load_file(source)
            self._sets[issuer] = key_set
        self._timeout = timeout
        self._replay = ReplayStore()
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
            raise AuthError(f"no key of the issuer's JWKS matches the token (kid {kid!r})")
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
        """The verified claims, or :class:`AuthError` saying what is wrong."""
        if not authorization:
            raise AuthError("missing Authorization header (expected 'Bearer <JWT>')")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("the Authorization header is not 'Bearer <JWT>'")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthError("unsigned JWT (alg 'none') refused")
        if alg.upper().startswith("HS"):
            raise AuthError(f"HMAC-signed JWT ({alg}) refused; use ES384 or RS384")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError(f"JWT algorithm {alg!r} not allowed; use ES384 or RS384")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthError("JWT header typ must be 'JWT'")
        issuer = unverified.get("iss")
        key_set = self._sets.get(issuer) if isinstance(issuer, str) else None
        if key_set is None or not isinstance(issuer, str):
            raise AuthError("JWT issuer (iss) is not on the allowlist")
        jku = header.get("jku")
        if jku is not None and not (key_set.is_url and jku == key_set.source):
            raise AuthError("JWT header jku is not the issuer's allowed JWKS URL")
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
            raise AuthError("JWT has expired (exp)") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"JWT aud must be the endpoint URL called: {audience}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"JWT lacks the required claim {exc.claim!r}") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"JWT refused: {exc}") from None
        now = time.time()
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            raise AuthError("JWT exp is more than five minutes in the future")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthError("JWT jti must be a non-empty string")
        if not self._replay.first_use(issuer, jti, float(exp), now):
            raise AuthError("JWT jti has been used before (replay refused)")
        return claims
