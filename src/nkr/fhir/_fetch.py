"""Prefetch: the FHIR queries the services ask for, and fetching what the EHR did not send.

Fetching is where a caller's ``fhirServer`` would make nkr reach into the hospital's network
with the EHR's bearer token, so it is fenced in (issue 9):

- **Deny by default.** nkr fetches only from servers on ``NKR_FHIR_SERVERS``; the entries and
  each request's ``fhirServer`` are compared in one normal form (:func:`normalise_base`), so
  ``..`` segments, user names, percent-encodings or a spelled-out default port neither slip
  past the list nor keep a legitimate server off it. Next-page links are held to the same base.
- **No oracle.** Every failure of an allowed fetch (closed port, hang-up, HTTP error, not JSON,
  timeout, too large) gives the caller the same text; the log gets the failure's class and the
  allowlist entry's number, never a URL, a token, a body or a patient id.
- **No stalls.** One HTTP client per app, created at start-up (creating one loads the CA bundle,
  ~80 ms, synchronously on the event loop), with a connection limit; a bounded number of fetches
  in flight per worker, beyond which a call gets HTTP 503 at once instead of queueing.
- **Bounded answers.** The bytes a call may read (all keys and pages together) are capped while
  the answers stream in, gzip included, and one deadline covers the whole fetch.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import importlib.util
import ipaddress
import logging
import re
import string
import sys
import urllib.request
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import idna

from nkr import _metrics
from nkr._errors import InputError
from nkr.fhir._read import Bundle, Entry, Resource, decode_resource
from nkr.fhir._transport import Http11Pool

log = logging.getLogger("nkr.fhir.fetch")
# httpx logs every request's URL at INFO level, and these URLs carry patient ids.
logging.getLogger("httpx").setLevel(logging.WARNING)
# httpcore tries "import sniffio" several times per request (to tell asyncio from trio) and
# runs on asyncio without it; not installed, every try searches sys.path again (~0.2 ms each,
# most of a fetch's own cost). Recorded as absent, the import fails at once, as it would anyway.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

# Search results are read page by page up to this bound; more pages than this is an answer
# nkr cannot use safely (the latest observation could be on a page it never read).
MAX_PAGES: Final = 10

_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z][A-Za-z0-9]*)\s*\}\}")
_ANY_TOKEN = re.compile(r"\{\{.*?\}\}")
# FHIR's id type (and not only dots): also keeps a context value from changing the query's
# path or parameters.
_FHIR_ID = re.compile(r"(?=.*[A-Za-z0-9])[A-Za-z0-9\-.]{1,64}")


class PrefetchUnavailable(Exception):
    """Prefetch keys that the request lacks and nkr could not fetch (CDS Hooks: HTTP 412).

    ``key`` names every missing key (comma-separated); the message names them and the reason,
    never a URL, port, network error, token or patient value.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"prefetch {key}: {reason}")
        self.key = key
        self.reason = reason


def fill_template(template: str, context: Mapping[str, Any]) -> str:
    """The query of a prefetch template, with ``{{context.X}}`` replaced by the context value.

    Raises :class:`~nkr.InputError` when a value is missing or is not a FHIR id, and
    ``ValueError`` for a token other than ``{{context.X}}``.
    """

    def value(m: re.Match[str]) -> str:
        name = m[1]
        given = context.get(name)
        if not isinstance(given, str) or _FHIR_ID.fullmatch(given) is None:
            raise InputError(f"context.{name}: required by the prefetch, a FHIR id")
        return given

    filled = _TOKEN.sub(value, template)
    if _ANY_TOKEN.search(filled):
        raise ValueError(f"unsupported prefetch token in {template!r}")
    return filled


# -- the answers a caller gets: each names the keys, never a URL, a port or a network error ---

