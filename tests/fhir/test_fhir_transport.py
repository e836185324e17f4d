"""nkr's HTTP/1.1 pool for fetching (``nkr.fhir._transport``), against raw sockets on loopback:
connections reused only when that is safe, limits kept, errors as httpx's, TLS verified."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nkr._devserver import free_port
from nkr.fhir._transport import Http11Pool
from tests._async import run_async

# (connection number, request number on it, raw request head) -> bytes to send, or None to
# hang up without answering.
Answer = Callable[[int, int, bytes], bytes | None]


def late(seconds: float) -> Answer:
    """An answer after ``seconds``."""

    def answer(n: int, i: int, head: bytes) -> bytes:
        time.sleep(seconds)
        return response()

    return answer


def response(body: bytes = b"{}", *, close: bool = False, extra: str = "") -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return (
        f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{connection}{extra}\r\n".encode() + body
    )


@dataclass
class RawServer:
    """A loopback server that answers each request as ``answer`` says, counting connections
    and how many are open at once."""

    answer: Answer
    tls: ssl.SSLContext | None = None
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    listener: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        with self.lock:
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        try:
            conn = raw
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            buffer = b""
            for index in range(1000):
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                answer = self.answer(number, index, head)
                if answer is None:
                    return
                conn.sendall(answer)
        except OSError:
            return
        finally:
            with self.lock:
                self.open_now -= 1
            raw.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(answer: Answer, tls: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(answer, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def run(coro: Callable[[httpx.AsyncClient], object], **limits: float | None) -> object:
    async def main() -> object:
        pool = Http11Pool(httpx.Limits(**limits))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=pool, timeout=2) as client:
            result = coro(client)
            assert asyncio.iscoroutine(result)
            return await result

    return run_async(main())


def test_connections_are_kept_alive(serve: Callable[..., RawServer]) -> None:
    server = serve(lambda n, i, head: response(b'{"n": %d, "i": %d}' % (n, i)))

    async def three(client: httpx.AsyncClient) -> list[object]:
        return [(await client.get(f"{server.url}/x")).json() for _ in range(3)]

    assert run(three) == [{"n": 1, "i": 0}, {"n": 1, "i": 1}, {"n": 1, "i": 2}]
    assert server.connections == 1


def test_connection_close_is_honoured(serve: Callable[..., RawServer]) -> None:
    server = serve(lambda n, i, head: response(close=True))

    async def three(client: httpx.AsyncClient) -> list[int]:
        return [(await client.get(server.url)).status_code for _ in range(3)]

    assert run(three) == [200, 200, 200]
    assert server.connections == 3


def test_an_idle_connection_the_server_closed_is_not_an_error(
    serve: Callable[..., RawServer],
) -> None:
    # Keep-alive advertised, but the server hangs up after each answer (as servers whose idle
    # timeout is shorter than the client's do), or before answering a second request.
    server = serve(lambda n, i, head: response() if i == 0 else None)

    async def three(client: httpx.AsyncClient) -> list[int]:
        statuses = []
        for _ in range(3):
            statuses.append((await client.get(server.url)).status_code)
            await asyncio.sleep(0.05)
        return statuses

    assert run(three) == [200, 200, 200]
    assert server.connections == 3


def test_bytes_beyond_the_answer_never_become_the_next_answer(
    serve: Callable[..., RawServer],
) -> None:
    """A server that sends a second, unasked-for answer after the first (in the same packet or
    later while the connection is idle) must not have it read as the next request's."""
    smuggled = response(b'{"smuggled": true}')

    def answer(n: int, i: int, head: bytes) -> bytes:
        return response(b'{"n": %d}' % n) + (smuggled if n == 1 else b"")

    server = serve(answer)

    async def two(client: httpx.AsyncClient) -> list[object]:
        first = (await client.get(server.url)).json()
        await asyncio.sleep(0.05)
        return [first, (await client.get(server.url)).json()]

    assert run(two) == [{"n": 1}, {"n": 2}]


