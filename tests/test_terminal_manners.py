"""What a person at a terminal sees, on the REAL Forge server, through a pseudo-terminal.

- A process's own colours (a setup script's SGR sequences) are rendered in pretty
  mode (``--color auto`` on a terminal, ``--color always`` anywhere), dropped with
  ``--color never`` and ``NO_COLOR``; any other control sequence stays shown as text.
- ``logs -f`` on a terminal ends with one stderr line saying how the process ended;
  into a pipe it says nothing.
- ``monitor``'s lines fit 100 columns with short ids, come in event-time order, and a
  running process shows how long it has run.
- One Ctrl-C stops a shell loop of ``logs -f`` (forgectl dies by SIGINT), and SIGTERM
  ends it by SIGTERM (tests/test_signals.py has the rest, on the reference server).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime

import pytest
from forge_server import TERMINAL_STATUSES, ForgeServer
from ptyrun import PtyRun
from support import EXE

pytestmark = [pytest.mark.forge, pytest.mark.timeout(120)]


#: A setup script: a coloured line, a title change and a screen clear, then exit 3
#: (a failing setup starts no coding agent).
COLOURED = (
    r"printf '\033[32mok\033[0m module_1\n';"
    r" printf 'title \033]0;PWNED\007 here\n';"
    r" printf 'wipe \033[2J there\n'; exit 3"
)
#: Any SGR sequence (what rich writes for a style).
SGR = re.compile(r"\x1b\[[0-9;]*m")
#: Every escape sequence (to measure the text a line shows).
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def why(server: ForgeServer, stderr: str) -> str:
    """A failure's context: forgectl's stderr and the server log's tail."""
    return f"forgectl's stderr:\n{stderr}\n--- server log ---\n{server.log_tail()}"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**base, **extra}


def setup_process(server: ForgeServer, name: str, script: str) -> tuple[str, str]:
    """(attempt id, setup process id) of a new attempt whose setup runs ``script``."""
    project = server.create_project(name, server.make_repo(name), setup_script=script)
    task = server.create_task(project["id"], name)
    attempt = server.create_attempt(task["id"])["id"]
    setup = server.wait_for_process(attempt, "setupscript", {"running", *TERMINAL_STATUSES})
    return attempt, str(setup["id"])


@pytest.fixture(scope="module")
def coloured(server: ForgeServer) -> str:
    _, pid = setup_process(server, "colours", COLOURED)
    server.wait_for_process(_attempt_of(server, pid), "setupscript", TERMINAL_STATUSES, 20)
    return pid


def _attempt_of(server: ForgeServer, pid: str) -> str:
    return str(server.get_process(pid)["task_attempt_id"])


def _shown(text: str) -> str:
    """The screen's text without its styles."""
    return SGR.sub("", text)


# -- a process's own colours ---------------------------------------------------------------


def _assert_neutralized(screen: str) -> None:
    """The title change and the screen clear reach the terminal as text only."""
    assert "\x1b]" not in screen and "\x07" not in screen and "\x1b[2J" not in screen
    assert "title \\x1b]0;PWNED\\x07 here" in _shown(screen)
    assert "wipe \\x1b[2J there" in _shown(screen)


def test_colours_are_rendered_on_a_terminal(server: ForgeServer, coloured: str) -> None:
    run = PtyRun([EXE, "-s", server.url, "logs", coloured], env=env())
    assert run.wait(30) == 0, why(server, run.stderr)
    screen = run.text
    # green (32) around "ok", as rich writes it, and no escape shown as text
    assert re.search(r"\x1b\[(?:[0-9;]*;)?32m(?:\x1b\[[0-9;]*m)*ok\x1b\[0m", screen), screen
    assert "ok module_1" in _shown(screen)
    assert "\\x1b[32m" not in screen
    _assert_neutralized(screen)


@pytest.mark.parametrize("how", ["--color never", "NO_COLOR"])
def test_colours_are_dropped_without_colour(server: ForgeServer, coloured: str, how: str) -> None:
    args = ["--color", "never"] if how.startswith("--") else []
    extra = {"NO_COLOR": "1"} if how == "NO_COLOR" else {}
    run = PtyRun([EXE, "-s", server.url, "logs", coloured, *args], env=env(**extra))
    assert run.wait(30) == 0, why(server, run.stderr)
    screen = run.text
    assert not SGR.search(screen), screen  # no colour at all, not even the process's
    assert "ok module_1" in screen
    assert "\\x1b[32m" not in screen and "\\x1b[0m" not in screen
    _assert_neutralized(screen)


