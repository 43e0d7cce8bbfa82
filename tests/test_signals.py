"""Signals and closed pipes, on the installed console script in a subprocess.

Ctrl-C and SIGTERM end forgectl within a second, without a traceback: the server
sees a normal close (1000), then forgectl dies by the signal itself, so a shell
loop stops at the first Ctrl-C (its shell reports 130 or 143). A SIGINT ignored
when forgectl started stays ignored. ``| head -n 1`` ends quietly with status 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from reference_server import (
    ATTEMPT_ID,
    PROC_FINISHED,
    Fault,
    Process,
    ThreadedReferenceServer,
    default_scenario,
)
from support import EXE

pytestmark = pytest.mark.timeout(20)

#: "Within a second" on an idle machine. The bound tells a prompt exit from one that
#: waits for a timeout or a backoff to run out, and leaves room for a loaded machine
#: (1.17 s was measured beside a CPU hog).
PROMPT = 3.0

TOKEN = "tok-sig-5b2d-distinctive"
PROC_HOLD = "proc_hold"


@pytest.fixture
def srv() -> Iterator[ThreadedReferenceServer]:
    scenario = default_scenario()
    scenario.processes[PROC_HOLD] = Process(
        id=PROC_HOLD,
        logs=[{"level": "info", "message": f"line {i}"} for i in range(3)],
        raw=[f"raw line {i}" for i in range(3)],
        finished=False,
        hold_open=True,
    )
    with ThreadedReferenceServer(token=TOKEN, scenario=scenario) as server:
        yield server


def spawn(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [EXE, "--server", url, *args],
        env={**os.environ, "FORGE_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_with(child: subprocess.Popen[str], signum: int) -> tuple[int, str, str, float]:
    started = time.monotonic()
    child.send_signal(signum)
    try:
        out, err = child.communicate(timeout=5)
    finally:
        child.kill()
    return child.returncode, out, err, time.monotonic() - started


COMMANDS = {
    "logs --follow": ("logs", PROC_HOLD, "--follow"),
    "logs --raw --follow": ("logs", PROC_HOLD, "--raw", "--follow"),
    "monitor": ("monitor",),
    "diff --follow": ("diff", ATTEMPT_ID, "--follow"),
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_signal_ends_a_live_stream_with_a_normal_close(
    srv: ThreadedReferenceServer, command: str, signum: int
) -> None:
    child = spawn(srv.url, *COMMANDS[command])
    assert child.stdout is not None
    first = child.stdout.readline()  # streaming: the connection is up
    assert first
    rc, _out, err, took = stop_with(child, signum)
    assert rc == -signum  # died by the signal, after closing the socket
    assert took < PROMPT
    assert "Traceback" not in err
    assert TOKEN not in err
    srv.wait_all_done()
    (rec,) = srv.accepted
    assert (rec.closed_by, rec.close_code) == ("client", 1000)


def test_sigint_while_waiting_to_reconnect(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(
        Fault(drop_after=1, path=f"/ws/execution-processes/{PROC_HOLD}/logs/normalized")
    )
    child = spawn(srv.url, "logs", PROC_HOLD, "--follow")
    assert child.stderr is not None
    line = child.stderr.readline()
    assert "reconnecting in" in line  # now sleeping in the backoff
    rc, _, err, took = stop_with(child, signal.SIGINT)
    assert (rc, took < PROMPT) == (-signal.SIGINT, True)
    assert "Traceback" not in err


def test_sigint_during_the_handshake(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(Fault(handshake_delay=5))
    child = spawn(srv.url, "monitor")
    srv.wait_for_connections(1)
    rc, out, err, took = stop_with(child, signal.SIGINT)
    assert (rc, out, took < PROMPT) == (-signal.SIGINT, "", True)
    assert "Traceback" not in err


def _shell(script: str, url: str) -> subprocess.Popen[str]:
    """``bash -c script`` in a session of its own, as a terminal's foreground job."""
    return subprocess.Popen(
        ["bash", "-c", script],
        env={**os.environ, "FORGE_TOKEN": TOKEN, "FORGE_URL": url, "EXE": EXE},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_one_ctrl_c_stops_a_shell_loop(srv: ThreadedReferenceServer) -> None:
    """Ctrl-C reaches the whole foreground process group: bash waits for forgectl,
    sees it die by SIGINT, and stops the loop (it would run the next round had
    forgectl merely exited 130)."""
    script = (
        f'for i in 1 2 3; do "$EXE" logs {PROC_HOLD} --follow; echo "round $i: $?" >&2; done; '
        'echo "loop finished" >&2'
    )
    shell = _shell(script, srv.url)
    assert shell.stdout is not None
    assert shell.stdout.readline()  # the first forgectl is streaming
    os.killpg(shell.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    try:
        _, err = shell.communicate(timeout=10)
    finally:
        shell.kill()
    assert shell.returncode == -signal.SIGINT, err  # the shell stopped by SIGINT too
    assert "round" not in err and "loop finished" not in err
    assert "Traceback" not in err
    srv.wait_all_done()
    (rec,) = srv.accepted  # no second round ever connected
    assert (rec.closed_by, rec.close_code) == ("client", 1000)


def test_a_sigint_ignored_at_start_stays_ignored(srv: ThreadedReferenceServer) -> None:
    """A script's background job starts with SIGINT ignored: forgectl keeps it so.
    SIGINT then SIGTERM: the kernel delivers the lower number first, so had SIGINT
    been handled forgectl would have died by it; it dies by SIGTERM instead."""
    shell = _shell(f'trap "" INT; exec "$EXE" logs {PROC_HOLD} --follow', srv.url)
    assert shell.stdout is not None
    assert shell.stdout.readline()  # streaming
    os.kill(shell.pid, signal.SIGINT)
    os.kill(shell.pid, signal.SIGTERM)
    try:
        _, err = shell.communicate(timeout=10)
    finally:
        shell.kill()
    assert shell.returncode == -signal.SIGTERM, err
    assert "Traceback" not in err
    srv.wait_all_done()
    (rec,) = srv.accepted
    assert (rec.closed_by, rec.close_code) == ("client", 1000)


@pytest.mark.parametrize(
    "args",
    [
        ("logs", PROC_FINISHED),
        ("logs", PROC_FINISHED, "--raw"),
        ("logs", PROC_HOLD, "--follow"),
        ("monitor",),
        ("diff", ATTEMPT_ID, "--follow"),
    ],
    ids=" ".join,
)
def test_head_n_1_ends_quietly(srv: ThreadedReferenceServer, args: tuple[str, ...]) -> None:
    # A live stream must notice the closed pipe by itself: the monitor keeps
    # sending progress events after head has gone.
    srv.event_interval = 0.05
    srv.events.extend({"type": "process_progress", "processId": f"p{i}"} for i in range(100))
    srv.processes[PROC_HOLD].live_logs = [
        {"level": "info", "message": f"live {i}"} for i in range(100)
    ]
    srv.processes[PROC_HOLD].live_interval = 0.05
    srv.attempts[ATTEMPT_ID].diffs *= 50
    for i, diff in enumerate(srv.attempts[ATTEMPT_ID].diffs):
        srv.attempts[ATTEMPT_ID].diffs[i] = {**diff, "insertions": i}
    srv.attempts[ATTEMPT_ID].live_interval = 0.05
    command = " ".join([EXE, "--server", srv.url, *args])
    proc = subprocess.run(
        ["bash", "-c", f'{command} | head -n 1; echo "status=${{PIPESTATUS[0]}}" >&2'],
        env={**os.environ, "FORGE_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert len(proc.stdout.splitlines()) == 1
    if "--raw" not in args:
        json.loads(proc.stdout)
    assert proc.stderr == "status=0\n"
