"""Tokens never leave: not in an error line, not in an ``unexpected`` line, not in a
``--debug`` traceback, not in a ``-v`` trace, and never through a proxy that could
read them (an ``http://`` server with ``HTTP_PROXY`` set) unless that is allowed.

The peers are real: a server whose error page echoes the request (token
included), a keyring backend whose error quotes the password, and an HTTP proxy
that forwards for real and keeps every byte it was sent.
"""

from __future__ import annotations

import pytest
from hostile import (
    HEALTH,
    Frames,
    HostileServer,
    Http,
    RecordingProxy,
    clean_env,
    forgectl,
    patches,
    rest,
)

from forgectl.errors import ExitCode

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok-HARDEN-5e1f9a-never-shown"
PROC = "p1"
LOGS = f"/ws/execution-processes/{PROC}/logs/normalized"
ENTRY = '{"level": "info", "message": "hello"}'


def with_token(**extra: str) -> dict[str, str]:
    return clean_env(FORGE_TOKEN=TOKEN, **extra)


@pytest.mark.parametrize("debug", [["--debug"], []], ids=["flag", "env"])
def test_a_debug_traceback_hides_the_token_an_error_page_echoes(debug: list[str]) -> None:
    with HostileServer({LOGS: Http(500, "internal error", echo=True)}) as srv:
        env = with_token() if debug else with_token(FORGECTL_DEBUG="1")
        run = forgectl(
            *debug, "-s", srv.url, "--api", "documented", "logs", PROC, "--no-reconnect", env=env
        )
    assert srv.seen and srv.seen[0].query["token"] == TOKEN  # it was sent, and echoed
    assert run.code == ExitCode.CONNECT, run.stderr
    assert "Traceback (most recent call last)" in run.stderr  # --debug did its job
    assert "server error HTTP 500" in run.stderr
    assert TOKEN not in run.stderr, run.stderr
    assert "token=***" in run.stderr


