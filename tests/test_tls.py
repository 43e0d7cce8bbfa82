"""TLS against a real TLS server on loopback, with self-signed certificates made here.

A server that refuses the WebSocket handshake (401, 404, 500, an HTML page)
over TLS: exactly one error line and the documented exit code, every time (the
TLS transport used to call the protocol back while closing, and asyncio then
printed a traceback most runs). And the certificate errors say what can help
given what was tried: a CA file for an unknown issuer, never for a wrong name
or date; ``http://`` to a TLS port says so.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import support
from click.testing import Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hostile import RecordingProxy, clean_env, forgectl
from websockets.server import ServerProtocol

from forgectl.constants import ENV_TRANSPORT
from forgectl.errors import ExitCode, FatalConnectError
from forgectl.transport import Endpoint, rest
from forgectl.urls import parse_server

pytestmark = pytest.mark.timeout(120)

RUNS = 20  # the race showed in 7 to 19 runs of 20


def certificate(
    directory: Path,
    name: str,
    *,
    hosts: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = ("127.0.0.1",),
    expired: bool = False,
) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"forgectl test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(days=30 if expired else 1)
    end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=1)
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


ANSWERS = {
    "401": b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 12\r\n\r\nno token, no",
    "404": b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 9\r\n\r\nnot found",
    "500": b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 4\r\n\r\noops",
    "html": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
    b"Content-Length: 26\r\n\r\n<html><body>UI</body></html>"[:-2],
}
EXIT = {
    "401": ExitCode.AUTH,
    # A server answering 404 on every route (the monitor route too) has no
    # documented API: that is no unknown id.
    "404": ExitCode.PROTOCOL,
    "500": ExitCode.CONNECT,
    "html": ExitCode.PROTOCOL,
}


@dataclass
class TLSServer:
    """A TLS server on loopback in its own thread: answers every request with
    ``answer`` (an HTTP refusal), or accepts the WebSocket and closes it (None)."""

    cert: Path
    key: Path
    answer: bytes | None = None
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TLSServer:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        loop = self._loop
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ctx))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            if self.answer is not None:
                writer.write(self.answer)
            else:
                proto = ServerProtocol()
                proto.receive_data(request)
                (req,) = proto.events_received()
                proto.send_response(proto.accept(req))  # type: ignore[arg-type]
                proto.send_text(b"hello over TLS\n")
                proto.send_close(1000)
                writer.write(b"".join(proto.data_to_send()))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("certs")
    return {
        "good": certificate(directory, "good"),
        "other": certificate(directory, "other"),  # the same names, another issuer
        "elsewhere": certificate(directory, "elsewhere", hosts=("forge.example",), ips=()),
        "expired": certificate(directory, "expired", expired=True),
    }


@pytest.fixture
def quiet_asyncio(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """asyncio's own error reports (the "Fatal error on SSL protocol" traceback) go
    through logging: pytest would capture them away from stderr, so they are
    collected here and must not exist."""
    caplog.set_level(logging.WARNING, logger="asyncio")
    yield caplog
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def invoke(
    url: str, *args: str, transport: str | None = None, logs: tuple[str, ...] = ()
) -> Result:
    env = {ENV_TRANSPORT: transport} if transport else {}
    return support.invoke(url, *args, "logs", "p1", *logs, api="documented", env=env)


def one_error_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("forgectl: error: "), lines[0]
    assert "Traceback" not in result.stderr and "Fatal error" not in result.stderr
    assert result.stdout == ""
    return lines[0]


# -- refusals over TLS: one line, every time ---------------------------------------------


@pytest.mark.parametrize("transport", ["sansio", "websockets"])
@pytest.mark.parametrize("status", list(ANSWERS))
def test_refused_handshake_over_tls_is_one_line(
    status: str,
    transport: str,
    certs: dict[str, tuple[Path, Path]],
    quiet_asyncio: pytest.LogCaptureFixture,
) -> None:
    cert, key = certs["good"]
    with TLSServer(cert, key, ANSWERS[status]) as srv:
        url = f"https://127.0.0.1:{srv.port}"
        for _ in range(RUNS):
            result = invoke(url, "--cacert", str(cert), transport=transport)
            line = one_error_line(result)
            assert result.exit_code == EXIT[status], line
            assert [r for r in quiet_asyncio.records if r.name == "asyncio"] == []


def test_refused_handshake_over_tls_as_a_process(certs: dict[str, tuple[Path, Path]]) -> None:
    """The same, as a user runs it: stderr is the process's own, nothing captured."""
    cert, key = certs["good"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "FORGECTL_"))}
    with TLSServer(cert, key, ANSWERS["401"]) as srv:
        for _ in range(5):
            url = f"https://127.0.0.1:{srv.port}"
            argv = ["--server", url, "--api", "documented", "--cacert", str(cert), "logs", "p1"]
            proc = subprocess.run(
                [sys.executable, "-m", "forgectl", *argv],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            assert proc.returncode == ExitCode.AUTH, proc.stderr
            assert len(proc.stderr.splitlines()) == 1, proc.stderr
            assert "HTTP 401" in proc.stderr


def test_a_stream_over_tls_still_works(
    certs: dict[str, tuple[Path, Path]], quiet_asyncio: pytest.LogCaptureFixture
) -> None:
    cert, key = certs["good"]
    with TLSServer(cert, key, None) as srv:
        result = invoke(f"https://localhost:{srv.port}", "--cacert", str(cert), logs=("--raw",))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "hello over TLS\n"


# -- what the certificate errors suggest -------------------------------------------------


def test_unknown_issuer_without_a_ca_file_suggests_one(
    certs: dict[str, tuple[Path, Path]], quiet_asyncio: pytest.LogCaptureFixture
) -> None:
    cert, key = certs["good"]
    with TLSServer(cert, key, ANSWERS["401"]) as srv:
        line = one_error_line(result := invoke(f"https://127.0.0.1:{srv.port}"))
    assert result.exit_code == ExitCode.CONNECT
    assert "not trusted (self-signed certificate)" in line
    assert "use --cacert FILE or --insecure" in line


def test_unknown_issuer_with_a_ca_file_names_that_file(
    certs: dict[str, tuple[Path, Path]], quiet_asyncio: pytest.LogCaptureFixture
) -> None:
    cert, key = certs["good"]
    wrong, _ = certs["other"]
    with TLSServer(cert, key, ANSWERS["401"]) as srv:
        result = invoke(f"https://127.0.0.1:{srv.port}", "--cacert", str(wrong))
    line = one_error_line(result)
    assert result.exit_code == ExitCode.CONNECT
    assert f"not signed by the CA in {wrong}" in line
    assert "use --cacert" not in line  # it was used


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_wrong_name_never_suggests_a_ca_file(
    host: str, certs: dict[str, tuple[Path, Path]], quiet_asyncio: pytest.LogCaptureFixture
) -> None:
    cert, key = certs["elsewhere"]  # trusted (--cacert), but for forge.example only
    with TLSServer(cert, key, ANSWERS["401"]) as srv:
        result = invoke(f"https://{host}:{srv.port}", "--cacert", str(cert))
    line = one_error_line(result)
    assert result.exit_code == ExitCode.CONNECT
    assert "not for this host" in line and f"not valid for '{host}'" in line
    assert "--cacert" not in line
    assert "--insecure" in line


def test_expired_certificate_says_so(
    certs: dict[str, tuple[Path, Path]], quiet_asyncio: pytest.LogCaptureFixture
) -> None:
    cert, key = certs["expired"]
    with TLSServer(cert, key, ANSWERS["401"]) as srv:
        result = invoke(f"https://127.0.0.1:{srv.port}", "--cacert", str(cert))
    line = one_error_line(result)
    assert result.exit_code == ExitCode.CONNECT
    assert "certificate has expired" in line and "clock" in line
    assert "--cacert" not in line


@pytest.mark.parametrize("transport", ["sansio", "websockets"])
def test_plain_http_to_a_tls_port_says_use_https(
    transport: str,
    certs: dict[str, tuple[Path, Path]],
    quiet_asyncio: pytest.LogCaptureFixture,
) -> None:
    cert, key = certs["good"]
    with TLSServer(cert, key, ANSWERS["401"]) as srv:
        result = invoke(f"http://127.0.0.1:{srv.port}", transport=transport)
        line = one_error_line(result)
        assert f"the server speaks TLS on port {srv.port}; use https://127.0.0.1:{srv.port}" in line
        assert result.exit_code == ExitCode.CONNECT
        # Not worth retrying: --retry-for gives up at once, with the same line.
        retried = invoke(
            f"http://127.0.0.1:{srv.port}", transport=transport, logs=("--retry-for", "30")
        )
        assert one_error_line(retried) == line


def test_plain_http_to_a_plain_server_that_hangs_up_is_still_a_bad_handshake(
    quiet_asyncio: pytest.LogCaptureFixture,
) -> None:
    """No TLS behind it: the probe finds none, and the error stays what it was."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(hang_up, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        line = one_error_line(invoke(f"http://127.0.0.1:{port}"))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    assert "bad handshake" in line and "TLS" not in line


def test_rest_lookups_over_plain_http_to_a_tls_port_say_use_https(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    cert, key = certs["good"]
    with TLSServer(cert, key, ANSWERS["401"]) as srv:
        endpoint = Endpoint(parse_server(f"http://127.0.0.1:{srv.port}"), open_timeout=5)
        with pytest.raises(FatalConnectError, match="the server speaks TLS on port"):
            asyncio.run(rest.get(endpoint, "/api/health"))
        tls = Endpoint(parse_server(f"https://127.0.0.1:{srv.port}"), cacert=str(cert))
        assert asyncio.run(rest.get(tls, "/api/health"))[0] == 401  # and over TLS, HTTP


# -- a proxy in front of a TLS server -----------------------------------------------------


def test_a_token_goes_to_an_https_server_through_a_proxy_it_cannot_read(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    """The refusal is for plain-text servers only: to an ``https://`` server the
    stream goes through the proxy's CONNECT tunnel (``HTTPS_PROXY``), and the token
    inside TLS is nothing the proxy can read."""
    token = "tok-TLS-PROXY-3c9d-never-in-clear"
    cert, key = certs["good"]
    with TLSServer(cert, key, None) as srv, RecordingProxy() as proxy:
        argv = ["--server", f"https://localhost:{srv.port}", "--api", "documented"]
        env = clean_env(FORGE_TOKEN=token, HTTPS_PROXY=proxy.url)
        run = forgectl(*argv, "--cacert", str(cert), "logs", "p1", "--raw", env=env)
    assert (run.code, run.stdout) == (0, b"hello over TLS\n"), run.stderr
    assert run.stderr == ""
    sent = proxy.everything()
    assert sent.startswith(b"CONNECT localhost:"), sent[:80]  # it did go through the proxy
    assert token.encode() not in sent
