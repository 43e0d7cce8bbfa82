"""forgectl login / logout / auth status against the reference server."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keyring
import pytest
import support
from click.testing import Result
from keyring.backends import fail
from keyring_backends import MemoryKeyring
from reference_server import PROC_FINISHED, Fault, ThreadedReferenceServer, default_scenario

from forgectl import credentials
from forgectl.constants import KEYRING_SERVICE

TOKEN = "tok-SECRET-9f3b2c"
TESTS = Path(__file__).resolve().parent
FORGECTL = Path(sys.executable).with_name("forgectl")


@pytest.fixture
def server() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(
        token=TOKEN, forbidden_tokens={"tok-forbidden"}, scenario=default_scenario()
    ) as srv:
        yield srv


def invoke(args: list[str], token: str | None = TOKEN, **env: str) -> Result:
    result = support.invoke(None, *args, input=None if token is None else token + "\n", env=env)
    assert TOKEN not in result.stdout
    assert TOKEN not in result.stderr
    return result


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_login_stores_an_accepted_token(
    server: ThreadedReferenceServer, memory_keyring: MemoryKeyring
) -> None:
    result = invoke(["login", "--with-token", "--server", server.url])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "accepted the token" in result.stderr
    assert memory_keyring.entries == {(KEYRING_SERVICE, server.url): TOKEN}
    # The check presented the token to the server (query and cookie).
    assert any(rec.accepted and rec.token == TOKEN for rec in server.server.connections)


@pytest.mark.parametrize("bad", ["tok-wrong", "tok-forbidden"])
def test_login_rejected_token_exits_4_and_stores_nothing(
    server: ThreadedReferenceServer, memory_keyring: MemoryKeyring, bad: str
) -> None:
    result = invoke(["login", "--with-token", "--server", server.url], token=bad)
    assert result.exit_code == 4
    assert "rejected the token" in result.stderr
    assert "nothing was stored" in result.stderr
    assert bad not in result.stderr
    assert memory_keyring.entries == {}
    assert not credentials.keyring_indexed(server.url)


def test_login_to_a_server_without_auth_says_so_and_stores(
    memory_keyring: MemoryKeyring,
) -> None:
    with ThreadedReferenceServer(scenario=default_scenario()) as srv:
        result = invoke(["login", "--with-token", "--server", srv.url])
    assert result.exit_code == 0, result.stderr
    assert "without a token" in result.stderr
    assert memory_keyring.entries == {(KEYRING_SERVICE, srv.url): TOKEN}


def test_login_to_the_forge_dialect_stores_unchecked(memory_keyring: MemoryKeyring) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = invoke(["login", "--with-token", "--server", url, "--api", "forge"])
    assert result.exit_code == 0, result.stderr
    assert "no authentication" in result.stderr
    assert (KEYRING_SERVICE, url) in memory_keyring.entries


def test_login_when_the_server_is_down(memory_keyring: MemoryKeyring) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = invoke(["login", "--with-token", "--server", url])
    assert result.exit_code == 3
    assert "--no-verify" in result.stderr
    assert memory_keyring.entries == {}
    result = invoke(["login", "--with-token", "--server", url, "--no-verify"])
    assert result.exit_code == 0, result.stderr
    assert (KEYRING_SERVICE, url) in memory_keyring.entries


def test_login_refuses_the_token_flag_and_a_missing_terminal() -> None:
    result = invoke(["login", "--token", TOKEN], token=None)
    assert result.exit_code == 2
    assert "not from --token" in result.stderr
    result = invoke(["login"], token=None)  # stdin is not a terminal
    assert result.exit_code == 2
    assert "--with-token" in result.stderr
    result = invoke(["login", "--with-token"], token="")
    assert result.exit_code == 2


def test_status_says_where_the_token_comes_from(server: ThreadedReferenceServer) -> None:
    result = invoke(["auth", "status", "--server", server.url])
    assert result.exit_code == 0
    assert "token:   not set" in result.stdout
    assert invoke(["login", "--with-token", "--server", server.url]).exit_code == 0
    result = invoke(["auth", "status", "--server", server.url])
    assert f"server:  {server.url}" in result.stdout
    assert "token:   set, from the OS keyring" in result.stdout
    result = invoke(["auth", "status", "--server", server.url], FORGE_TOKEN="tok-env-1")
    assert "FORGE_TOKEN environment variable" in result.stdout
    assert "tok-env-1" not in result.stdout
    result = invoke(["--token", "tok-flag-1", "auth", "status", "--server", server.url, "--json"])
    info = json.loads(result.stdout)
    assert info["token"] is True
    assert info["token_source"] == "flag"
    assert "tok-flag-1" not in result.stdout


def test_logout_twice(server: ThreadedReferenceServer, memory_keyring: MemoryKeyring) -> None:
    assert invoke(["login", "--with-token", "--server", server.url]).exit_code == 0
    first = invoke(["logout", "--server", server.url])
    assert first.exit_code == 0
    assert "removed the token" in first.stderr
    assert memory_keyring.entries == {}
    second = invoke(["auth", "logout", "--server", server.url])
    assert second.exit_code == 0
    assert "nothing to remove" in second.stderr


def test_headless_login_names_the_ways_out() -> None:
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    result = invoke(["login", "--with-token", "--server", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "no usable keyring" in result.stderr
    assert "FORGE_TOKEN" in result.stderr
    assert "--insecure-storage" in result.stderr


def test_insecure_storage(server: ThreadedReferenceServer) -> None:
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    result = invoke(["login", "--with-token", "--insecure-storage", "--server", server.url])
    assert result.exit_code == 0, result.stderr
    assert "plain text" in result.stderr
    path = credentials.tokens_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {server.url: TOKEN}
    status = invoke(["auth", "status", "--server", server.url])
    assert "plain-text token file" in status.stdout
    assert invoke(["logout", "--server", server.url]).exit_code == 0
    assert not path.exists()


def test_cacert_garbage_is_a_clean_error(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("garbage\n")
    result = invoke(["--cacert", str(garbage), "auth", "status", "--server", "https://127.0.0.1"])
    assert result.exit_code == 2
    assert "cannot use CA file" in result.stderr
    assert "Traceback" not in result.stderr
    result = invoke(["auth", "status", "--cacert", str(tmp_path / "absent.pem")])
    assert result.exit_code == 2


def test_insecure_warns(memory_keyring: MemoryKeyring) -> None:
    result = invoke(["auth", "status", "--server", "https://127.0.0.1:1", "--insecure"])
    assert result.exit_code == 0
    assert "verification is disabled" in result.stderr
    assert "tls:     verification disabled" in result.stdout


# -- end to end, through the installed console script ------------------------------------


def run(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = support.run(None, *args, input=stdin, env=env, timeout=60)
    assert TOKEN not in result.stdout
    assert TOKEN not in result.stderr
    return result


@pytest.fixture
def plaintext_env(isolated_env: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    return env


def test_end_to_end_login_use_logout(
    server: ThreadedReferenceServer, plaintext_env: dict[str, str], isolated_env: Path
) -> None:
    url = server.url
    login = run(["login", "--with-token", "--server", url], plaintext_env, TOKEN + "\n")
    assert login.returncode == 0, login.stderr
    # keyrings.alt kept it under XDG_DATA_HOME, not in forgectl's own files.
    stored = list((isolated_env / "data").rglob("*.cfg"))
    assert stored and "[forgectl]" in stored[0].read_text()
    assert not credentials.tokens_file().exists()

    use = run(["-vv", "logs", PROC_FINISHED, "--server", url, "--json"], plaintext_env)
    assert use.returncode == 0, use.stderr
    assert use.stdout.strip()
    assert "keyring" in use.stderr  # -v says where the token came from, not what it is
    assert server.server.connections[-1].token == TOKEN

    status = run(["auth", "status", "--server", url], plaintext_env)
    assert "from the OS keyring" in status.stdout

    assert run(["logout", "--server", url], plaintext_env).returncode == 0
    again = run(["logs", PROC_FINISHED, "--server", url], plaintext_env)
    assert again.returncode == 4
    assert "forgectl login" in again.stderr


def test_end_to_end_hanging_keyring_does_not_wedge(isolated_env: Path) -> None:
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = "keyring_backends.HangingKeyring"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env["FORGECTL_KEYRING_TIMEOUT"] = "0.5"
    started = time.monotonic()
    # A stored token is recorded, so the keyring is asked: it hangs, and is skipped.
    credentials._index_update("http://127.0.0.1:1", present=True)
    status = run(["auth", "status", "--server", "http://127.0.0.1:1"], env)
    assert status.returncode == 0, status.stderr
    assert "did not answer within 0.5 s" in status.stderr
    assert "token:   not set" in status.stdout
    login = run(["login", "--with-token", "--no-verify", "--server", "127.0.0.1:1"], env, TOKEN)
    assert login.returncode == 2
    assert "did not answer" in login.stderr
    assert time.monotonic() - started < 30


def test_end_to_end_fail_backend(isolated_env: Path) -> None:
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    login = run(["login", "--with-token", "--server", "127.0.0.1:1"], env, TOKEN)
    assert login.returncode == 2
    assert "no usable keyring" in login.stderr


# -- servers that cannot tell -------------------------------------------------------------


class _ForgeLike(BaseHTTPRequestHandler):
    """What the real Forge server answers: its web UI for unknown paths, JSON health."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/api/health"):
            body, ctype = b'{"success":true,"data":"OK"}', "application/json"
        else:
            body, ctype = b"<!doctype html><title>Forge</title>", "text/html"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def forge_like() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ForgeLike)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_login_to_a_forge_server_says_it_has_no_auth_and_stores(
    forge_like: str, memory_keyring: MemoryKeyring
) -> None:
    result = invoke(["login", "--with-token", "--server", forge_like])
    assert result.exit_code == 0, result.stderr
    assert "no authentication" in result.stderr
    assert (KEYRING_SERVICE, forge_like) in memory_keyring.entries


