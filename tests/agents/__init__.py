"""Scripted coding agents for the REAL Forge server: real normalized sessions, no model.

The server runs a coding agent as a child process that it finds on its ``PATH``
(``CLAUDE_CODE`` 0.7.4: ``npx -y @anthropic-ai/claude-code@2.0.31 -p ...``, the prompt
on stdin). An :class:`AgentBed` is a directory holding a stand-in for those programs
(``bin/npx``, ...) and the session scripts it plays; put ``bed.bin_dir`` first on the
server's ``PATH`` (``ForgeServer(path_prefix=[bed.bin_dir])``) and every attempt the
server starts runs a scripted session, which the server then normalizes exactly as it
would a real one. Typical use::

    bed = AgentBed(tmp_path / "agents")
    with ForgeServer(BINARY, path_prefix=[bed.bin_dir]) as server:
        session = claude.Session(turns=[claude.Turn([claude.Text("Hello")])])
        marker = bed.add(claude.script(session))
        ...create a task whose description contains ``marker`` and an attempt...

How a stand-in picks its script (several sessions can run at once on one server):

* **by marker** (the usual way): ``bed.add(script)`` returns a marker
  ``forgectl-session:<name>``; put it in the task's title or description. The server
  passes the task text to the agent on its stdin (Claude Code: a stream-json ``user``
  line; Codex and Gemini: inside a JSON-RPC request; no executor of 0.7.4 uses argv),
  and the stand-in looks for the marker in its argv and in every stdin line, whatever
  the executor's input format.
* **from the queue**, when no marker arrives within ``MARKER_WAIT`` seconds (or stdin
  closes without one): ``bed.enqueue(script)`` scripts are claimed oldest first, each
  by one stand-in only (an atomic rename).

A stand-in that recognises neither its argv (no executor module claims it) nor finds a
script prints one line on stderr and exits 2, so a misconfigured test fails loudly.
What each stand-in did is recorded in ``runs/<name>.json`` (argv, cwd, stdin lines,
start and end times), see :meth:`AgentBed.run_record`.

Executors are pluggable: ``registry.EXECUTORS`` maps a name to a module (one module
per executor: ``agents/claude.py`` for Claude Code) that says which argv it claims and
how to answer what the server writes on the agent's stdin. A script names its
executor and is a list of timed output steps; generators (``claude.script``) build
them from a higher-level session, and compute what the server should make of it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["MARKER_RE", "MARKER_WAIT", "AgentBed", "Script"]

#: The session marker a stand-in looks for in its argv and stdin.
MARKER_RE = re.compile(r"forgectl-session:([A-Za-z0-9_-]+)")
#: How long a stand-in waits for a marker before it claims a queued script.
MARKER_WAIT = 10.0

#: A script: ``{"executor": name, "steps": [[at, stream, text], ...], "exit": code,
#: "gate": bool}``. ``at`` is seconds from the start of play, ``stream`` is ``"out"``
#: or ``"err"`` (``${cwd}`` in ``text`` is the agent's working directory), or a wait:
#: ``"gate"`` (until :meth:`AgentBed.open` opens the gate named ``text``) or
#: ``"await"`` (until the server writes a stdin line matching the regex ``text``),
#: after which the schedule restarts; with ``gate`` the stand-in waits for
#: :meth:`AgentBed.release` first.
Script = dict[str, Any]

TESTS_DIR = Path(__file__).resolve().parent.parent

_LAUNCHER = """#!{python}
# forgectl test bed: a scripted stand-in for a coding agent's CLI (tests/agents).
import sys
sys.path.insert(0, {tests!r})
from agents.standin import main
sys.exit(main(sys.argv, {root!r}))
"""


class AgentBed:
    """A directory of stand-in agent programs and the scripts they play."""

    def __init__(self, root: Path, programs: tuple[str, ...] | None = None) -> None:
        from .registry import programs as registered

        self.root = root
        self.bin_dir = root / "bin"
        for sub in ("bin", "sessions", "queue", "claimed", "gates", "runs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._names = itertools.count(1)
        self._queued = itertools.count(1)
        for program in programs or registered():
            launcher = self.bin_dir / program
            launcher.write_text(
                _LAUNCHER.format(python=sys.executable, tests=str(TESTS_DIR), root=str(root)),
                encoding="utf-8",
            )
            launcher.chmod(0o755)

    def add(self, script: Script, name: str | None = None) -> str:
        """Store ``script``; return the marker to put in the task's text."""
        name = name or f"s{next(self._names)}-{os.getpid()}"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"session name {name!r}: letters, digits, _ and - only")
        _write_atomic(self.root / "sessions" / f"{name}.json", script)
        return f"forgectl-session:{name}"

    def enqueue(self, script: Script) -> None:
        """Queue ``script`` for the next stand-in that finds no marker."""
        _write_atomic(self.root / "queue" / f"{next(self._queued):06d}.json", script)

    def release(self, marker: str) -> None:
        """Let a gated session (``"gate": True``) start playing."""
        (self.root / "gates" / _name(marker)).touch()

    def open(self, marker: str, gate: str) -> None:
        """Open the gate named ``gate`` in the middle of a session (a ``gate`` step)."""
        (self.root / "gates" / f"{_name(marker)}.{gate}").touch()

    def run_record(self, marker: str) -> dict[str, Any] | None:
        """What the stand-in that played ``marker`` recorded, or None if none has yet."""
        path = self.root / "runs" / f"{_name(marker)}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def wait_started(self, marker: str, timeout: float = 20.0) -> dict[str, Any]:
        """Block until a stand-in has picked ``marker`` (it is waiting at its gate, or
        playing); return its record."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.run_record(marker)
            if record is not None:
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"no stand-in picked {marker} within {timeout} s")
            time.sleep(0.02)

    def failures(self) -> list[str]:
        """The stderr lines of stand-ins that refused to run (unknown argv, no script)."""
        path = self.root / "refused.log"
        try:
            return path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []


def _name(marker: str) -> str:
    m = MARKER_RE.fullmatch(marker)
    return m.group(1) if m else marker


def _write_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