@pytest.mark.parametrize("backend", ["LeakyKeyring", "LeakierKeyring"])
@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_a_keyring_error_quoting_the_password_is_one_redacted_line(
    debug: list[str], backend: str
) -> None:
    env = clean_env(PYTHON_KEYRING_BACKEND=f"keyring_backends.{backend}")
    run = forgectl(
        *debug,
        "login",
        "--with-token",
        "--no-verify",
        "-s",
        "http://127.0.0.1:9",
        stdin=TOKEN + "\n",
        env=env,
    )
    assert TOKEN not in run.stderr, run.stderr
    assert run.code == ExitCode.USAGE, run.stderr  # a keyring failure, not a bug (1)
    assert "no usable keyring" in run.stderr
    assert "collection locked" in run.stderr  # the backend's reason, redacted
    assert "--insecure-storage" in run.stderr
    if not debug:
        assert len(run.stderr.splitlines()) == 1, run.stderr


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_unexpected_error_line_is_redacted_and_escaped(
    debug: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug of forgectl's (exit 1) is one line through the same gate as every other:
    the exception's text may quote a token, or server text, verbatim."""
    from hostile import EVIL, inert

    from forgectl.cli.app import Application
    from forgectl.cli.runner import _run

    app = Application()
    app.set_connection("token", TOKEN, "flag")
    app.debug = debug

    async def body() -> int:
        raise RuntimeError(f"sent {TOKEN} and got {EVIL}")

    code = _run(app, body, [])
    err = capsys.readouterr().err
    assert code == ExitCode.ERROR
    assert TOKEN not in err, err
    assert inert(err) is None, err
    assert "\\x1b]0;PWNED-TITLE" in err  # shown, escaped
    last = err.splitlines()[-1]
    assert last.startswith("forgectl: error: unexpected RuntimeError: sent *** and got ")
    assert ("Traceback (most recent call last)" in err) == debug
    if not debug:
        assert len(err.splitlines()) == 1, err


def test_verbose_traces_hide_the_token() -> None:
    echo = '{"level": "info", "message": "connected as ' + TOKEN + '"}'
    with HostileServer({LOGS: Frames([echo])}) as srv:
        run = forgectl("-vv", "-s", srv.url, "--api", "documented", "logs", PROC, env=with_token())
    assert run.code == 0, run.stderr
    assert "frame, " in run.stderr and "connecting to" in run.stderr
    assert TOKEN not in run.stderr, run.stderr


# -- proxies -------------------------------------------------------------------------------


def forge_like() -> HostileServer:
    """Answers the documented logs route and the real server's routes alike."""
    return HostileServer(
        {
            LOGS: Frames([ENTRY]),
            "/api/health": HEALTH,
            f"/api/execution-processes/{PROC}": rest({"id": PROC, "run_reason": "codingagent"}),
            f"/api/execution-processes/{PROC}/normalized-logs/ws": patches(),
            f"/api/execution-processes/{PROC}/raw-logs/ws": patches("raw\n"),
            "/api/events": Http(200, "", "text/event-stream"),
        }
    )


#: (forgectl arguments, what travels first): a WebSocket through a CONNECT tunnel,
#: a REST look-up or an event stream as an absolute-URI GET.
THROUGH_PROXY = {
    "documented-websocket": ["--api", "documented", "logs", PROC],
    "forge-rest-lookup": ["--api", "forge", "logs", PROC],
    "forge-websocket": ["--api", "forge", "logs", PROC, "--raw"],
    "forge-event-stream": ["--api", "forge", "monitor", "--no-reconnect"],
}


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
@pytest.mark.parametrize("args", THROUGH_PROXY.values(), ids=THROUGH_PROXY.keys())
def test_the_token_is_not_sent_through_a_proxy_that_could_read_it(
    args: list[str], variable: str
) -> None:
    with forge_like() as srv, RecordingProxy() as proxy:
        run = forgectl("-s", srv.url, *args, env=with_token(**{variable: proxy.url}))
    assert run.code == ExitCode.USAGE, run.stderr
    assert proxy.received == []  # refused before anything was sent
    assert srv.seen == []
    (line,) = run.stderr.splitlines()
    assert line.startswith("forgectl: error: refusing to send the token")
    assert proxy.url in line and "--allow-plaintext-proxy" in line and "NO_PROXY" in line
    assert TOKEN not in run.stderr


def test_https_proxy_is_taken_for_websockets_too() -> None:
    # websockets' client routes ws:// through HTTPS_PROXY when no ws/http proxy is set.
    with forge_like() as srv, RecordingProxy() as proxy:
        args = THROUGH_PROXY["documented-websocket"]
        run = forgectl("-s", srv.url, *args, env=with_token(HTTPS_PROXY=proxy.url))
    assert run.code == ExitCode.USAGE, run.stderr
    assert proxy.received == []


def test_allowing_a_plaintext_proxy_sends_the_token_through_it() -> None:
    with forge_like() as srv, RecordingProxy() as proxy:
        run = forgectl(
            "-s",
            srv.url,
            "--allow-plaintext-proxy",
            *THROUGH_PROXY["documented-websocket"],
            env=with_token(HTTP_PROXY=proxy.url),
        )
    assert run.code == 0, run.stderr
    assert b'"message":"hello"' in run.stdout
    sent = proxy.everything()
    assert sent.startswith(b"CONNECT 127.0.0.1:")  # the proxy was used, as allowed
    assert TOKEN.encode() in sent
    assert TOKEN not in run.stderr


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_goes_direct_and_sends_the_token(no_proxy: str) -> None:
    with forge_like() as srv, RecordingProxy() as proxy:
        run = forgectl(
            "-s",
            srv.url,
            *THROUGH_PROXY["forge-rest-lookup"],
            env=with_token(HTTP_PROXY=proxy.url, NO_PROXY=no_proxy),
        )
    assert run.code == 0, run.stderr
    assert proxy.received == []
    assert srv.seen and all(seen.query.get("token") == TOKEN for seen in srv.seen)


def test_without_a_token_a_proxy_is_just_used() -> None:
    with forge_like() as srv, RecordingProxy() as proxy:
        run = forgectl(
            "-s",
            srv.url,
            *THROUGH_PROXY["forge-rest-lookup"],
            env=clean_env(HTTP_PROXY=proxy.url),
        )
    assert run.code == 0, run.stderr
    assert proxy.everything().startswith(b"GET http://127.0.0.1:")
    assert b"token" not in proxy.everything()


def test_a_proxy_with_credentials_is_named_without_them() -> None:
    with forge_like() as srv, RecordingProxy() as proxy:
        url = proxy.url.replace("http://", "http://user:proxy-pass-77@")
        run = forgectl("-s", srv.url, "logs", PROC, env=with_token(HTTP_PROXY=url))
    assert run.code == ExitCode.USAGE, run.stderr
    assert "proxy-pass-77" not in run.stderr and proxy.url in run.stderr