NOT_CONFIGURED: Final = (
    "missing from the request, and fetching is not configured (NKR_FHIR_SERVERS)"
)
NO_SERVER: Final = "missing from the request, which names no fhirServer to fetch it from"
NOT_ALLOWED: Final = (
    "missing from the request, and fhirServer is not one this service may fetch from "
    "(NKR_FHIR_SERVERS)"
)
# One text for every failure of an allowed fetch: a caller must not learn from nkr which ports
# are open, what answers there, or how (the log says why, see Fetcher.fetch_missing).
FETCH_FAILED: Final = "missing from the request, and could not be fetched from fhirServer"
BUSY: Final = (
    "missing from the request, and this service is fetching as much as it may at once "
    "(NKR_FHIR_MAX_CONCURRENT_FETCHES); retry shortly"
)
# Seconds a caller is asked to wait after a 503: fetch slots free up as fetches finish.
RETRY_AFTER_SECONDS: Final = 1


class FetchBusy(Exception):
    """Every fetch slot of this worker is taken: the call gets HTTP 503 with ``Retry-After``
    rather than waiting behind fetches that may take their whole timeout."""

    def __init__(self, keys: str) -> None:
        super().__init__(f"prefetch {keys}: {BUSY}")


# -- URLs in one normal form --------------------------------------------------------------------

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED: Final = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# The characters a path may keep: RFC 3986 pchar and "/", without ";" (servlet containers read
# "..;" as ".."), and with no percent-encoding left once unreserved characters are decoded
# (an encoded "/" or "%" could be decoded again by the server, past the allowlist).
_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/]*")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")


def _host(raw: str | None) -> str:
    """A host in normal form: lower case, IDNA (punycode) for non-ASCII names, IP addresses in
    their canonical form; anything else that is no plain host name is refused."""
    if not raw or "%" in raw:
        raise ValueError("no usable host")
    if ":" in raw:  # an IPv6 literal, its brackets taken off by urlsplit
        try:
            return f"[{ipaddress.IPv6Address(raw).compressed}]"
        except ValueError:
            raise ValueError("not an IPv6 address") from None
    name = raw.removesuffix(".")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise ValueError("not a valid host name") from None
    labels = name.lower().split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("not a valid host name")
    if labels[-1].isdigit():
        # Numeric: only a dotted IPv4 address ("127.1", "2130706433" and "0x7f.1" are refused).
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise ValueError("not a dotted IPv4 address") from None
    return ".".join(labels)


def _path(raw: str) -> str:
    """A path in normal form: unreserved characters decoded, ``.`` and ``..`` resolved."""
    path = _PERCENT.sub(
        lambda m: chr(int(m[1], 16)) if chr(int(m[1], 16)) in _UNRESERVED else m[0], raw or "/"
    )
    if not path.startswith("/") or _PATH.fullmatch(path) is None:
        raise ValueError("characters a FHIR base path does not need")
    # RFC 3986, section 5.2.4, for an absolute path: never above the root.
    out: list[str] = []
    segments = path.split("/")[1:]
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")
    return "/" + "/".join(out)