def test_login_to_something_else_cannot_check(memory_keyring: MemoryKeyring) -> None:
    with ThreadedReferenceServer(token=TOKEN) as srv:
        srv.server.faults.append(
            Fault(handshake_status=200, handshake_body="<html></html>", times=None)
        )
        srv.server.faults[-1].handshake_content_type = "text/html"
        result = invoke(["login", "--with-token", "--server", srv.url])
    assert result.exit_code == 6
    assert "cannot check the token" in result.stderr
    assert memory_keyring.entries == {}


class TerminalSession:
    """forgectl with a pseudo-terminal as its controlling terminal and all three
    standard streams, as when a person types ``forgectl login`` in a shell: the
    prompt reads from the terminal with echo off (getpass), so whatever comes back
    through the pty is what the person would see."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once, nothing of pytest runs here
            os.execve(str(FORGECTL), [str(FORGECTL), *args], env)
        self.screen = bytearray()

    def read_until(self, wanted: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.screen:
            left = deadline - time.monotonic()
            assert left > 0, f"{wanted!r} not on the terminal: {bytes(self.screen)!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready and not self._read():
                raise AssertionError(f"{wanted!r} never came: {bytes(self.screen)!r}")

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def finish(self, timeout: float = 30) -> int:
        """The exit status (negative: the signal), once everything is read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], deadline - time.monotonic())
            if ready and not self._read():
                break
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def _read(self) -> bool:
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed its side
            return False
        self.screen += data
        return bool(data)


