"""The real-speed test bed: producers, followers and the oracle, on the REAL Forge server.

* **Producers**: :func:`start_agent` runs a scripted coding agent (``tests/agents``)
  for a task of its own; :func:`start_producer` a dev server printing numbered lines at
  a chosen rate (``tests/agents/producer.py``); :func:`failing_setup` an attempt whose
  setup script fails at once.
* **Followers**: :class:`Cli` runs the ``forgectl`` console script and collects its
  stdout lines as they come (a thread), :class:`WsFollower` a plain websockets client
  (the baseline: what the server itself sends one connection).
* **The oracle**: :func:`final_entries` is what a fresh plain websockets client reads
  from ``normalized-logs/ws`` up to ``{"finished":true}`` once the process has ended,
  reduced to each index's final version; :func:`final_raw` the raw bytes per stream.
  :func:`reduce_forgectl` reduces forgectl's JSON lines the same way (the last
  ``metadata.revision`` of each ``metadata.index``) and :func:`compare_entries` says,
  field by field, where forgectl's output differs from the server's final state.

Everything runs inside the private network namespace the real server needs, and talks
to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents import AgentBed, Script, claude
from agents.producer import producer_command
from forge_server import TERMINAL_STATUSES, ForgeServer
from support import EXE, command_line, note
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

#: The documented mapping of entry types to levels (README, "Normalized logs").
LEVELS = {
    "error_message": "error",
    "assistant_message": "info",
    "system_message": "info",
    "user_message": "info",
    "user_feedback": "info",
    "next_action": "info",
    "thinking": "debug",
    "loading": "debug",
}
TOOL_LEVELS = {"success": "success", "failed": "error", "denied": "error", "timed_out": "error"}


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``pred`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- producers ---------------------------------------------------------------------------


def join_stress_session(seed: int) -> claude.Session:
    """About 15 s of an agent at work, fast: a long first answer (so the history a
    joiner is sent is large), then short texts streamed at 150 deltas/s and, in most
    turns, 2-6 parallel tool calls with results (a lost add or result there shows in
    the end state; a lost replace of streaming text is healed by the next one)."""
    return claude.busy_session(
        seed,
        turns=45,
        deltas_per_second=150,
        chunk=4,
        words=(4, 14),
        tool_ratio=0.9,
        prelude=6000,
        parallel=(2, 6),
    )


@dataclass
class AgentRun:
    attempt_id: str
    process_id: str
    marker: str
    worktree: Path | None = None


def start_agent(
    server: ForgeServer, bed: AgentBed, script: Script, name: str, *, timeout: float = 20.0
) -> AgentRun:
    """A project without a setup script, a task whose description carries the session
    marker, an attempt: the coding agent starts at once and plays ``script``."""
    marker = bed.add(script, name)
    repo = server.make_repo(name)
    project = server.create_project(name, repo)
    task = server.create_task(project["id"], f"{name}", f"Scripted session {marker}")
    attempt_id = server.create_attempt(task["id"])["id"]
    agent = server.wait_for_process(
        attempt_id, "codingagent", {"running", *TERMINAL_STATUSES}, timeout
    )
    return AgentRun(attempt_id, agent["id"], marker)


@dataclass
class Producer:
    attempt_id: str
    process_id: str
    worktree: Path


def start_producer(server: ForgeServer, name: str, rate: float, **producer: Any) -> Producer:
    """A dev server printing ``line N`` at ``rate`` lines/s (see agents/producer.py);
    returns once it runs. The attempt's setup script fails (exit 1), so no coding agent
    starts."""
    repo = server.make_repo(name)
    project = server.create_project(
        name, repo, setup_script="exit 1", dev_script=producer_command(rate, **producer)
    )
    task = server.create_task(project["id"], name)
    attempt_id = server.create_attempt(task["id"])["id"]
    server.wait_for_process(attempt_id, "setupscript", TERMINAL_STATUSES, 20)
    worktree = server.attempt_worktree(attempt_id)
    server.start_dev_server(attempt_id)
    dev = server.wait_for_process(attempt_id, "devserver", {"running"}, 20)
    return Producer(attempt_id, dev["id"], worktree)


def failing_setup(server: ForgeServer, name: str, exit_code: int = 3) -> tuple[str, str]:
    """An attempt whose setup script fails at once; returns (attempt id, setup process id)
    as soon as the process exists (it may already have ended)."""
    repo = server.make_repo(name)
    project = server.create_project(name, repo, setup_script=f"exit {exit_code}")
    task = server.create_task(project["id"], name)
    attempt_id = server.create_attempt(task["id"])["id"]
    setup = server.wait_for_process(attempt_id, "setupscript", {"running", *TERMINAL_STATUSES})
    return attempt_id, setup["id"]


def established(pid: int, port: int) -> bool:
    """Has process ``pid`` an established TCP connection to 127.0.0.1:``port``?

    Read from /proc (this network namespace's TCP table and the process's fds): a
    condition to wait for that needs nothing from the client's own output."""
    try:
        inodes = {
            os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
            for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")
        }
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port and f[9] in inodes:
                return True
    return False


