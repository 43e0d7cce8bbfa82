"""Every command against the documented API, in-process (CliRunner) and as the
installed console script: exit codes, stdout carrying data only, stderr diagnostics."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import support
from click.testing import Result
from reference_server import (
    ATTEMPT_ID,
    PROC_FINISHED,
    PROC_LIVE,
    PROC_RAW,
    SCENARIO_EVENTS,
    SPEC_DIFF_UPDATE,
    SPEC_LOG,
    SPEC_RAW_LINES,
    Fault,
    Process,
    ThreadedReferenceServer,
    default_scenario,
)

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok-Zq81-distinctive-7f3e"
PROC_HOLD = "proc_hold"
PROC_BUSY = "proc_busy"
HTML = "<!doctype html><html><head><title>Forge</title></head><body>app</body></html>"


# -- helpers ------------------------------------------------------------------------


def scenario_with_hold() -> Any:
    scenario = default_scenario()
    scenario.processes[PROC_HOLD] = Process(
        id=PROC_HOLD,
        logs=[copy.deepcopy(SPEC_LOG)],
        finished=False,
        hold_open=True,
    )
    # A process that logs more often than --settle: it never falls silent.
    scenario.processes[PROC_BUSY] = Process(
        id=PROC_BUSY,
        logs=[{**SPEC_LOG, "message": f"history {i}"} for i in range(20)],
        raw=[f"history {i}" for i in range(20)],
        finished=False,
        live_logs=[{**SPEC_LOG, "message": f"live {i}"} for i in range(100)],
        live_raw=[f"live {i}" for i in range(100)],
        live_interval=0.2,
        hold_open=True,
    )
    return scenario


@pytest.fixture
def srv() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(token=TOKEN, scenario=scenario_with_hold()) as server:
        yield server


def invoke(srv_url: str, *args: str, token: str | None = TOKEN) -> Result:
    return support.invoke(srv_url, *args, env=token_env(token), catch_exceptions=False)


def run_exe(
    srv_url: str, *args: str, token: str | None = TOKEN, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return support.run(srv_url, *args, env=token_env(token), timeout=timeout)


def token_env(token: str | None = TOKEN) -> dict[str, str]:
    return {"FORGE_TOKEN": token} if token else {}


def child_env(token: str | None = TOKEN) -> dict[str, str]:
    return support.child_env(token_env(token))


def json_lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines()]


def assert_clean_stderr(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert TOKEN not in stderr


# What each command prints, as JSON values (the server's objects, unchanged).
def finished_logs(srv: ThreadedReferenceServer) -> list[Any]:
    return [*srv.processes[PROC_FINISHED].logs]


def live_logs(srv: ThreadedReferenceServer) -> list[Any]:
    proc = srv.processes[PROC_LIVE]
    return [*proc.logs, *proc.live_logs]


MONITOR_EVENTS = SCENARIO_EVENTS


# -- data on stdout, nothing else ---------------------------------------------------


def test_scenario_carries_the_spec_payloads(srv: ThreadedReferenceServer) -> None:
    # The expectations below compare against server state; make sure that state is
    # the spec's examples, so equal output means the spec's objects came through.
    assert SPEC_LOG in srv.processes[PROC_FINISHED].logs
    assert srv.attempts[ATTEMPT_ID].diffs[0] == SPEC_DIFF_UPDATE
    assert srv.events == MONITOR_EVENTS


@pytest.mark.parametrize("via", ["clirunner", "script"])
def test_logs_of_a_finished_process(srv: ThreadedReferenceServer, via: str) -> None:
    if via == "clirunner":
        result = invoke(srv.url, "logs", PROC_FINISHED, "--json")
        code, out, err = result.exit_code, result.stdout, result.stderr
    else:
        proc = run_exe(srv.url, "logs", PROC_FINISHED)  # piped: JSON by default
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert (code, err) == (0, "")
    assert json_lines(out) == finished_logs(srv)
    assert json_lines(out)[1] == SPEC_LOG
    assert len(srv.connections) == 1  # ended by the server's close: no reconnect
    srv.wait_all_done()
    assert srv.connections[0].closed_by == "server"
    assert srv.connections[0].close_code == 1000


@pytest.mark.parametrize("via", ["clirunner", "script"])
def test_logs_raw(srv: ThreadedReferenceServer, via: str) -> None:
    if via == "clirunner":
        result = invoke(srv.url, "logs", PROC_FINISHED, "--raw")
        code, out, err = result.exit_code, result.stdout, result.stderr
    else:
        proc = run_exe(srv.url, "logs", PROC_FINISHED, "--raw")
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert (code, err) == (0, "")
    assert out == "".join(line + "\n" for line in SPEC_RAW_LINES)


def test_logs_raw_follow_keeps_escapes_verbatim(srv: ThreadedReferenceServer) -> None:
    result = invoke(srv.url, "logs", PROC_RAW, "--raw", "--follow")
    assert (result.exit_code, result.stderr) == (0, "")
    proc = srv.processes[PROC_RAW]
    assert result.stdout == "".join(line + "\n" for line in [*proc.raw, *proc.live_raw])
    assert "\x1b[32m" in result.stdout  # raw means byte for byte


@pytest.mark.parametrize("via", ["clirunner", "script"])
def test_logs_follow_until_the_process_ends(srv: ThreadedReferenceServer, via: str) -> None:
    if via == "clirunner":
        result = invoke(srv.url, "logs", PROC_LIVE, "--follow", "--json")
        code, out, err = result.exit_code, result.stdout, result.stderr
    else:
        proc = run_exe(srv.url, "logs", PROC_LIVE, "--follow")
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert (code, err) == (0, "")
    assert json_lines(out) == live_logs(srv)
    assert len(srv.connections) == 1


def test_logs_without_follow_settles_on_a_running_process(
    srv: ThreadedReferenceServer,
) -> None:
    started = time.monotonic()
    result = invoke(srv.url, "logs", PROC_HOLD, "--settle", "0.3")
    elapsed = time.monotonic() - started
    assert (result.exit_code, result.stderr) == (0, "")
    assert json_lines(result.stdout) == [SPEC_LOG]
    assert 0.3 <= elapsed < 3
    srv.wait_all_done()
    assert srv.connections[0].closed_by == "client"
    assert srv.connections[0].close_code == 1000


@pytest.mark.parametrize("raw", [False, True], ids=["normalized", "raw"])
def test_follow_tail_on_a_process_that_never_falls_silent(
    srv: ThreadedReferenceServer, raw: bool
) -> None:
    """`-f --tail 3`: the last 3 lines of the history, then live ones as they come,
    though the process writes more often than --settle (the history trickles out)."""
    args = ["--raw"] if raw else ["--json"]
    child = subprocess.Popen(
        [support.EXE, "--server", srv.url, "logs", PROC_BUSY, "-f", "--tail", "3", *args],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    got: list[str] = []
    try:
        assert child.stdout is not None
        reader = threading.Thread(
            target=lambda: got.extend(child.stdout.readline().strip() for _ in range(5)),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(10)
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=5)
    finally:
        child.kill()
    messages = got if raw else [json.loads(line)["message"] for line in got]
    assert messages[:3] == ["history 17", "history 18", "history 19"]
    assert messages[3:] == ["live 0", "live 1"]


def test_logs_without_follow_silent_server_settles_empty(srv: ThreadedReferenceServer) -> None:
    # Accepts, never sends a frame: without --follow the backlog is empty, exit 0
    # (the silence is cut short by --stale-timeout instead of reconnecting forever).
    srv.faults.append(Fault(accept_then_silent=True, times=None))
    result = invoke(srv.url, "logs", PROC_HOLD, "--stale-timeout", "0.5")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert len(srv.connections) == 1


@pytest.mark.parametrize("via", ["clirunner", "script"])
def test_diff_prints_the_current_diff_and_exits(srv: ThreadedReferenceServer, via: str) -> None:
    if via == "clirunner":
        result = invoke(srv.url, "diff", ATTEMPT_ID, "--json")
        code, out, err = result.exit_code, result.stdout, result.stderr
    else:
        proc = run_exe(srv.url, "diff", ATTEMPT_ID)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert (code, err) == (0, "")
    assert json_lines(out) == [SPEC_DIFF_UPDATE]
    srv.wait_all_done()
    assert srv.connections[0].close_code == 1000  # we left; the attempt stays open


def test_diff_follow(srv: ThreadedReferenceServer) -> None:
    srv.attempts[ATTEMPT_ID].hold_open = False  # the server ends it with 1000
    result = invoke(srv.url, "diff", ATTEMPT_ID, "--follow", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert json_lines(result.stdout) == srv.attempts[ATTEMPT_ID].diffs
    assert len(srv.connections) == 1


def test_diff_follow_script_until_sigint(srv: ThreadedReferenceServer) -> None:
    child = subprocess.Popen(
        [support.EXE, "--server", srv.url, "diff", ATTEMPT_ID, "--follow"],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        got = [json.loads(child.stdout.readline()) for _ in range(2)]
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=5)
    finally:
        child.kill()
    assert got == srv.attempts[ATTEMPT_ID].diffs
    assert (child.returncode, out) == (-signal.SIGINT, "")  # died by it
    assert_clean_stderr(err)


def test_monitor_clirunner_until_ctrl_c(srv: ThreadedReferenceServer) -> None:
    # The runner's SIGINT handler works in-process too: interrupt once all six
    # events were sent, from another thread, as a terminal would.
    def interrupt() -> None:
        srv.wait_until(lambda: bool(srv.accepted) and srv.accepted[0].items_sent == 6)
        time.sleep(0.1)  # let the client read what was sent (nothing to await here)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt, daemon=True)
    killer.start()
    result = invoke(srv.url, "monitor", "--json")
    killer.join(5)
    assert result.exit_code == 130
    assert json_lines(result.stdout) == MONITOR_EVENTS
    assert "Traceback" not in result.stderr
    srv.wait_all_done()
    assert srv.connections[0].close_code == 1000


def test_monitor_script_json(srv: ThreadedReferenceServer) -> None:
    child = subprocess.Popen(
        [support.EXE, "--server", srv.url, "monitor"],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        got = [json.loads(child.stdout.readline()) for _ in MONITOR_EVENTS]
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=5)
    finally:
        child.kill()
    assert got == MONITOR_EVENTS
    assert (child.returncode, out) == (-signal.SIGTERM, "")  # died by it
    assert_clean_stderr(err)


# -- exit codes ---------------------------------------------------------------------


@pytest.mark.parametrize("via", ["clirunner", "script"])
@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [
        ("unknown process", 5, "not found"),
        ("no token", 4, "401"),
        ("forbidden token", 4, "403"),
        ("refused", 3, "connection refused"),
        ("html page", 6, "HTML"),
    ],
)
def test_exit_codes(
    srv: ThreadedReferenceServer, via: str, case: str, code: int, needle: str
) -> None:
    url, api = srv.url, "documented"
    token: str | None = TOKEN
    target = PROC_FINISHED
    if case == "unknown process":
        target = "proc_nope"
    elif case == "no token":
        token = None
    elif case == "forbidden token":
        srv.forbidden_tokens.add("tok-revoked")
        token = "tok-revoked"
    elif case == "refused":
        url = f"http://127.0.0.1:{support.free_port()}"
    elif case == "html page":
        srv.faults.append(
            Fault(handshake_status=200, handshake_body=HTML, handshake_content_type="text/html")
        )
    args = ("--api", api, "logs", target)
    started = time.monotonic()
    if via == "clirunner":
        result = invoke(url, *args, token=token)
        rc, out, err = result.exit_code, result.stdout, result.stderr
    else:
        proc = run_exe(url, *args, token=token)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    assert rc == code, err
    assert out == ""
    assert needle in err
    assert err.startswith("forgectl: error: ")
    assert len(err.strip().splitlines()) == 1
    assert_clean_stderr(err)
    if case == "refused":
        assert time.monotonic() - started < 5  # fails fast: no retry without --retry-for


def test_html_page_with_auto_detection_speaks_neither(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(
        Fault(handshake_status=200, handshake_body=HTML, handshake_content_type="text/html")
    )
    result = invoke(srv.url, "logs", PROC_FINISHED)  # --api auto by default
    assert result.exit_code == 6
    assert result.stdout == ""
    assert "speaks neither" in result.stderr
    # The probe asked /api/health, which the reference server does not serve.
    assert [rec.path for rec in srv.connections][-1] == "/api/health"


def test_open_timeout_is_a_connect_error(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(Fault(handshake_delay=3))
    started = time.monotonic()
    result = invoke(srv.url, "logs", PROC_FINISHED, "--open-timeout", "0.3")
    assert time.monotonic() - started < 2.5
    assert (result.exit_code, result.stdout) == (3, "")
    assert "no handshake answer within 0.3 s (--open-timeout)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_retry_for_waits_for_a_server_that_starts_later() -> None:
    port = support.free_port()
    child = subprocess.Popen(
        [
            support.EXE,
            "--server",
            f"http://127.0.0.1:{port}",
            "logs",
            PROC_FINISHED,
            "--retry-for",
            "15",
        ],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        first = child.stderr.readline()  # the first refused attempt, reported
        assert "waiting for the server" in first
        with ThreadedReferenceServer(token=TOKEN, scenario=default_scenario(), port=port) as server:
            out, err = child.communicate(timeout=15)
            assert child.returncode == 0, err
            assert json_lines(out) == server.processes[PROC_FINISHED].logs
    finally:
        child.kill()
    assert "connection refused" in first
    assert_clean_stderr(first + err)


def test_retry_for_gives_up() -> None:
    url = f"http://127.0.0.1:{support.free_port()}"
    started = time.monotonic()
    result = invoke(url, "logs", PROC_FINISHED, "--retry-for", "1.5")
    assert time.monotonic() - started < 4
    assert (result.exit_code, result.stdout) == (3, "")
    assert "gave up after 1.5 s" in result.stderr


# -- -v traces, tokens redacted -----------------------------------------------------


@pytest.mark.parametrize("via", ["clirunner", "script"])
def test_verbose_traces_redact_the_token(srv: ThreadedReferenceServer, via: str) -> None:
    args = ("-vv", "logs", PROC_LIVE, "--follow", "--ping-interval", "0.05")
    srv.processes[PROC_LIVE].live_interval = 0.1  # time for a ping and its pong
    if via == "clirunner":
        result = invoke(srv.url, *args)
        code, out, err = result.exit_code, result.stdout, result.stderr
    else:
        proc = run_exe(srv.url, *args)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert code == 0
    assert json_lines(out) == live_logs(srv)
    assert "connecting to http://127.0.0.1" in err
    assert "pong" in err
    assert TOKEN not in out + err
    # The server did get it: redaction is in the output, not in the request.
    assert srv.connections[0].token == TOKEN


def test_errors_redact_a_token_given_as_a_flag(srv: ThreadedReferenceServer) -> None:
    srv.forbidden_tokens.add(TOKEN + "x")
    result = support.invoke(srv, "-v", "--token", TOKEN + "x", "logs", PROC_FINISHED)
    assert result.exit_code == 4
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="the Linux (XDG) places")
def test_logs_start_without_the_imports_they_do_not_need(srv: ThreadedReferenceServer) -> None:
    """A logs run does not import platformdirs (on Linux the config directory is
    XDG's, found without it) or httpx (without a proxy, REST look-ups and SSE go
    through h11). (tempfile and shutil come with websockets' importlib.metadata.)"""
    unneeded = ("platformdirs", "httpx")
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print([n for n in {unneeded!r} if n in sys.modules], "
        "file=sys.stderr))\n"
        "from forgectl.cli import entry\n"
        "entry()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--server", srv.url, "logs", PROC_FINISHED, "--json"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout) == finished_logs(srv)
    assert proc.stderr == "[]\n"
