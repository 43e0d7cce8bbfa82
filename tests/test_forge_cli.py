"""forgectl end to end against the REAL Forge server (npm @automagik/forge 0.7.4).

The installed console script runs in a subprocess with ``-s <server.url>`` and no
``--api`` flag, so auto-detection is exercised on every run; a few runs go
through CliRunner and the Python API. The server builds real processes
(tests/forge_server.py): a setup script that prints lines and exits 3, a dev
server that gets killed, a coding agent that fails offline, files changed in the
worktree.

Runs only inside a loopback-only network namespace:

    unshare -rn sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q tests/test_forge_cli.py'

Elsewhere, or without the binary, the tests skip; with ``CI=true`` they fail.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
from forge_bed import established
from forge_server import (
    SCENARIO_FILES,
    ForgeServer,
    Scenario,
    make_scenario,
)
from support import EXE, invoke, note, run

from forgectl import ForgeClient
from forgectl.errors import ExitCode
from forgectl.events import DiffUpdate, LogEntry, ProcessEvent
from forgectl.filters import NO_SERVER_TIMES
from forgectl.stream import StreamOptions

pytestmark = [pytest.mark.forge, pytest.mark.timeout(90)]

UNKNOWN = "00000000-0000-0000-0000-000000000000"
LOG_KEYS = {"level", "message", "timestamp", "source", "metadata"}


@pytest.fixture(scope="module")
def sc(server: ForgeServer) -> Scenario:
    """Setup script exits 3 (no coding agent), a killed dev server, changed files."""
    return make_scenario(server, name="cli", setup_exit=3, dev_run_seconds=0.6)


@pytest.fixture(scope="module")
def agent(server: ForgeServer) -> Scenario:
    """Setup script exits 0, so the coding agent runs (and fails offline)."""
    return make_scenario(
        server, name="agent", setup_exit=0, setup_sleep=0.05, dev_server=False, write_files=False
    )


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


class Live:
    """A console-script run read line by line while the test acts on the server."""

    def __init__(self, server: ForgeServer, *args: str) -> None:
        self.proc = subprocess.Popen(
            [EXE, "-s", server.url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: Queue[str] = Queue()
        self.stderr = ""
        self._err: list[str] = []
        self._err_seen = threading.Condition()
        note(f"forgectl -s {server.url} {' '.join(args)} (a child): stderr", self.stderr_so_far)
        self._readers = [
            threading.Thread(target=self._pump, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._err_seen:
                self._err.append(line)
                self._err_seen.notify_all()

    def wait_stderr(self, text: str, timeout: float = 15) -> float:
        """Wait until a stderr line contains ``text`` (a -v trace); when it was seen."""
        with self._err_seen:
            found = self._err_seen.wait_for(lambda: any(text in ln for ln in self._err), timeout)
        assert found, f"no {text!r} on stderr within {timeout} s: {''.join(self._err)}"
        return time.monotonic()

    def stderr_so_far(self) -> str:
        with self._err_seen:
            return "".join(self._err)

    def next(self, timeout: float = 10) -> dict[str, Any]:
        try:
            return dict(json.loads(self.lines.get(timeout=timeout)))
        except Empty:
            with self._err_seen:
                err = "".join(self._err)
            command = " ".join(map(str, self.proc.args[1:]))  # type: ignore[index]
            raise AssertionError(
                f"{command}: no output within {timeout:.0f} s; its stderr:\n{err}"
            ) from None

    def until(self, pred: Any, timeout: float = 15) -> list[dict[str, Any]]:
        """Lines up to and including the first one ``pred`` accepts."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            seen.append(self.next(max(0.1, deadline - time.monotonic())))
            if pred(seen[-1]):
                return seen

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.finish(10)

    def finish(self, timeout: float) -> int:
        """Wait for the run to end by itself; its status (stderr in ``self.stderr``)."""
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(5)
        self.stderr = "".join(self._err)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# -- dialect selection ---------------------------------------------------------------