def test_an_unfinished_body_closes_its_connection(serve: Callable[..., RawServer]) -> None:
    server = serve(lambda n, i, head: response(b"x" * 1_000_000))

    async def partly(client: httpx.AsyncClient) -> int:
        async with client.stream("GET", server.url) as r:
            async for _ in r.aiter_raw():
                break
        return (await client.get(server.url)).status_code

    assert run(partly) == 200
    assert server.connections == 2


def test_at_most_max_connections_are_open(serve: Callable[..., RawServer]) -> None:
    def slow(n: int, i: int, head: bytes) -> bytes:
        time.sleep(0.2)
        return response()

    server = serve(slow)

    async def five(client: httpx.AsyncClient) -> list[int]:
        answers = await asyncio.gather(*(client.get(server.url) for _ in range(5)))
        return [r.status_code for r in answers]

    assert run(five, max_connections=2) == [200] * 5
    assert server.most_open <= 2


def test_waiting_for_a_connection_has_the_pool_timeout(serve: Callable[..., RawServer]) -> None:
    server = serve(late(0.5))

    async def two(client: httpx.AsyncClient) -> None:
        first = asyncio.create_task(client.get(server.url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(server.url, timeout=httpx.Timeout(2, pool=0.1))
        await first

    run(two, max_connections=1)


def test_idle_connections_expire(serve: Callable[..., RawServer]) -> None:
    server = serve(lambda n, i, head: response())

    async def apart(client: httpx.AsyncClient) -> None:
        await client.get(server.url)
        await asyncio.sleep(0.2)
        await client.get(server.url)

    run(apart, keepalive_expiry=0.1)
    assert server.connections == 2


def test_a_cancelled_request_frees_its_connection(serve: Callable[..., RawServer]) -> None:
    def answer(n: int, i: int, head: bytes) -> bytes | None:
        if b"/hang" in head:
            time.sleep(1)
            return None
        return response()

    server = serve(answer)

    async def cancelled(client: httpx.AsyncClient) -> int:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.get(f"{server.url}/hang")
        return (await client.get(server.url, timeout=httpx.Timeout(2, pool=0.1))).status_code

    assert run(cancelled, max_connections=1) == 200


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda n, i, head: None, httpx.RemoteProtocolError),
        (lambda n, i, head: b"not http\r\n\r\n", httpx.RemoteProtocolError),
        (
            lambda n, i, head: response(extra="X-Big: " + "a" * 1_000_000 + "\r\n"),
            httpx.RemoteProtocolError,
        ),
        (late(1), httpx.ReadTimeout),
    ],
)
def test_failures_are_httpx_errors(
    serve: Callable[..., RawServer], answer: Answer, error: type[Exception]
) -> None:
    server = serve(answer)

    async def one(client: httpx.AsyncClient) -> None:
        with pytest.raises(error):
            await client.get(server.url, timeout=0.3)

    run(one)


def test_a_closed_port_is_a_connect_error() -> None:
    port = free_port()

    async def one(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")

    run(one)


# -- TLS -------------------------------------------------------------------------------------------


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (and 127.0.0.1), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(name)]
    if name == "localhost":
        san.append(x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(
    ("name", "trusted", "works"),
    [
        ("localhost", True, True),
        ("localhost", False, False),  # not signed by a trusted CA
        ("other.example", True, False),  # signed, but for another host
    ],
)
def test_tls_certificates_are_verified(
    serve: Callable[..., RawServer], tmp_path: Path, name: str, trusted: bool, works: bool
) -> None:
    cert, key = _certificate(tmp_path, name)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server = serve(lambda n, i, head: response(b'{"tls": true}'), server_tls)
    client_tls = ssl.create_default_context(cafile=cert if trusted else None)

    async def main() -> None:
        pool = Http11Pool(ssl_context=client_tls)
        async with httpx.AsyncClient(transport=pool, timeout=2) as client:
            if works:
                assert (await client.get(server.url)).json() == {"tls": True}
            else:
                with pytest.raises(httpx.ConnectError):
                    await client.get(server.url)

    run_async(main())