def test_login_prompts_on_the_terminal_without_echo(
    server: ThreadedReferenceServer, plaintext_env: dict[str, str], isolated_env: Path
) -> None:
    """The README's ``forgectl login --server URL  # hidden prompt``: the token typed
    at the prompt is not echoed, is checked against the server, stored, and used."""
    session = TerminalSession(["login", "--server", server.url], plaintext_env)
    session.read_until(b"Token:")
    session.type(TOKEN.encode() + b"\r")
    assert session.finish() == 0, bytes(session.screen)
    assert TOKEN.encode() not in session.screen  # echo was off while it was typed
    assert b"stored" in session.screen
    assert server.server.connections[-1].token == TOKEN  # login checked it there

    use = run(["logs", PROC_FINISHED, "--server", server.url, "--json"], plaintext_env)
    assert use.returncode == 0, use.stderr
    assert use.stdout.strip()
    assert server.server.connections[-1].token == TOKEN
    status = run(["auth", "status", "--server", server.url], plaintext_env)
    assert "from the OS keyring" in status.stdout


#: Ctrl-C halfway through the token; Ctrl-D on an empty line (end of input).
@pytest.mark.parametrize(("keys", "what"), [(b"tok-half\x03", "Ctrl-C"), (b"\x04", "Ctrl-D")])
def test_login_interrupted_at_the_prompt_stores_nothing(
    keys: bytes, what: str, server: ThreadedReferenceServer, plaintext_env: dict[str, str]
) -> None:
    session = TerminalSession(["login", "--server", server.url], plaintext_env)
    session.read_until(b"Token:")
    session.type(keys)
    code = session.finish()
    assert code in (130, -signal.SIGINT), (what, code, bytes(session.screen))
    assert b"Traceback" not in session.screen
    status = run(["auth", "status", "--server", server.url], plaintext_env)
    assert "from the OS keyring" not in status.stdout, (what, status.stdout)