def _split(url: str, *, query_allowed: bool) -> tuple[str, str, str]:
    """An http(s) URL's origin (``scheme://host:port``), path and query in normal form; raises
    ``ValueError`` naming what is wrong (never echoing the URL)."""
    if any(c <= " " or c in "\x7f\\" for c in url):
        # urlsplit would quietly drop tabs and newlines; WHATWG parsers read "\" as "/".
        raise ValueError("spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("not a URL with a valid host and port") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("a user name or password in the URL")
    if "#" in url:
        raise ValueError("a fragment")
    if "?" in url and not query_allowed:
        raise ValueError("a query")
    if not parts.path.isascii() or not parts.query.isascii() or port == 0:
        raise ValueError("not a plain http(s) URL")
    origin = f"{scheme}://{_host(parts.hostname)}:{port or _DEFAULT_PORTS[scheme]}"
    return origin, _path(parts.path), parts.query


def normalise_base(url: str) -> str:
    """A FHIR base URL in normal form, ending in ``/``: scheme and host in lower case (IDNA for
    non-ASCII host names), the port always given, percent-encoded unreserved characters decoded,
    ``.`` and ``..`` segments resolved. Raises ``ValueError`` for a URL that is no plain http(s)
    base: user name or password, query, fragment, encoded ``/`` or ``%``, ``;``, a backslash.

    ``http://HOST:80/fhir/`` and ``http://host/%66hir`` both become ``http://host:80/fhir/``;
    ``http://host/fhir/../x`` becomes ``http://host:80/x/``, which an allowlist entry
    ``http://host/fhir`` does not cover.
    """
    origin, path, _ = _split(url, query_allowed=False)
    return origin + path.rstrip("/") + "/"


def _on_base(url: str, base: str) -> str | None:
    """A next-page link in normal form when it lies on ``base`` (a normal form), else None: the
    bearer token must go nowhere else, not to another server nor up out of the base path."""
    try:
        origin, path, query = _split(url, query_allowed=True)
    except ValueError:
        return None
    # HAPI-style next links point at the base itself ("{base}?_getpages=..."), without a slash.
    if not (origin + path.rstrip("/") + "/").startswith(base):
        return None
    return origin + path + ("?" + query if query else "")


class FhirServers:
    """The FHIR servers nkr may fetch from (``NKR_FHIR_SERVERS``): base URL prefixes in normal
    form, each ending in ``/`` so that ``https://ehr.example/fhir`` does not allow
    ``https://ehr.example/fhirx``. Empty: no fetching at all."""

    def __init__(self, urls: Iterable[str]) -> None:
        bases = []
        for number, url in enumerate(urls, 1):
            try:
                bases.append(normalise_base(url))
            except ValueError as exc:
                # The entry itself is not echoed: it could hold a password.
                raise ValueError(f"entry {number}: {exc}") from None
        self.bases: Final = tuple(bases)

    def __bool__(self) -> bool:
        return bool(self.bases)

    def match(self, url: str) -> tuple[str, int] | None:
        """``url``'s base in normal form and the number (from 1) of the entry that allows it,
        or None when no entry does (or ``url`` is no plain http(s) base)."""
        try:
            base = normalise_base(url)
        except ValueError:
            return None
        for number, allowed in enumerate(self.bases, 1):
            if base.startswith(allowed):
                return base, number
        return None


# -- fetching -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """What one call's fetching may take: one deadline and one byte budget for all its keys and
    pages together, and a bound on the pages of each search."""

    timeout_seconds: float = 3.0
    max_response_bytes: int = 4_000_000
    max_pages: int = MAX_PAGES


class _NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing. The client is shared by every call: a cookie that one
    call's FHIR server set must not go out with another call's fetch (another patient, another
    allowed server). Not reading ``Set-Cookie`` also spares every answer some work."""

    def extract_cookies(self, response: object, request: urllib.request.Request) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


def new_client(
    max_in_flight: int, transport: httpx.AsyncBaseTransport | None = None, *, keys: int = 8
) -> httpx.AsyncClient:
    """The HTTP client an app fetches with, for its whole lifetime, on nkr's HTTP/1.1 pool
    (:class:`~nkr.fhir._transport.Http11Pool`): at most a connection for each key of every
    fetch in flight. No redirects (the token would follow them), no cookies kept, no proxy.
    (``transport``: a test's or benchmark's ``httpx.MockTransport``, whose answers should
    stream, ``httpx.Response(stream=...)``, as a network's do; ``keys``: the most prefetch
    keys one fetch asks for.)"""
    connections = max_in_flight * keys
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30
    )
    return httpx.AsyncClient(
        follow_redirects=False,
        cookies=_NoCookies(),
        transport=transport or Http11Pool(limits),
    )


