"""The HTTP transport prefetch fetching runs on: HTTP/1.1 by h11 over asyncio, and a pool of
connections whose every operation costs the same however many connections it holds.

Why not httpx's own transport (httpcore): its pool re-examines every connection it holds, and
asks each idle one's socket whether it is readable, whenever a request is queued or released
(quadratic in the connections); with the 8-16 fetches in flight that one worker has under load,
that and the layers around it cost about 1 ms of CPU per request on the benchmark machine, as
much as a whole CDS call with full prefetch (BENCHMARKS.md). The protocol itself is h11's, the
parser httpcore and uvicorn use; this module only opens, reuses and closes connections. It is a
transport of ``httpx.AsyncClient``, so fetching is written against httpx's API throughout and
tests swap it for ``httpx.MockTransport``.

What it does not do, on purpose: proxies (a bearer token is not routed through whatever proxy
the environment names), HTTP/2, request bodies larger than memory.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import Final, cast

import h11
import httpx

# Reading pauses while this many received bytes wait unread, so that a fast server cannot make
# a slow reader (or one that stopped reading) hold more.
HIGH_WATER: Final = 65536
DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}
# The most bytes of response headers (h11's own default): a header bomb is a protocol error.
MAX_HEADER_BYTES: Final = 16384

Origin = tuple[bytes, bytes, int]


class _Wire(asyncio.Protocol):
    """One connection's incoming bytes: those not read yet (reading pauses beyond
    ``HIGH_WATER``), whether the peer has closed, and whether anything arrived at all."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.received = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = cast("asyncio.Transport", transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.received = True
        if len(self.buffer) > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytearray:
        """What has arrived, waiting for something if nothing has; empty at the end."""
        while not self.buffer and not self.eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data, self.buffer = self.buffer, bytearray()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def quiet(self) -> bool:
        """Whether an idle connection is fit for another request: still open, and nothing
        arrived unasked (which would otherwise be read as the next request's answer)."""
        return (
            not self.buffer
            and not self.eof
            and self.transport is not None
            and not self.transport.is_closing()
        )


class _Connection:
    __slots__ = ("h11", "idle_since", "origin", "wire")

    def __init__(self, origin: Origin, wire: _Wire) -> None:
        self.origin = origin
        self.wire = wire
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.idle_since = 0.0

    def abort(self) -> None:
        if self.wire.transport is not None:
            self.wire.transport.abort()

    def reusable(self) -> bool:
        h = self.h11
        return (
            h.our_state is h11.DONE
            and h.their_state is h11.DONE
            and not h.trailing_data[0]
            and self.wire.quiet()
        )


class _Stale(Exception):
    """A reused connection that gave no answer at all (the server had closed it)."""


