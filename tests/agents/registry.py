"""Which executor module plays a stand-in's argv.

One module per executor, named here and imported only when a stand-in needs it.
Each module provides:

* ``PROGRAMS``: the program names it is launched as (``("npx",)``), so
  ``AgentBed`` installs a stand-in under each;
* ``matches(program, args) -> bool``: is this the command line the server runs for
  that executor (program is the basename of argv[0], args the rest);
* ``respond(line) -> list[str]``: lines to write back on stdout for a line the server
  wrote on the agent's stdin (an executor whose CLI speaks a request/response
  protocol must answer; Claude Code's stream-json input needs no answer);
* optionally ``is_prompt(line) -> bool``: this stdin line is the prompt, so a
  stand-in that has seen no marker by then claims a queued script at once instead of
  waiting ``MARKER_WAIT`` seconds;
* optionally ``ENDED_BY_SIGNAL = True``: the server ends the agent by signals (Codex,
  ACP), so the stand-in exits quietly on SIGINT/SIGTERM;
* optionally ``fill(text) -> str``: fills in what the module learnt from stdin (an
  id to answer) in each output step.

To add an executor (Codex, Gemini, Amp, ...): write ``agents/<name>.py`` with those
three names and a generator of its output format, and add it to ``EXECUTORS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

#: executor name (as a script's ``"executor"`` names it) -> module
EXECUTORS: dict[str, str] = {
    "claude": "agents.claude",
    "codex": "agents.codex",
    "gemini": "agents.gemini",
}


def module(name: str) -> ModuleType:
    return importlib.import_module(EXECUTORS[name])


def programs() -> tuple[str, ...]:
    names: list[str] = []
    for name in EXECUTORS:
        for program in module(name).PROGRAMS:
            if program not in names:
                names.append(program)
    return tuple(names)


def claim(program: str, args: Sequence[str]) -> str | None:
    """The executor whose command line this is, or None."""
    for name in EXECUTORS:
        if module(name).matches(program, args):
            return name
    return None
