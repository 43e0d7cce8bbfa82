"""The stand-in program itself: find the script, play it, exit with its code.

Run by the launcher ``AgentBed`` writes into its ``bin/`` (see ``agents/__init__.py``).
Reads stdin in a background thread the whole time (the server writes the prompt and,
for some executors, protocol requests there; an unread pipe would block it), plays
the script's steps on an absolute schedule (a late step is written at once, the rest
keep their times), and records what it did in ``runs/<name>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from . import MARKER_RE, MARKER_WAIT, _write_atomic, registry

#: How long a gated session waits for ``AgentBed.release`` before giving up.
GATE_WAIT = 120.0
EXIT_REFUSED = 2


class _Refused(Exception):
    pass


class _Signalled(Exception):
    """The server ended the agent by a signal (executors with ``ENDED_BY_SIGNAL``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _signalled(signum: int, frame: object) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # the next one finds us leaving
        signal.signal(sig, signal.SIG_IGN)
    raise _Signalled(signum)


class _Input:
    """stdin, drained in the background: lines kept, the marker watched for."""

    def __init__(self, executor: str, out: _Output) -> None:
        self.lines: list[str] = []
        self.marker: str | None = None
        self.changed = threading.Condition()
        self.closed = False
        self.prompt_seen = False
        mod = registry.module(executor)
        self._respond = mod.respond
        self._is_prompt = getattr(mod, "is_prompt", None)
        self._out = out
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in sys.stdin:
                for reply in self._respond(line):
                    self._out.write("out", reply)
                with self.changed:
                    self.lines.append(line)
                    m = MARKER_RE.search(line)
                    if m and self.marker is None:
                        self.marker = m.group(1)
                    if self._is_prompt is not None and self._is_prompt(line):
                        self.prompt_seen = True
                    self.changed.notify_all()
        except (OSError, ValueError):
            pass
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def wait_line(self, pattern: str, timeout: float = GATE_WAIT) -> str:
        """The first stdin line (of all read so far, and to come) matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise _Refused(f"no stdin line matching {pattern!r} within {timeout} s")
                self.changed.wait(left)

    def wait_marker(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.marker is None and not self.closed and not self.prompt_seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return self.marker


class _Output:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, IO[str]] = {"out": sys.stdout, "err": sys.stderr}

    def write(self, stream: str, text: str) -> None:
        fh = self._streams[stream]
        with self._lock:
            fh.write(text)
            fh.flush()


def main(argv: Sequence[str], root: str) -> int:
    bed = Path(root)
    program, args = os.path.basename(argv[0]), list(argv[1:])
    try:
        return _run(bed, program, args)
    except _Refused as refusal:
        line = f"forgectl test agent: {refusal} (argv: {json.dumps([program, *args])})"
        print(line, file=sys.stderr, flush=True)
        with contextlib.suppress(OSError), (bed / "refused.log").open("a") as log:
            log.write(line + "\n")
        return EXIT_REFUSED
    except BrokenPipeError:
        return 141


def _run(bed: Path, program: str, args: list[str]) -> int:
    executor = registry.claim(program, args)
    if executor is None:
        raise _Refused("no executor module recognises this command line")
    out = _Output()
    if getattr(registry.module(executor), "ENDED_BY_SIGNAL", False):
        # The server ends this executor's turn by signalling its process group
        # (SIGINT, SIGTERM, SIGKILL): leave quietly, as the real CLI does, or
        # Python's KeyboardInterrupt traceback would become an error_message.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _signalled)
    stdin = _Input(executor, out)
    name = next((m.group(1) for a in args if (m := MARKER_RE.search(a))), None)
    if name is None:
        name = stdin.wait_marker(MARKER_WAIT)
    path = bed / "sessions" / f"{name}.json" if name else _claim_queued(bed)
    if path is None:
        raise _Refused(f"no session marker in argv or stdin and no queued script ({bed})")
    if name is None:
        name = path.stem
    try:
        script: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _Refused(f"cannot read script {path}: {exc}") from None
    if script.get("executor") != executor:
        raise _Refused(f"script {name} is for {script.get('executor')!r}, not {executor!r}")
    record: dict[str, Any] = {
        "name": name,
        "executor": executor,
        "argv": [program, *args],
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "picked_at": time.time(),
    }
    _write_atomic(bed / "runs" / f"{name}.json", record)
    try:
        if script.get("gate"):
            _wait_gate(bed / "gates" / name)
        record["started_at"] = time.time()
        _write_atomic(bed / "runs" / f"{name}.json", record)
        fill = getattr(registry.module(executor), "fill", None)
        _play(script, out, stdin, bed / "gates" / name, fill)
        code = int(script.get("exit", 0))
    except _Signalled as ended:
        record["signal"] = ended.signum
        code = 0
    with stdin.changed:
        record["stdin"] = list(stdin.lines)
    record.update(ended_at=time.time(), exit=code)
    _write_atomic(bed / "runs" / f"{name}.json", record)
    return code


def _claim_queued(bed: Path) -> Path | None:
    for queued in sorted((bed / "queue").glob("*.json")):
        claimed = bed / "claimed" / queued.name
        try:
            os.rename(queued, claimed)  # atomic: one stand-in wins each script
        except OSError:
            continue
        return claimed
    return None


def _wait_gate(gate: Path) -> None:
    deadline = time.monotonic() + GATE_WAIT
    while not gate.exists():
        if time.monotonic() > deadline:
            raise _Refused(f"gate {gate} not released within {GATE_WAIT} s")
        time.sleep(0.005)


def _play(
    script: dict[str, Any],
    out: _Output,
    stdin: _Input,
    gates: Path,
    fill: Callable[[str], str] | None = None,
) -> None:
    """Steps ``[at, stream, text]``: ``out``/``err`` write ``text`` (``${cwd}`` is the
    working directory, JSON-escaped; the executor module's ``fill(text)``, if it has
    one, fills in what else it knows); ``gate`` waits for ``AgentBed.open(marker,
    text)``; ``await`` waits for a stdin line matching the regex ``text``. After a
    wait the schedule restarts: later steps keep their spacing."""
    steps: list[list[Any]] = script.get("steps", [])
    cwd = json.dumps(os.getcwd())[1:-1]
    start = time.monotonic()
    i = 0
    while i < len(steps):
        at, stream = float(steps[i][0]), str(steps[i][1])
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if stream in ("gate", "await"):
            if stream == "gate":
                _wait_gate(gates.with_name(f"{gates.name}.{steps[i][2]}"))
            else:
                stdin.wait_line(str(steps[i][2]))
            start = time.monotonic() - at
            i += 1
            continue
        # Steps already due on the same stream go out in one write, as a busy
        # program's buffered output would.
        now = time.monotonic() - start
        text = [str(steps[i][2])]
        i += 1
        while i < len(steps) and float(steps[i][0]) <= now and steps[i][1] == stream:
            text.append(str(steps[i][2]))
            i += 1
        chunk = "".join(text).replace("${cwd}", cwd)
        out.write(stream, fill(chunk) if fill is not None else chunk)
    end = float(script.get("end", 0.0))
    delay = start + end - time.monotonic()
    if delay > 0:
        time.sleep(delay)