class _Failed(Exception):
    """Why a fetch failed, for the log: an outcome (a metrics label) and a detail (an error
    class, an HTTP status, a shape), never a URL or anything from a body."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


@dataclass(slots=True)
class _Call:
    """One call's fetch: what every request of it shares."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    base: str
    deadline: float  # loop time
    budget: int  # bytes the call may still read, over all its keys and pages

    async def get(self, url: str) -> Resource:
        # Each request gets what is left of the call's deadline; the deadline itself is kept by
        # asyncio.timeout_at around the whole fetch, which a server sending a byte at a time
        # (every read within its timeout) cannot stretch.
        left = max(self.deadline - asyncio.get_running_loop().time(), 0.001)
        try:
            async with self.client.stream(
                "GET", url, headers=self.headers, timeout=httpx.Timeout(left)
            ) as response:
                if response.status_code != 200:
                    raise _Failed("error", f"HTTP {response.status_code}")
                body = await self._read(response)
        except httpx.TimeoutException as exc:
            raise _Failed("timeout", type(exc).__name__) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _Failed("error", type(exc).__name__) from None
        try:
            resource: Resource = decode_resource(bytes(body))
        except InputError as exc:
            # Decoded with the same structs as a request's prefetch; the log gets the
            # location, never a value.
            what = "JSON" if "not valid JSON" in exc.problem else f"FHIR R4 (at {exc.location})"
            raise _Failed("error", f"an answer that is not {what}") from None
        return resource

    async def _read(self, response: httpx.Response) -> bytearray:
        """The body, read as it streams in and given up on as soon as it exceeds the call's
        budget (also when ``Content-Length`` announces more, before reading any of it); a gzip
        body is inflated no further than the budget, so a small bomb cannot blow up."""
        too_large = _Failed("too-large", "an answer over NKR_FHIR_MAX_RESPONSE_BYTES")
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.budget:
            raise too_large
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise _Failed("error", "a Content-Encoding other than gzip")
        inflate = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
        body = bytearray()
        async for raw in response.aiter_raw():
            # budget + 1: inflating stops at one byte over the budget, which is then exceeded.
            chunk = raw if inflate is None else inflate.decompress(raw, self.budget + 1)
            self.budget -= len(chunk)
            if self.budget < 0:
                raise too_large
            body += chunk
        if inflate is not None and not inflate.eof:
            raise _Failed("error", "a gzip answer cut short")
        return body

    async def fetch(self, query: str, max_pages: int) -> Resource:
        """One key: the resource, or a searchset Bundle with the entries of every page."""
        data = await self.get(self.base + query)
        if "?" not in query:
            expected = query.split("/", 1)[0]
            if data.resource_type != expected:
                raise _Failed("error", f"an answer that is not a {expected}")
            return data
        entries: list[Entry] = []
        for page in range(max_pages):
            if type(data) is not Bundle:
                raise _Failed("error", "a search answer that is not a Bundle")
            entries.extend(data.entry or ())
            next_url = data.next_url()
            if next_url is None:
                return Bundle(type="searchset", entry=entries)
            if page + 1 == max_pages:
                break
            url = _on_base(next_url, self.base)
            if url is None:
                raise _Failed("error", "a next-page link off the fhirServer base")
            data = await self.get(url)
        raise _Failed("error", f"more than {max_pages} pages of results")


def _count(outcome: str, keys: list[str]) -> None:
    _metrics.FETCHES.labels(outcome).inc(len(keys))