def test_colour_always_into_a_pipe(server: ForgeServer, coloured: str) -> None:
    proc = subprocess.run(
        [EXE, "-s", server.url, "logs", coloured, "--pretty", "--color", "always"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, why(server, proc.stderr)
    assert re.search(r"\x1b\[(?:[0-9;]*;)?32m(?:\x1b\[[0-9;]*m)*ok\x1b\[0m", proc.stdout)
    _assert_neutralized(proc.stdout)
    # JSON keeps the server's text as it is: the colours are data there
    json_out = subprocess.run(
        [EXE, "-s", server.url, "logs", coloured, "--json"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=False,
    ).stdout
    assert "\\u001b[32mok\\u001b[0m module_1" in json_out


# -- logs -f says how the process ended ------------------------------------------------------


def test_logs_follow_on_a_terminal_ends_saying_how_the_process_ended(
    server: ForgeServer,
) -> None:
    _, pid = setup_process(server, "ending", "echo begin; sleep 1.5; echo end; exit 4")
    run = PtyRun([EXE, "-s", server.url, "logs", pid, "-f"], env=env())
    assert run.wait(60) == 0, why(server, run.stderr)
    assert "end" in run.text
    # (a live script's first line may say its log comes from its raw output)
    lines = run.stderr.strip().splitlines()
    assert sum(" failed, " in line for line in lines) == 1, run.stderr
    found = re.fullmatch(
        rf"forgectl: process {pid} failed, exit code 4, after (\d+\.\d) s", lines[-1]
    )
    assert found, run.stderr
    assert 1.0 <= float(found.group(1)) < 30


def test_logs_follow_into_a_pipe_says_nothing_at_the_end(server: ForgeServer) -> None:
    _, pid = setup_process(server, "ending-piped", "echo begin; sleep 0.5; exit 4")
    proc = subprocess.run(
        [EXE, "-s", server.url, "logs", pid, "-f"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, why(server, proc.stderr)
    assert " failed, " not in proc.stderr and "exit code" not in proc.stderr
    # --exit-status exits as the process did, and says nothing either
    proc = subprocess.run(
        [EXE, "-s", server.url, "logs", pid, "-f", "--exit-status"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 4, why(server, proc.stderr)
    assert " failed, " not in proc.stderr and "exit code" not in proc.stderr


# -- monitor on a terminal ----------------------------------------------------------------------


def _screen_lines(screen: str) -> list[str]:
    """The lines left on the screen: a line rewritten after ``\\r`` shows its last
    version; styles removed."""
    out = []
    for line in screen.split("\n"):
        shown = ANSI.sub("", line.split("\r")[-1])
        if shown:
            out.append(shown)
    return out


def test_monitor_lines_fit_100_columns_in_time_order_with_elapsed_time(
    server: ForgeServer, coloured: str
) -> None:
    run = PtyRun([EXE, "-s", server.url, "monitor", "--history"], env=env(), columns=160)
    try:
        # connected once the history is on the screen (the coloured setup's end)
        run.wait_for(lambda text: "exit code 3" in text, 30, "the history")
        # Long enough to be seen running on a loaded machine, where the server's event
        # stream can deliver a start a couple of seconds late.
        attempts = [setup_process(server, f"watched-{n}", "sleep 6; exit 2")[0] for n in range(2)]
        # While they run: the running line, rewritten each second with the time run.
        run.wait_for(
            lambda text: re.search(r"running: [0-9a-f]{8} setupscript [1-9]s", text) is not None,
            30,
            "the running line with an elapsed time",
        )
        for attempt in attempts:
            server.wait_for_process(attempt, "setupscript", TERMINAL_STATUSES, 30)
        run.wait_for(lambda text: text.count("exit code 2") >= 2, 30, "both processes' ends")
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n--- server log ---\n{server.log_tail()}") from None
    finally:
        run.proc.send_signal(2)
        run.wait(10)
    lines = _screen_lines(run.text)
    events = [line for line in lines if "running:" not in line]
    assert len(events) >= 4, run.text
    for line in lines:
        assert len(line) <= 100, line
    # short ids: no full UUID on any line
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", "\n".join(lines)), lines
    # event-time order
    times = [datetime.strptime(line[:8], "%H:%M:%S") for line in events if line[:2].isdigit()]
    assert times == sorted(times), events
    # an ended process says how long it ran
    assert any(
        re.search(r"failed .*exit code 2\) · (?:[6-9]|\d\d)\.\d s", line) for line in events
    ), events
    # the running line is gone once nothing runs
    assert "running:" not in lines[-1], lines


# -- Ctrl-C and SIGTERM -------------------------------------------------------------------------


@pytest.fixture
def long_script(server: ForgeServer) -> Iterator[str]:
    _, pid = setup_process(server, "long", "echo start; sleep 60; exit 1")
    yield pid
    server.stop_process(pid)


def test_one_ctrl_c_stops_a_shell_loop_on_the_real_server(
    server: ForgeServer, long_script: str
) -> None:
    """bash sees forgectl die by SIGINT (not exit 130) and stops the loop."""
    script = (
        f'for i in 1 2 3; do "{EXE}" -s {server.url} logs {long_script} -f; '
        'echo "round $i: $?" >&2; done; echo "loop finished" >&2'
    )
    shell = subprocess.Popen(
        ["bash", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        start_new_session=True,
    )
    try:
        assert shell.stdout is not None
        assert "start" in shell.stdout.readline()  # the first forgectl is streaming
        os.killpg(shell.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = shell.communicate(timeout=20)
    finally:
        shell.kill()
    assert shell.returncode == -signal.SIGINT, why(server, err)
    assert "round" not in err and "loop finished" not in err and "Traceback" not in err


def test_sigterm_ends_forgectl_by_sigterm_keeping_its_output(
    server: ForgeServer, long_script: str
) -> None:
    proc = subprocess.Popen(
        [EXE, "-s", server.url, "logs", long_script, "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "start" in first
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM, why(server, err)
    assert "Traceback" not in err