# -- followers ---------------------------------------------------------------------------


class Cli:
    """``forgectl -s URL ARGS...`` in a subprocess; stdout lines collected as they come."""

    def __init__(self, server_url: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [EXE, "-s", server_url, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self.lines: list[str] = []
        self.line_times: list[float] = []
        self._stderr: list[str] = []
        self._lock = threading.Lock()
        note(f"{command_line(args)} (a child, -s {server_url}): stderr", lambda: self.stderr)
        self._threads = [
            threading.Thread(target=self._pump_out, daemon=True),
            threading.Thread(target=self._pump_err, daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.ended: float | None = None

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line)
                self.line_times.append(time.monotonic())

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self._stderr.append(line)

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(self._stderr)

    @property
    def stdout(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def json_lines(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(line) for line in self.lines if line.strip()]

    def count(self) -> int:
        with self._lock:
            return len(self.lines)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if still running after ``timeout``."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(5)
        if self.ended is None:
            self.ended = time.monotonic()
        return code

    def signal(self, sig: int = signal.SIGINT) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(10)

    def describe(self) -> str:
        return f"forgectl {' '.join(self.args)} (exit {self.proc.poll()}); stderr:\n{self.stderr}"


class WsFollower:
    """A plain websockets client in a thread: every frame of one connection, with its
    arrival time, until ``{"finished":true}`` (or ``stop``)."""

    def __init__(self, ws_url: str, route: str) -> None:
        self.url = ws_url + route
        self.frames: list[Any] = []
        self.times: list[float] = []
        self.opened: float | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            asyncio.run(self._read())
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.done.set()

    async def _read(self) -> None:
        async with connect(self.url, max_size=None, open_timeout=20) as ws:
            self.opened = time.monotonic()
            while not self._stop.is_set():
                try:
                    message = await asyncio.wait_for(ws.recv(), 0.2)
                except TimeoutError:
                    continue
                frame = json.loads(message)
                self.frames.append(frame)
                self.times.append(time.monotonic())
                if frame == {"finished": True}:
                    return

    def stop(self) -> None:
        self._stop.set()
        self.done.wait(10)


# -- the oracle --------------------------------------------------------------------------


def _normalized_route(process_id: str) -> str:
    return f"/api/execution-processes/{process_id}/normalized-logs/ws"


def _raw_route(process_id: str) -> str:
    return f"/api/execution-processes/{process_id}/raw-logs/ws"


async def _read_frames(ws_url: str, route: str) -> list[Any]:
    """Every frame of one connection up to ``finished`` (a minute at most)."""
    frames: list[Any] = []
    async with connect(ws_url + route, max_size=None, open_timeout=20) as ws:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if frame == {"finished": True}:
                return frames
            frames.append(frame)


def ops(frames: Iterable[Any]) -> list[dict[str, Any]]:
    return [op for f in frames if isinstance(f, dict) for op in f.get("JsonPatch", [])]


_ENTRY = re.compile(r"/entries/(\d+)$")


def _apply(frames: Iterable[Any]) -> dict[int, Any]:
    """``/entries/N`` ops applied in order: index -> the entry's ``content``."""
    state: dict[int, Any] = {}
    for op in ops(frames):
        m = _ENTRY.match(op.get("path", ""))
        if not m:
            continue
        index = int(m.group(1))
        if op["op"] in ("add", "replace"):
            value = op["value"]
            state[index] = (
                value.get("content") if value.get("type") == "NORMALIZED_ENTRY" else value
            )
        elif op["op"] == "remove":
            state.pop(index, None)
    return state


def _read_finished(server: ForgeServer, route: str, timeout: float = 15.0) -> list[Any]:
    """One fresh read of a finished process's stream. Right after a process is marked
    ended its log may not be in the database yet: the stream then answers 404 (seen on
    a loaded machine), so that is retried for a while."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return asyncio.run(_read_frames(server.ws_url, route))
        except InvalidStatus as exc:
            if exc.response.status_code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def final_entries(server: ForgeServer, process_id: str, reads: int = 1) -> dict[int, Any]:
    """The server's final state of a finished agent process: index -> the final
    ``NORMALIZED_ENTRY`` content, as a fresh connection reads it.

    Every connection to a finished process re-normalizes its stored log, by a task
    that races the connection as a live one does, so a read can itself come up short
    (seen under load). With ``reads`` > 1 the state is the first that two reads agree
    on (up to ``3 * reads`` reads)."""
    route = _normalized_route(process_id)
    if reads <= 1:
        return _apply(_read_finished(server, route))
    seen: list[dict[int, Any]] = []
    for _ in range(3 * reads):
        state = _apply(_read_finished(server, route))
        if state in seen:
            return state
        seen.append(state)
    sizes = [len(s) for s in seen]
    raise AssertionError(
        f"no two of {len(seen)} fresh reads of {process_id} agree ({sizes} entries)"
    )


def final_raw(server: ForgeServer, process_id: str) -> dict[str, str]:
    """The raw output of a finished process, concatenated per stream."""
    out = {"stdout": "", "stderr": ""}
    for _, entry in sorted(_apply(_read_finished(server, _raw_route(process_id))).items()):
        out["stdout" if entry["type"] == "STDOUT" else "stderr"] += entry["content"]
    return out


def reduce_forgectl(lines: Sequence[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """forgectl's JSON log lines reduced to each ``metadata.index``'s newest revision."""
    out: dict[int, dict[str, Any]] = {}
    for line in lines:
        meta = line.get("metadata") or {}
        index, revision = meta.get("index"), meta.get("revision", 0)
        if not isinstance(index, int):
            continue
        have = out.get(index)
        if have is None or revision >= have["metadata"].get("revision", 0):
            out[index] = line
    return out


def expected_level(entry: dict[str, Any]) -> str:
    et = entry["entry_type"]
    if et["type"] == "tool_use":
        status = str((et.get("status") or {}).get("status"))
        return TOOL_LEVELS.get(status, "warn" if status == "pending_approval" else "info")
    return LEVELS.get(et["type"], "info")


def compare_entries(
    oracle: dict[int, Any], got: dict[int, dict[str, Any]], limit: int = 12
) -> list[str]:
    """Where forgectl's reduced output differs from the server's final state: a
    missing or extra index, or a field (message, level, entryType; for a tool call
    the server's text in metadata.content, tool.name, tool.status)."""
    problems: list[str] = []
    for index in sorted(set(oracle) | set(got)):
        want, line = oracle.get(index), got.get(index)
        if line is None:
            problems.append(f"index {index}: missing (server: {_short(want)})")
            continue
        if want is None:
            problems.append(f"index {index}: not on the server (forgectl: {_short(line)})")
            continue
        meta = line.get("metadata") or {}
        et = want["entry_type"]
        checks = {
            "message": (line.get("message"), want["content"]),
            "level": (line.get("level"), expected_level(want)),
            "entryType": (meta.get("entryType"), et["type"]),
        }
        if et["type"] == "tool_use":  # the server's text is metadata.content (README)
            tool = meta.get("tool") or {}
            checks["message"] = (meta.get("content"), want["content"])
            checks["tool.name"] = (tool.get("name"), et.get("tool_name"))
            checks["tool.status"] = (tool.get("status"), (et.get("status") or {}).get("status"))
        for name, (have, should) in checks.items():
            if have != should:
                problems.append(
                    f"index {index} rev {meta.get('revision')}: {name} {_short(have)} "
                    f"!= server's final {_short(should)}"
                )
    if len(problems) > limit:
        problems[limit:] = [f"... and {len(problems) - limit} more"]
    return problems


def _short(value: Any, n: int = 90) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


# -- measuring what the server drops -------------------------------------------------------


@dataclass
class Loss:
    """What one connection missed, compared with the final state."""

    lost_indices: list[int] = field(default_factory=list)  # no op at all for the index
    stale_indices: list[int] = field(default_factory=list)  # ended on an older version

    @property
    def complete(self) -> bool:
        return not self.lost_indices and not self.stale_indices


def loss(frames: Sequence[Any], oracle: dict[int, Any]) -> Loss:
    got = _apply(frames)
    out = Loss()
    for index, entry in oracle.items():
        if index not in got:
            out.lost_indices.append(index)
        elif got[index] != entry:
            out.stale_indices.append(index)
    return out