class Http11Pool(httpx.AsyncBaseTransport):
    """A transport for ``httpx.AsyncClient``: HTTP/1.1 keep-alive connections, at most
    ``limits.max_connections`` of them open (idle ones included) and ``limits.max_keepalive_
    connections`` idle, each idle one closed after ``limits.keepalive_expiry`` seconds. The
    request's timeouts (connect, read, pool) apply; https verifies certificates with
    ``ssl_context`` (default: httpx's, which honours SSL_CERT_FILE and SSL_CERT_DIR)."""

    def __init__(
        self, limits: httpx.Limits | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.limits: Final = limits or httpx.Limits()
        limits = self.limits
        self._max_connections = limits.max_connections or 1000
        self._max_idle = (
            self._max_connections
            if limits.max_keepalive_connections is None
            else limits.max_keepalive_connections
        )
        self._expiry = 5.0 if limits.keepalive_expiry is None else limits.keepalive_expiry
        # Created once, here: loading the CA bundle takes ~80 ms, synchronously.
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._slots = asyncio.Semaphore(self._max_connections)
        self._idle: dict[Origin, collections.deque[_Connection]] = {}
        self._idle_count = 0
        self._active = 0  # connections in use (each holds a slot)
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or DEFAULT_PORTS[url.raw_scheme])
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection free in time", request=request) from None
        self._active += 1
        try:
            conn = self._take(origin)
            if conn is not None:
                try:
                    return await self._exchange(conn, request, body, timeouts, reused=True)
                except _Stale:
                    pass  # closed by the server as it was taken: once more, on a new one
            conn = await self._connect(origin, request, timeouts.get("connect"))
            try:
                return await self._exchange(conn, request, body, timeouts, reused=False)
            except _Stale:
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without answering", request=request
                ) from None
        except BaseException:
            self._active -= 1
            self._slots.release()
            raise

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
        self._idle_count = 0

    # -- connections ------------------------------------------------------------------------------

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if now - conn.idle_since < self._expiry and conn.wire.quiet():
                conn.wire.received = False
                return conn
            conn.abort()
        return None

    def _evict_oldest(self) -> None:
        oldest = min((idle for idle in self._idle.values() if idle), key=lambda d: d[0].idle_since)
        oldest.popleft().abort()
        self._idle_count -= 1

    async def _connect(
        self, origin: Origin, request: httpx.Request, timeout: float | None
    ) -> _Connection:
        # Open connections, idle ones included, stay within max_connections.
        if self._idle_count and self._active + self._idle_count > self._max_connections:
            self._evict_oldest()
        scheme, host, port = origin
        tls = self._ssl if scheme == b"https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, wire = await loop.create_connection(
                    _Wire,
                    host.decode("ascii"),
                    port,
                    ssl=tls,
                    server_hostname=host.decode("ascii") if tls is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("connecting took too long", request=request) from None
        except OSError as exc:  # refused, unreachable, no such host, certificate not valid
            raise httpx.ConnectError(type(exc).__name__, request=request) from None
        return _Connection(origin, wire)

    def _release(self, conn: _Connection, complete: bool) -> None:
        """Back to the pool when the exchange ended cleanly, else closed; the slot is free."""
        try:
            if complete and not self._closed and conn.reusable():
                conn.h11.start_next_cycle()
                conn.idle_since = time.monotonic()
                self._idle.setdefault(conn.origin, collections.deque()).append(conn)
                self._idle_count += 1
                if self._idle_count > self._max_idle:
                    self._evict_oldest()
            else:
                conn.abort()
        finally:
            self._active -= 1
            self._slots.release()

    # -- one exchange -----------------------------------------------------------------------------

    async def _exchange(
        self,
        conn: _Connection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
        *,
        reused: bool,
    ) -> httpx.Response:
        read_timeout = timeouts.get("read")
        try:
            try:
                data = conn.h11.send(
                    h11.Request(
                        method=request.method,
                        target=request.url.raw_path,
                        headers=request.headers.raw,
                    )
                )
                assert data is not None
                if body:
                    data += conn.h11.send(h11.Data(data=body)) or b""
                data += conn.h11.send(h11.EndOfMessage()) or b""
            except h11.LocalProtocolError as exc:
                raise httpx.LocalProtocolError(str(exc), request=request) from None
            assert conn.wire.transport is not None
            conn.wire.transport.write(data)
            event = await _next_event(conn, request, read_timeout)
            while isinstance(event, h11.InformationalResponse):
                event = await _next_event(conn, request, read_timeout)
        except httpx.TransportError:
            conn.abort()
            # Nothing came back on a connection that had been idle: most likely the server
            # closed it as it was taken; a request that is safe to repeat goes once more.
            if reused and not conn.wire.received and request.method in ("GET", "HEAD"):
                raise _Stale from None
            raise
        except BaseException:
            conn.abort()
            raise
        if not isinstance(event, h11.Response):
            conn.abort()
            raise httpx.RemoteProtocolError("no response", request=request)
        return httpx.Response(
            status_code=event.status_code,
            headers=list(event.headers),
            stream=_Body(self, conn, request, read_timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(event.reason)},
        )


async def _next_event(conn: _Connection, request: httpx.Request, timeout: float | None) -> object:
    """The connection's next h11 event, reading as needed; errors as httpx's."""
    try:
        while True:
            event = conn.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout(timeout):
                data = await conn.wire.read()
            conn.h11.receive_data(bytes(data))
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from None
    except TimeoutError:
        raise httpx.ReadTimeout("reading took too long", request=request) from None
    except OSError as exc:
        raise httpx.ReadError(type(exc).__name__, request=request) from None


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it gives the connection back (reused only when
    the body was read to its end) and frees its slot."""

    def __init__(
        self, pool: Http11Pool, conn: _Connection, request: httpx.Request, timeout: float | None
    ) -> None:
        self._pool = pool
        self._conn = conn
        self._request = request
        self._timeout = timeout
        self._complete = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._complete:
            event = await _next_event(self._conn, self._request, self._timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._complete = True
            else:
                raise httpx.RemoteProtocolError("the body ended early", request=self._request)

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool._release(self._conn, self._complete)