def test_auto_detection_picks_forge_and_says_why(server: ForgeServer, sc: Scenario) -> None:
    proc = run(server, "-v", "logs", sc.setup_process_id, "--raw")
    assert proc.returncode == 0, proc.stderr
    trace = [line for line in proc.stderr.splitlines() if "dialect:" in line]
    assert len(trace) == 1, proc.stderr
    assert "dialect: forge" in trace[0]
    assert "HTML page (HTTP 200)" in trace[0]  # what the documented route answered
    assert "GET /api/health answered HTTP 200 application/json" in trace[0]
    assert f"/api/execution-processes/{sc.setup_process_id}/raw-logs/ws" in proc.stderr
    assert proc.stdout == run(server, "logs", sc.setup_process_id, "--raw").stdout


@pytest.mark.parametrize("how", ["flag", "env"])
def test_api_forge_skips_detection(server: ForgeServer, sc: Scenario, how: str) -> None:
    args = ["--api", "forge"] if how == "flag" else []
    env = {"FORGE_API": "forge"} if how == "env" else {}
    proc = run(server, "-v", *args, "logs", sc.setup_process_id, "--raw", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "/ws/" not in proc.stderr and "dialect:" not in proc.stderr  # straight to /api
    assert proc.stdout.replace(sc.setup_stderr, "", 1) == sc.setup_stdout


@pytest.mark.parametrize("how", ["flag", "env"])
def test_api_documented_against_the_real_server_is_a_protocol_error(
    server: ForgeServer, sc: Scenario, how: str
) -> None:
    args = ["--api", "documented"] if how == "flag" else []
    env = {"FORGE_API": "documented"} if how == "env" else {}
    proc = run(server, *args, "logs", sc.setup_process_id, env=env)
    assert proc.returncode == 6, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("forgectl: error: ")
    assert "HTML page (HTTP 200)" in proc.stderr
    assert f"/ws/execution-processes/{sc.setup_process_id}/logs/normalized" in proc.stderr


# -- logs ------------------------------------------------------------------------------


def test_raw_logs_verbatim(server: ForgeServer, sc: Scenario) -> None:
    raw = run(server, "logs", sc.setup_process_id, "--raw")
    assert raw.returncode == 0, raw.stderr
    assert raw.stderr == ""
    chunks = run(server, "logs", sc.setup_process_id, "--raw", "--json")
    assert chunks.returncode == 0, chunks.stderr
    objects = jsonl(chunks.stdout)
    assert all(set(o) == {"stream", "content"} for o in objects)
    # Per stream, exactly what the script wrote: no newline added or dropped.
    for stream, expected in (("stdout", sc.setup_stdout), ("stderr", sc.setup_stderr)):
        assert "".join(o["content"] for o in objects if o["stream"] == stream) == expected
    # The plain output is the same chunks, in the server's order, nothing else.
    assert raw.stdout == "".join(o["content"] for o in objects)


def test_raw_logs_through_clirunner(server: ForgeServer, sc: Scenario) -> None:
    result = invoke(server, "logs", sc.setup_process_id, "--raw", "--json")
    assert result.exit_code == 0, result.output
    objects = jsonl(result.stdout)
    assert "".join(o["content"] for o in objects if o["stream"] == "stdout") == sc.setup_stdout


def test_normalized_logs_of_a_script_fall_back_to_raw(server: ForgeServer, sc: Scenario) -> None:
    proc = run(server, "logs", sc.setup_process_id)
    assert proc.returncode == 0, proc.stderr
    assert "has no normalized log stream; showing its raw output" in proc.stderr
    assert "error" not in proc.stderr
    entries = jsonl(proc.stdout)
    assert all(set(e) == LOG_KEYS for e in entries)
    out = [e["message"] for e in entries if e["source"] == "stdout"]
    err = [e for e in entries if e["source"] == "stderr"]
    assert out == sc.setup_stdout.splitlines()
    assert [e["message"] for e in err] == sc.setup_stderr.splitlines()
    assert {e["level"] for e in err} == {"warn"}
    assert {e["metadata"]["entryType"] for e in entries} == {"STDOUT", "STDERR"}


def test_logs_follow_a_running_dev_server_live(server: ForgeServer) -> None:
    """A running script's normalized stream sends nothing at all: `logs -f` shows its
    output live (as entries, one per line), and --exit-status its end."""
    sc = make_scenario(server, name="dev-live", setup_lines=1, setup_sleep=0, dev_server=False)
    before = {p["id"] for p in server.list_processes(sc.attempt_id)}
    server.start_dev_server(sc.attempt_id)
    dev = server.wait_for_process(sc.attempt_id, "devserver", {"running"}, exclude_ids=before)
    live = Live(server, "logs", dev["id"], "-f", "--exit-status")
    try:
        ticks = live.until(lambda e: e["message"] == "tick 3")
        assert [e["message"] for e in ticks][-4:] == ["tick 0", "tick 1", "tick 2", "tick 3"]
        assert all(set(e) == LOG_KEYS and e["source"] == "stdout" for e in ticks)
        indexes = [e["metadata"]["index"] for e in ticks]
        assert indexes == list(range(len(ticks)))  # one per line, for group_by recipes
        server.stop_process(dev["id"])
        assert live.finish(15) == ExitCode.PROCESS_STOPPED, live.stderr
        assert "has no normalized log stream" in live.stderr
    finally:
        live.kill()


def test_logs_start_without_importing_httpx(server: ForgeServer, agent: Scenario) -> None:
    """Telling a script from an agent, or the real server from a documented one,
    costs a GET, not httpx's imports (60-150 ms)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('httpx' in sys.modules, file=sys.stderr))\n"
        "from forgectl.cli.main import main\n"
        "main()\n"
    )
    processes = (agent.coding_agent_process_id, agent.setup_process_id)
    for api, process in itertools.product(("forge", "auto"), processes):
        assert process is not None
        proc = subprocess.run(
            [sys.executable, "-c", code, "-s", server.url, "--api", api, "logs", process],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout and proc.stderr.splitlines()[-1] == "False", proc.stderr


def test_normalized_logs_of_the_coding_agent(server: ForgeServer, agent: Scenario) -> None:
    assert agent.coding_agent_process_id is not None
    proc = run(server, "logs", agent.coding_agent_process_id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    (entry,) = jsonl(proc.stdout)
    assert set(entry) == LOG_KEYS
    assert entry["level"] == "error"
    assert entry["message"].startswith("npm error code ENOTCACHED")
    assert entry["source"] == "executor"
    assert "timestamp" in entry
    meta = entry["metadata"]
    assert (meta["entryType"], meta["index"], meta["revision"]) == ("error_message", 0, 0)
    assert meta["error"] == {"type": "other"}


def test_filters_match_client_side_filtering(server: ForgeServer, sc: Scenario) -> None:
    everything = jsonl(run(server, "logs", sc.setup_process_id).stdout)
    assert len(everything) == 6

    def messages(*args: str) -> list[str]:
        proc = run(server, "logs", sc.setup_process_id, *args)
        assert proc.returncode == 0, proc.stderr
        return [e["message"] for e in jsonl(proc.stdout)]

    every = [e["message"] for e in everything]
    assert messages("--tail", "2") == every[-2:]
    assert messages("--tail", "0") == []
    assert messages("--grep", r"line [23]") == [m for m in every if re.search(r"line [23]", m)]
    assert messages("--level", "warn") == [e["message"] for e in everything if e["level"] == "warn"]
    assert messages("--level", "error") == []
    assert messages("--source", "stderr") == sc.setup_stderr.splitlines()
    # Script output has no timestamps: --since cannot tell their age, and says so.
    since = run(server, "logs", sc.setup_process_id, "--since", "1m")
    assert (since.returncode, since.stdout) == (2, "")
    assert since.stderr.splitlines()[-1] == f"forgectl: error: {NO_SERVER_TIMES}"
    assert since.stderr.count("error") == 1
    raw = run(server, "logs", sc.setup_process_id, "--raw", "--grep", "^line")
    assert raw.stdout == "line 1\nline 2\nline 3\n"


def test_level_filter_on_the_coding_agent(server: ForgeServer, agent: Scenario) -> None:
    assert agent.coding_agent_process_id is not None
    errors = run(server, "logs", agent.coding_agent_process_id, "--level", "error")
    assert [e["level"] for e in jsonl(errors.stdout)] == ["error"]
    infos = run(server, "logs", agent.coding_agent_process_id, "--level", "info,success")
    assert infos.returncode == 0 and infos.stdout == ""


def test_logs_of_an_unknown_process(server: ForgeServer) -> None:
    proc = run(server, "logs", UNKNOWN)
    assert proc.returncode == 5, proc.stderr
    assert f"process {UNKNOWN} not found" in proc.stderr
    bad = run(server, "logs", "not-a-uuid", "--raw")
    assert bad.returncode == 2, bad.stderr


def test_wait_start_polls_then_gives_up(server: ForgeServer) -> None:
    started = time.monotonic()
    proc = run(server, "logs", UNKNOWN, "--wait-start", "1.5")
    elapsed = time.monotonic() - started
    assert proc.returncode == 5, proc.stderr
    assert "waiting up to 1.5 s for it to appear" in proc.stderr
    assert proc.stderr.count("waiting up to") == 1
    assert 1.4 <= elapsed < 8, elapsed


# -- --exit-status ---------------------------------------------------------------------


def test_exit_status_of_logs_follow(server: ForgeServer, sc: Scenario) -> None:
    failed = run(server, "logs", sc.setup_process_id, "--follow", "--exit-status")
    assert failed.returncode == 3, failed.stderr
    assert "forgectl: error" not in failed.stderr  # the process's code, not ours
    assert jsonl(failed.stdout)[0]["message"] == "setup-start"
    assert sc.dev_process_id is not None
    killed = run(server, "logs", sc.dev_process_id, "--raw", "--follow", "--exit-status")
    assert killed.returncode == 137, killed.stderr
    assert killed.stdout.startswith("dev-server-up\ntick 0\n")


def test_exit_status_of_monitor_process(server: ForgeServer, sc: Scenario) -> None:
    assert sc.dev_process_id is not None
    for pid, code, last in (
        (sc.setup_process_id, 3, "process_failed"),
        (sc.dev_process_id, 137, "process_stopped"),
    ):
        proc = run(server, "monitor", "--process", pid, "--exit-status")
        assert proc.returncode == code, proc.stderr
        events = jsonl(proc.stdout)
        assert [e["type"] for e in events] == ["process_started", last]
        assert {e["processId"] for e in events} == {pid}


# -- monitor ---------------------------------------------------------------------------


def test_monitor_attempt_history(server: ForgeServer, sc: Scenario) -> None:
    proc = run(server, "monitor", "--attempt", sc.attempt_id, "--history", "--until-idle")
    assert proc.returncode == 0, proc.stderr
    events = jsonl(proc.stdout)
    assert [(e["type"], e["processId"]) for e in events] == [
        ("process_started", sc.setup_process_id),
        ("process_failed", sc.setup_process_id),
        ("process_started", sc.dev_process_id),
        ("process_stopped", sc.dev_process_id),
    ]
    assert all(e["taskAttemptId"] == sc.attempt_id for e in events)
    started, failed, dev_started, stopped = events
    assert set(started) >= {"processId", "taskAttemptId", "executor", "startedAt"}
    assert started["startedAt"] == sc.processes[sc.setup_process_id]["started_at"]
    assert started["runReason"] == "setupscript" and started["executor"]
    assert failed["exitCode"] == 3 and failed["runReason"] == "setupscript"
    assert failed["failedAt"] and failed["error"]["code"] == "EXECUTION_ERROR"
    assert dev_started["runReason"] == "devserver"
    assert (stopped["reason"], stopped["exitCode"]) == ("killed", None)
    assert stopped["stoppedAt"]


@pytest.mark.parametrize(
    ("process", "code"),
    [("00000000-0000-0000-0000-000000000001", ExitCode.NOT_FOUND), ("nope", ExitCode.USAGE)],
    ids=["unknown", "malformed"],
)
def test_monitor_an_unknown_process_fails_at_once(
    server: ForgeServer, process: str, code: int
) -> None:
    started = time.monotonic()
    proc = run(server, "monitor", "--process", process, "--exit-status")
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith("forgectl: error: ") and proc.stderr.count("\n") == 1
    assert time.monotonic() - started < 10


def test_monitor_snapshot_of_finished_processes_is_silent(
    server: ForgeServer, sc: Scenario
) -> None:
    proc = run(server, "monitor", "--attempt", sc.attempt_id, "--until-idle")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


def test_monitor_through_clirunner(server: ForgeServer, sc: Scenario) -> None:
    result = invoke(
        server,
        *("monitor", "--attempt", sc.attempt_id),
        *("--history", "--until-idle", "--type", "process_failed"),
    )
    assert result.exit_code == 0, result.output
    (event,) = jsonl(result.stdout)
    assert (event["processId"], event["exitCode"]) == (sc.setup_process_id, 3)


def test_monitor_unknown_and_malformed_attempt(server: ForgeServer) -> None:
    unknown = run(server, "monitor", "--attempt", UNKNOWN)
    assert unknown.returncode == 5, unknown.stderr
    assert f"attempt {UNKNOWN} not found" in unknown.stderr
    bad = run(server, "monitor", "--attempt", "not-an-id")
    assert bad.returncode == 2, bad.stderr
    assert "not-an-id" in bad.stderr


def test_event_stream_idle_longer_than_open_timeout_is_not_a_lost_link(
    server: ForgeServer,
) -> None:
    """The server-wide event stream is quiet between changes (keep-alives every
    15 s): the handshake timeout must not time out its reads."""
    live = Live(server, "monitor", "-v", "--open-timeout", "1")
    try:
        time.sleep(3.5)
        assert live.interrupt() == -signal.SIGINT
        assert "reconnecting" not in live.stderr and "Traceback" not in live.stderr
    finally:
        live.kill()


def test_event_stream_given_up_as_dead_reconnects_and_goes_on(server: ForgeServer) -> None:
    """A quiet event stream with --stale-timeout 1.5 is given up as dead and reopened,
    again and again; what happens meanwhile is still reported.

    Waits for a reconnect instead of sleeping 3.5 s, and waits for the dev server's
    *stop*: the server publishes a new process's insert before it can read the row
    back, now and then as a ``DELETED_EXECUTION_PROCESS`` record (FORGE_NOTES.md), so
    its start may never come on this stream; its later changes always do (live, or in
    the replay of the next connection)."""
    sc = make_scenario(server, name="sse-dead", setup_lines=1, setup_sleep=0, dev_server=False)
    live = Live(server, "monitor", "-v", "--stale-timeout", "1.5")
    try:
        wait_until(
            lambda: "reconnecting" in live.stderr_so_far(), 20, "a dead-peer reconnect", live
        )
        before = {p["id"] for p in server.list_processes(sc.attempt_id)}
        server.start_dev_server(sc.attempt_id)
        dev = server.wait_for_process(sc.attempt_id, "devserver", {"running"}, exclude_ids=before)
        server.stop_process(dev["id"])
        events = live.until(
            lambda e: e.get("processId") == dev["id"] and e["type"] == "process_stopped",
            timeout=20,
        )
        mine = [e["type"] for e in events if e.get("processId") == dev["id"]]
        assert mine == ["process_started", "process_stopped"]
        assert live.interrupt() == -signal.SIGINT
        assert "the peer looks dead" in live.stderr and "reconnecting" in live.stderr
    finally:
        live.kill()


def test_monitor_live_attempt_and_event_stream(server: ForgeServer, sc: Scenario) -> None:
    """A dev server started after both monitors began: the attempt WebSocket and
    the SSE ``/api/events`` stream both report it starting and being stopped."""
    by_attempt = Live(server, "-v", "monitor", "--attempt", sc.attempt_id)
    everything = Live(server, "-v", "monitor")
    try:
        for live, route in ((by_attempt, "/stream/ws"), (everything, "/api/events")):
            wait_until(  # -v names the stream before it connects to it
                lambda live=live, route=route: (
                    route in live.stderr_so_far() and established(live.proc.pid, server.port)
                ),
                20,
                f"the {route} stream",
                live,
            )
        # No pause: a process that starts the moment monitor is connected is live
        # output, not the replay (issue 12, point 4).
        assert by_attempt.lines.empty() and everything.lines.empty()
        before = {p["id"] for p in server.list_processes(sc.attempt_id)}
        server.start_dev_server(sc.attempt_id)
        dev = server.wait_for_process(sc.attempt_id, "devserver", {"running"}, exclude_ids=before)
        time.sleep(0.3)
        server.stop_process(dev["id"])
        for live in (by_attempt, everything):
            events = live.until(
                lambda e: e["type"] == "process_stopped" and e["processId"] == dev["id"]
            )
            mine = [(e["type"], e["processId"]) for e in events if e["processId"] == dev["id"]]
            assert mine == [("process_started", dev["id"]), ("process_stopped", dev["id"])]
            assert events[0]["taskAttemptId"] == sc.attempt_id
            assert events[0]["startedAt"] == dev["started_at"]
            assert live.interrupt() == -signal.SIGINT
            assert "Traceback" not in live.stderr and "error" not in live.stderr
    finally:
        by_attempt.kill()
        everything.kill()


# -- diff ------------------------------------------------------------------------------


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_diff_applies_to_the_base_and_gives_the_worktree(
    server: ForgeServer, sc: Scenario, tmp_path: Path
) -> None:
    proc = run(server, "diff", sc.attempt_id)
    assert proc.returncode == 0, proc.stderr
    (update,) = jsonl(proc.stdout)
    assert update["type"] == "diff_update" and update["attemptId"] == sc.attempt_id
    assert (update["filesChanged"], update["insertions"], update["deletions"]) == (4, 6, 0)
    # The paths with / and ~ came as JSON Pointer escapes (~1, ~0).
    assert "diff --git a/sub/dir/nested.txt b/sub/dir/nested.txt" in update["diff"]
    assert "diff --git a/tilde~name.txt b/tilde~name.txt" in update["diff"]
    # The old files (the base commit) plus the printed diff = the worktree.
    repo = tmp_path / "base"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("hello\n")
    git(repo, "apply", "--check", "-", stdin=update["diff"])
    git(repo, "apply", "-", stdin=update["diff"])
    for rel, content in SCENARIO_FILES.items():
        assert (repo / rel).read_text() == (sc.worktree / rel).read_text() == content


def test_diff_stat(server: ForgeServer, sc: Scenario) -> None:
    traced = run(server, "-v", "diff", sc.attempt_id, "--stat", "--json")
    assert traced.returncode == 0, traced.stderr
    # Counts from the contents, as git counts them: the server is asked for them.
    assert "stats_only" not in traced.stderr
    (update,) = jsonl(traced.stdout)
    assert (update["filesChanged"], update["insertions"], update["deletions"]) == (4, 6, 0)
    assert "Binary files" not in update["diff"]
    pretty = run(server, "diff", sc.attempt_id, "--stat", "--pretty", "--color", "never")
    assert pretty.returncode == 0, pretty.stderr
    assert " 4 files changed, 6 insertions(+)\n" in pretty.stdout
    assert " README.md          | 1 +\n" in pretty.stdout
    assert "@@" not in pretty.stdout
    names = run(server, "diff", sc.attempt_id, "--name-only", "--pretty", "--color", "never")
    assert names.stdout.splitlines() == sorted(SCENARIO_FILES)


def test_diff_follow_sees_changes_reverts_and_deletions(server: ForgeServer) -> None:
    mine = make_scenario(server, name="diff-follow", setup_lines=1, setup_sleep=0, dev_server=False)
    live = Live(server, "diff", mine.attempt_id, "--follow")

    def files(update: dict[str, Any]) -> list[str]:
        return re.findall(r"^diff --git a/(\S+) ", update["diff"], re.M)

    try:
        first = live.next(15)
        assert files(first) == sorted(SCENARIO_FILES)
        (mine.worktree / "later~1.txt").write_text("later\n")
        update = live.until(lambda u: "later~1.txt" in files(u))[-1]
        assert "+later" in update["diff"] and update["filesChanged"] == 5
        (mine.worktree / "README.md").write_text("hello\n")  # reverted
        update = live.until(lambda u: "README.md" not in files(u))[-1]
        assert update["filesChanged"] == 4
        (mine.worktree / "new_file.txt").unlink()  # an added file removed again
        update = live.until(lambda u: "new_file.txt" not in files(u))[-1]
        assert files(update) == ["later~1.txt", "sub/dir/nested.txt", "tilde~name.txt"]
        assert live.interrupt() == -signal.SIGINT
    finally:
        live.kill()


def test_diff_of_unknown_attempt(server: ForgeServer) -> None:
    proc = run(server, "diff", UNKNOWN)
    assert proc.returncode == 5, proc.stderr


# -- the Python API --------------------------------------------------------------------


async def test_python_api(server: ForgeServer, sc: Scenario, agent: Scenario) -> None:
    assert agent.coding_agent_process_id is not None
    async with ForgeClient(server=server.url, options=StreamOptions(backoff_initial=0.05)) as forge:
        raw = "".join(
            [c.text async for c in forge.processes.stream_logs(sc.setup_process_id, "raw")]
        )
        assert raw.replace(sc.setup_stderr, "", 1) == sc.setup_stdout
        entries = [e async for e in forge.processes.stream_logs(agent.coding_agent_process_id)]
        assert [type(e) for e in entries] == [LogEntry]
        assert entries[0].level == "error" and entries[0].metadata == {
            "entryType": "error_message",
            "index": 0,
            "error": {"type": "other"},
            "revision": 0,
        }
        fallback = [e async for e in forge.processes.stream_logs(sc.setup_process_id, follow=False)]
        assert [e.message for e in fallback if e.source == "stdout"] == sc.setup_stdout.splitlines()
        events: list[ProcessEvent] = []
        async for event in forge.processes.monitor(sc.attempt_id, history=True):
            events.append(event)
            if len(events) == 4:
                break
        assert [e.type for e in events] == [
            "process_started",
            "process_failed",
            "process_started",
            "process_stopped",
        ]
        assert events[1].exit_code == 3 and events[1].task_attempt_id == sc.attempt_id
        diffs = [d async for d in forge.attempts.stream_diff(sc.attempt_id, follow=False)]
        assert [type(d) for d in diffs] == [DiffUpdate]
        assert diffs[0].files_changed == 4 and diffs[0].attempt_id == sc.attempt_id


@pytest.mark.realspeed  # issue 12 point 4: still fails now and then, see the docstring
def test_monitor_on_a_fresh_server_reports_the_first_processes(
    start_forge_server: Callable[..., ForgeServer],
) -> None:
    """A fresh server's event stream replays nothing: the first events are live,
    even a process that starts and fails at once after the stream has opened.

    Waits for the stream to be open (named by -v, then forgectl's TCP connection to
    the server), not a fixed 1.5 s: on a loaded machine forgectl took longer than that
    to connect. The scenario then starts at once. On main (f13bf1b) this fails about
    one run in five: every frame of the setup process arrives (add, replace, replace,
    -vv shows them) and none is printed, as if frames that come this soon after the
    stream opened were its replay, where ended processes stay silent. Later (merge of
    the helpers' branches) about one run in six, for another reason: the task's
    frames come in pairs 0.5 ms apart, and the pair was taken for a slow history's
    pace (-vv keeps the frames in the failure report)."""
    fresh = start_forge_server()
    live = Live(fresh, "-vv", "monitor")
    try:
        wait_until(  # -v names the event stream before it connects to it
            lambda: (
                "/api/events" in live.stderr_so_far() and established(live.proc.pid, fresh.port)
            ),
            20,
            "the event stream",
            live,
        )
        mine = make_scenario(fresh, name="fresh", setup_lines=1, setup_sleep=0.1, dev_server=False)
        events = live.until(lambda e: e["type"] == "process_failed", timeout=15)
        assert [(e["type"], e["processId"]) for e in events] == [
            ("process_started", mine.setup_process_id),
            ("process_failed", mine.setup_process_id),
        ]
        assert events[1]["exitCode"] == 3
        assert live.interrupt() == -signal.SIGINT
    finally:
        live.kill()


def wait_until(pred: Any, timeout: float, what: str, live: Live) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {what} within {timeout} s; forgectl's stderr:\n{live.stderr_so_far()}"
            )
        time.sleep(0.02)