class Fetcher:
    """Fetching missing prefetch for one app in one worker process: the allowlist, the shared
    HTTP client (set by the app's lifespan), the limits of each fetch and the bound on fetches
    in flight.

    A *fetch* is one call's fetching of all its missing keys; while ``max_in_flight`` of them
    run, a further call needing one gets :class:`FetchBusy` at once (HTTP 503), so that a FHIR
    server that hangs ties up a bounded share of the worker and of its connections, never the
    calls that need no fetch.
    """

    def __init__(
        self,
        servers: FhirServers,
        client: httpx.AsyncClient | None,
        limits: FetchLimits,
        max_in_flight: int,
    ) -> None:
        self.servers = servers
        self.client = client
        self.limits = limits
        self._slots = asyncio.Semaphore(max_in_flight)

    async def fetch_missing(
        self,
        *,
        prefetch: Mapping[str, Any],
        context: Mapping[str, Any],
        fhir_server: str | None,
        fhir_authorization: Mapping[str, Any] | None,
        templates: Mapping[str, str],
    ) -> dict[str, Any]:
        """The prefetch with every key of ``templates`` that ``prefetch`` lacks fetched from
        ``fhir_server`` (keys given as ``null`` mean "no data" and are kept as they are).

        Requests send ``Authorization: Bearer <access_token>`` when ``fhir_authorization`` has
        one, and only to an allowed server. Raises :class:`PrefetchUnavailable` naming every
        missing key (HTTP 412), :class:`FetchBusy` when no fetch slot is free (HTTP 503), and
        :class:`~nkr.InputError` when the context lacks a value a template needs.
        """
        missing = [key for key in templates if key not in prefetch]
        result = dict(prefetch)
        if not missing:
            return result
        queries = {key: fill_template(templates[key], context) for key in missing}
        keys = ", ".join(missing)
        matched = self.servers.match(fhir_server) if self.servers and fhir_server else None
        if matched is None:
            _count("denied", missing)
            if not self.servers:
                raise PrefetchUnavailable(keys, NOT_CONFIGURED)
            if not fhir_server:
                raise PrefetchUnavailable(keys, NO_SERVER)
            log.warning("prefetch fetch refused: fhirServer is not on NKR_FHIR_SERVERS")
            raise PrefetchUnavailable(keys, NOT_ALLOWED)
        base, entry = matched
        if self._slots.locked():
            _count("busy", missing)
            raise FetchBusy(keys)
        async with self._slots:
            try:
                fetched = await self._fetch(base, queries, fhir_authorization)
            except _Failed as failed:
                _count(failed.outcome, missing)
                log.warning(
                    "prefetch fetch failed (%s): %s; NKR_FHIR_SERVERS entry %d",
                    failed.outcome,
                    failed.detail,
                    entry,
                )
                raise PrefetchUnavailable(keys, FETCH_FAILED) from None
        _count("ok", missing)
        result.update(fetched)
        return result

    async def _fetch(
        self, base: str, queries: Mapping[str, str], authorization: Mapping[str, Any] | None
    ) -> dict[str, Resource]:
        if self.client is None:
            raise _Failed("error", "no HTTP client: the app's lifespan has not run")
        # gzip only: it is inflated within the byte budget (httpx's own decoding is not).
        headers = {"Accept": "application/fhir+json", "Accept-Encoding": "gzip"}
        token = (authorization or {}).get("access_token")
        if isinstance(token, str) and token:
            headers["Authorization"] = f"Bearer {token}"
        deadline = asyncio.get_running_loop().time() + self.limits.timeout_seconds
        call = _Call(self.client, headers, base, deadline, self.limits.max_response_bytes)
        try:
            # A task group cancels the other keys as soon as one fails.
            async with asyncio.timeout_at(deadline), asyncio.TaskGroup() as group:
                tasks = {
                    key: group.create_task(call.fetch(query, self.limits.max_pages))
                    for key, query in queries.items()
                }
        except TimeoutError:
            raise _Failed("timeout", "the whole fetch outlasted NKR_FHIR_TIMEOUT_SECONDS") from None
        except ExceptionGroup as failed:
            raise _first_failure(failed) from None
        return {key: task.result() for key, task in tasks.items()}


def _first_failure(group: BaseExceptionGroup[BaseException]) -> _Failed:
    """The first failure in ``group``; an unexpected exception becomes one (by its class)."""
    for exc in group.exceptions:
        if isinstance(exc, _Failed):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            return _first_failure(exc)
    return _Failed("error", "unexpected " + ", ".join(type(e).__name__ for e in group.exceptions))


async def fetch_missing_prefetch(
    *,
    prefetch: Mapping[str, Any],
    context: Mapping[str, Any],
    fhir_server: str | None,
    fhir_authorization: Mapping[str, Any] | None,
    servers: FhirServers,
    client: httpx.AsyncClient,
    templates: Mapping[str, str],
    limits: FetchLimits | None = None,
) -> dict[str, Any]:
    """One call's :meth:`Fetcher.fetch_missing` on its own (no bound on fetches in flight,
    which only a long-lived :class:`Fetcher` can keep)."""
    fetcher = Fetcher(servers, client, limits or FetchLimits(), max_in_flight=1)
    return await fetcher.fetch_missing(
        prefetch=prefetch,
        context=context,
        fhir_server=fhir_server,
        fhir_authorization=fhir_authorization,
        templates=templates,
    )
