"""Edges a demanding user hits: a full or closed stdout, odd values, stray bytes in
tokens and arguments. Each ends in one `forgectl: error:` line and a documented
exit status, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest
import support
from reference_server import PROC_FINISHED, ThreadedReferenceServer, default_scenario

from forgectl.errors import ExitCode

pytestmark = pytest.mark.timeout(60)

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def srv() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(scenario=default_scenario()) as server:
        yield server


def env(**extra: str) -> dict[str, str | None]:
    unset: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("FORGE", "_FORGECTL"))
    }
    return {**unset, "FORGE_API": "documented", **extra}


def run(
    *args: str | bytes, stdout: int | None = subprocess.DEVNULL, extra: dict[str, str] | None = None
) -> tuple[int, str]:
    done = support.run(None, *args, stdout=stdout, env=env(**(extra or {})))
    return done.returncode, done.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("forgectl: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["logs", PROC_FINISHED],
        ["logs", PROC_FINISHED, "--raw"],
        ["logs", PROC_FINISHED, "--pretty"],
        ["monitor", "--until-idle"],
    ],
    ids=["json", "raw", "pretty", "monitor"],
)
def test_a_full_stdout_is_exit_8(srv: ThreadedReferenceServer, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        code, err = run("-s", srv.url, *args, stdout=full.fileno())
    assert code == ExitCode.OUTPUT
    assert "No space left on device" in one_error_line(err)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["logs", "--help"]])
def test_help_into_a_full_stdout_is_exit_8(args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        code, err = run(*args, stdout=full.fileno())
    assert code == ExitCode.OUTPUT
    one_error_line(err)


def test_a_closed_stdout_is_exit_8(srv: ThreadedReferenceServer) -> None:
    done = support.run(
        srv, "logs", PROC_FINISHED, stdout=None, env=env(), preexec_fn=lambda: os.close(1)
    )
    assert done.returncode == ExitCode.OUTPUT
    assert "stdout is closed" in one_error_line(done.stderr)


@pytest.mark.parametrize("group", [[], ["auth"]])
def test_a_group_without_a_command_is_one_usage_line(group: list[str]) -> None:
    code, err = run(*group)
    assert code == ExitCode.USAGE
    assert "missing command: one of " in one_error_line(err)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "99999999d"], "too far back"),
        (["--tail", "9" * 21], "--tail"),
        (["--open-timeout", "nan"], "not a number of seconds"),
        (["--wait-start", "NaN"], "not a number of seconds"),
    ],
)
def test_out_of_range_values_are_usage_errors(args: list[str], says: str) -> None:
    code, err = run("-s", UNREACHABLE, "logs", "p", *args)
    assert code == ExitCode.USAGE
    assert says in one_error_line(err)


@pytest.mark.parametrize(
    ("token", "says"),
    [("tok\nen", "line break"), ("tok\ren", "line break"), ("to ken", "space"), ("tøk", "'\\xf8'")],
)
def test_a_token_no_header_can_carry_is_a_usage_error(token: str, says: str) -> None:
    code, err = run("-s", UNREACHABLE, "logs", "p", extra={"FORGE_TOKEN": token})
    assert code == ExitCode.USAGE
    line = one_error_line(err)
    assert says in line and "FORGE_TOKEN" in line and token not in line


def test_an_argument_that_is_not_utf8_is_sent_as_typed() -> None:
    """Under a non-UTF-8 locale an argument's bytes reach the URL percent-encoded."""
    locale = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    code, err = run("-s", UNREACHABLE, "logs", b"caf\xe9", extra=locale)
    assert code == ExitCode.CONNECT
    assert "/execution-processes/caf%E9/" in one_error_line(err)
    code, err = run("-s", UNREACHABLE + "/b\xe9se", "logs", "p")
    assert code == ExitCode.CONNECT
    assert "127.0.0.1:9/b%C3%A9se/ws/" in one_error_line(err)


def test_debug_and_verbose_after_the_subcommand(srv: ThreadedReferenceServer) -> None:
    code, err = run("-s", srv.url, "logs", PROC_FINISHED, "--debug", "-vv")
    assert code == 0
    frames = [line for line in err.splitlines() if line.startswith("forgectl: · frame, ")]
    assert len(frames) == len(srv.processes[PROC_FINISHED].logs)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["logs", ""], "an id cannot be empty"),
        (["diff", " "], "an id cannot be empty"),
        (["monitor", "--process", ""], "an id cannot be empty"),
        (["logs", "p", "--level", ""], "names no level"),
        (["diff", "a", "--stat", "--name-only"], "choose one"),
    ],
)
def test_empty_or_conflicting_choices_are_usage_errors(args: list[str], says: str) -> None:
    code, err = run("-s", UNREACHABLE, *args)
    assert code == ExitCode.USAGE
    assert says in one_error_line(err)


def test_timestamps_prefix_pretty_log_lines(srv: ThreadedReferenceServer) -> None:
    done = support.run(srv, "logs", PROC_FINISHED, "--pretty", "-t", "--color", "never", env=env())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(srv.processes[PROC_FINISHED].logs)
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3} \S", line) for line in lines), lines
