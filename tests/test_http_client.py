"""The upstream HTTP client against scripted servers on loopback: framing, keep-alive and its race,
timeouts, back-pressure, the connection limit, TLS, and requests that must never be sent."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exportgate._http import HIGH_WATER, HttpClient, Origin
from exportgate.errors import BadRequestError, ConfigError, UpstreamError, UpstreamTimeoutError
from exportgate.gateway import Upstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Script"], Awaitable[None]]
JSON_OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


class Script:
    """A loopback server running ``handler`` per connection, counting connections and requests."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Origin:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        return Origin("https" if self.tls else "http", "127.0.0.1", port)

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()
            self.closed.set()

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        """Read one request (head and Content-Length body); b"" when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return b""
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        message = head + await reader.readexactly(length)
        self.requests.append(message)
        return message


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: Script) -> None:
    while await script.request(reader):
        writer.write(JSON_OK)
        await writer.drain()


def call(client: HttpClient, origin: Origin, body: bytes = b"{}", headers=None, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    return client.request(origin, b"POST", b"/v1/chat/completions", headers or [], body, 2.0, timeout)


def run(coro: Awaitable[object]) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_content_length_answers_reuse_one_connection():
    async def go() -> None:
        client = HttpClient()
        script = Script(keep_alive)
        async with script as origin:
            for _ in range(5):
                response = await call(client, origin, headers=[(b"content-type", b"application/json")])
                assert response.status == 200
                assert (b"content-type", b"application/json") in response.headers
                assert await response.read() == b'{"ok":true}'
        await client.close()
        assert script.connections == 1
        first = script.requests[0]
        assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"host: 127.0.0.1:{origin.port}\r\n".encode() in first
        assert b"content-length: 2\r\n" in first
        assert first.endswith(b"\r\n\r\n{}")

    run(go())


def test_chunked_answer_arrives_piece_by_piece_before_it_ends():
    release = asyncio.Event

    async def go() -> None:
        more = release()

        async def chunked(reader, writer, script):  # type: ignore[no-untyped-def]
            await script.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            writer.write(b"6\r\ndata:1\r\n")
            await writer.drain()
            await more.wait()
            writer.write(b"6\r\ndata:2\r\n0\r\n\r\n")
            await writer.drain()
            await script.request(reader)

        client = HttpClient()
        async with Script(chunked) as origin:
            response = await call(client, origin)
            pieces = response.chunks()
            assert await pieces.__anext__() == b"data:1"  # the upstream has not finished
            more.set()
            assert [c async for c in pieces] == [b"data:2"]
        await client.close()

    run(go())


def test_answer_delimited_by_close_and_truncated_answer():
    async def close_delimited(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")

    async def truncated(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nnot all")

    async def go() -> None:
        client = HttpClient()
        async with Script(close_delimited) as origin:
            assert await (await call(client, origin)).read() == b"all of it"
        async with Script(truncated) as origin:
            response = await call(client, origin)
            with pytest.raises(UpstreamError, match="before the answer was complete"):
                await response.read()
        await client.close()

    run(go())


def test_reused_connection_closed_by_the_upstream_is_retried_once_on_a_new_one():
    async def one_per_connection(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(JSON_OK)
        await writer.drain()
        await script.request(reader)  # the next request on this connection: read, never answered

    async def go() -> None:
        client = HttpClient()
        script = Script(one_per_connection)
        async with script as origin:
            assert (await call(client, origin)).status == 200
            assert (await call(client, origin)).status == 200  # first try went to the dead connection
        await client.close()
        assert script.connections == 2
        assert len(script.requests) == 3

    run(go())


def test_a_new_connection_closed_without_an_answer_is_not_retried():
    async def hang_up(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)

    async def go() -> None:
        client = HttpClient()
        script = Script(hang_up)
        async with script as origin:
            with pytest.raises(UpstreamError):
                await call(client, origin)
        await client.close()
        assert len(script.requests) == 1  # a POST is never sent twice unless the first one surely died unread

    run(go())


def test_read_timeouts_before_headers_and_mid_body():
    async def silent(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        await asyncio.sleep(5)

    async def stalls(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async def go() -> None:
        client = HttpClient()
        async with Script(silent) as origin:
            with pytest.raises(UpstreamTimeoutError, match="did not answer"):
                await call(client, origin, timeout=0.2)
        async with Script(stalls) as origin:
            response = await call(client, origin, timeout=0.2)
            pieces = response.chunks()
            assert await pieces.__anext__() == b"first"
            with pytest.raises(UpstreamTimeoutError, match="stopped answering"):
                await pieces.__anext__()
        await client.close()

    run(go())


def test_refused_connection_and_malformed_answer_are_upstream_errors():
    async def garbage(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(b"SMTP READY\r\n\r\n")

    async def go() -> None:
        client = HttpClient()
        async with Script(garbage) as origin:
            with pytest.raises(UpstreamError, match="malformed"):
                await call(client, origin)
        closed = Origin("http", "127.0.0.1", origin.port)  # the server is gone now
        with pytest.raises(UpstreamError, match="cannot connect"):
            await call(client, closed)
        await client.close()

    run(go())


def test_interim_answer_is_skipped():
    async def continues(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_OK)
        await writer.drain()
        await script.request(reader)

    async def go() -> None:
        client = HttpClient()
        async with Script(continues) as origin:
            response = await call(client, origin)
            assert response.status == 200
            assert await response.read() == b'{"ok":true}'
        await client.close()

    run(go())


@pytest.mark.parametrize(
    "header",
    [
        (b"x-a", b"1\r\nx-injected: yes"),
        (b"x-a", b"1\nx-injected: yes"),
        (b"x-a\r\nx-injected", b"yes"),
        (b"x-a: b", b"c"),
    ],
)
def test_header_with_a_line_break_is_refused_and_nothing_is_sent(header: tuple[bytes, bytes]):
    async def go() -> None:
        client = HttpClient()
        script = Script(keep_alive)
        async with script as origin:
            with pytest.raises(BadRequestError):
                await call(client, origin, headers=[header])
        await client.close()
        assert script.requests == []

    run(go())


def test_closing_an_unfinished_answer_closes_the_connection():
    async def endless(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"4\r\ntick\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)

    async def go() -> None:
        client = HttpClient()
        script = Script(endless)
        async with script as origin:
            response = await call(client, origin)
            assert await response.chunks().__anext__() == b"tick"
            response.close()
            await asyncio.wait_for(script.closed.wait(), 5)  # the upstream saw the connection go
        await client.close()

    run(go())


def test_reading_pauses_while_a_slow_client_has_a_megabyte_waiting():
    size = 8 * HIGH_WATER

    async def big(reader, writer, script):  # type: ignore[no-untyped-def]
        await script.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()
        await script.request(reader)

    async def go() -> None:
        client = HttpClient()
        async with Script(big) as origin:
            response = await call(client, origin)
            await asyncio.sleep(0.3)  # nobody reads: the client must stop reading from the socket
            assert response._buffered < 2 * HIGH_WATER
            received = 0
            async for chunk in response.chunks():
                received += len(chunk)
            assert received == size
            again = await call(client, origin)  # the connection was resumed and can be reused
            response.close()
            again.close()
        await client.close()

    run(go())


def test_connection_limit_makes_callers_wait():
    async def slow(reader, writer, script):  # type: ignore[no-untyped-def]
        while await script.request(reader):
            await asyncio.sleep(0.05)
            writer.write(JSON_OK)
            await writer.drain()

    async def go() -> None:
        client = HttpClient(limit=2)
        script = Script(slow)
        async with script as origin:

            async def one() -> bytes:
                return await (await call(client, origin)).read()

            answers = await asyncio.gather(*(one() for _ in range(6)))
        await client.close()
        assert answers == [b'{"ok":true}'] * 6
        assert script.most_open <= 2

    run(go())


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    trusting = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    return server, trusting


def test_tls_upstream_is_verified(tmp_path: Path):
    server_tls, trusting = _self_signed(tmp_path)

    async def go() -> None:
        async with Script(keep_alive, tls=server_tls) as origin:
            client = HttpClient(tls=trusting)
            assert await (await call(client, origin)).read() == b'{"ok":true}'
            await client.close()
            untrusting = HttpClient()  # the system's CAs do not know this certificate
            with pytest.raises(UpstreamError, match="cannot connect"):
                await call(untrusting, origin)
            await untrusting.close()

    run(go())


def test_base_url_gives_origin_and_path_prefix():
    upstream = Upstream("u", "https://api.example.com/proxy/", "openai", "sk-test")
    assert upstream.origin == Origin("https", "api.example.com", 443)
    assert upstream.origin.host_header == b"api.example.com"
    assert upstream.prefix == b"/proxy"
    assert upstream.auth == ((b"authorization", b"Bearer sk-test"),)
    assert Upstream("v", "http://[::1]:9000", "anthropic", "k").origin.host_header == b"[::1]:9000"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    ["http://", "http://host:notaport", "http://host/a?b=c", "http://user:pw@host", "http://host/ä", "ftp://host"],
)
def test_bad_base_urls_are_config_errors(url: str):
    with pytest.raises(ConfigError):
        Upstream("u", url, "openai")


def test_api_key_with_a_line_break_is_a_config_error():
    with pytest.raises(ConfigError, match="line break"):
        Upstream("u", "http://host", "openai", "sk\r\nx-evil: 1")
