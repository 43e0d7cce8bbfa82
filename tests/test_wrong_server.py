"""Pointed at a server that is not Forge: exit 6, one line naming what answered.

Real servers on loopback: a plain web server answering 404 on every path, one
serving an HTML page on every path, and ``python3 -m http.server`` itself (an
HTTP/1.0 server that cannot speak WebSocket). Whatever ``--api`` says, none of
them is an unknown id (exit 5) or a connection failure (exit 3): the hint names
``--server``/``FORGE_URL``, and never suggests the ``--api`` setting in effect.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import support
from reference_server import PROC_FINISHED, ThreadedReferenceServer, default_scenario

from forgectl.constants import ENV_SERVER

PROCESS = "8c1e0000-0000-4000-8000-000000000001"
COMMANDS = {
    "logs": ("logs", PROCESS),
    "monitor": ("monitor",),
    "diff": ("diff", PROCESS),
}
APIS = ("auto", "documented", "forge")


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PlainWeb/2.4"
    status = 404
    content_type = "text/plain"
    body = b"not found"

    def do_GET(self) -> None:  # every path alike, the WebSocket upgrade too
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HtmlPage(_Answer):
    status = 200
    content_type = "text/html; charset=utf-8"
    body = b"<!doctype html><html><body>Welcome</body></html>"


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def plain_404() -> Iterator[str]:
    yield from _serve(_Answer)


@pytest.fixture(scope="module")
def html_page() -> Iterator[str]:
    yield from _serve(_HtmlPage)


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """``python3 -m http.server`` on a free loopback port, as a user would start it."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        found = re.search(r"port (\d+)", line)
        assert found, line
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        proc.terminate()
        proc.wait(10)


def _run(url: str, api: str, command: str) -> tuple[int, str, str]:
    result = support.invoke(url, *COMMANDS[command], api=api)
    return result.exit_code, result.stdout, result.stderr


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("forgectl: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("server", "named"),
    [
        ("plain_404", r"HTTP 404 from PlainWeb/2\.4"),
        ("html_page", r"an HTML page \(HTTP 200\)"),
        # its HTTP/1.0 status line (a WebSocket), or its Server header (SSE)
        ("http_server", r"HTTP/1\.0 404 File not found|HTTP 404 from SimpleHTTP/"),
    ],
)
def test_a_wrong_server_is_exit_6_naming_what_answered(
    request: pytest.FixtureRequest, server: str, named: str, api: str, command: str
) -> None:
    url = request.getfixturevalue(server)
    started = time.monotonic()
    code, out, err = _run(url, api, command)
    line = _one_line(err)
    assert (code, out) == (6, ""), line
    assert re.search(named, line), line
    assert "--server" in line and ENV_SERVER in line
    # Advice to use the setting in effect is no advice.
    assert f"use --api {api}" not in line and f"try --api {api}" not in line
    assert "(use --api forge, or auto)" not in line
    if api == "auto":
        assert "--api" not in line  # both APIs were tried: the server is the question
    assert time.monotonic() - started < 10  # no retries: a wrong server stays wrong


def test_an_unknown_id_on_a_documented_server_is_still_not_found() -> None:
    """The check that tells a plain 404 server from an unknown id costs a documented
    server one more connection (to its monitor route), and keeps exit 5."""
    with ThreadedReferenceServer(scenario=default_scenario()) as srv:
        for api in ("auto", "documented"):
            result = support.invoke(srv, "logs", "proc_nope", api=api)
            line = _one_line(result.stderr)
            assert result.exit_code == 5, line
            assert "not found" in line
        # and a known one is untouched by it
        result = support.invoke(srv, "logs", PROC_FINISHED)
        assert result.exit_code == 0, result.stderr
