"""Ids that are not ids, and failures that used to be quiet or exit 1.

- ``.``, ``..``, empty and control-character ids are usage errors (exit 2) before
  anything is sent, from the command line and from the Python API (behind a
  proxy, ``/ws/task-attempts/../diff`` would have become another route).
- A stdout that fails while the stream is idle ends the command at once (exit 8).
- A host name that cannot be one is a usage error, not ``unexpected UnicodeError``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import support
from hostile import (
    Frames,
    HostileServer,
    RecordingProxy,
    clean_env,
    forgectl,
    inert,
)
from support import EXE

from forgectl import ForgeClient
from forgectl.errors import ExitCode, UsageError

pytestmark = pytest.mark.timeout(60)

BAD_IDS = {
    "dot": ".",
    "dotdot": "..",
    "empty": "",
    "blank": "  ",
    "escape": "p1\x1b]0;title\x07",
    "newline": "p1\nforgectl: note: fine",
    "c1": "p1\x9b",
}
COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "logs": lambda ident: ["logs", ident],
    "logs --raw": lambda ident: ["logs", ident, "--raw"],
    "diff": lambda ident: ["diff", ident],
    "monitor --attempt": lambda ident: ["monitor", "--attempt", ident],
    "monitor --process": lambda ident: ["monitor", "--process", ident],
}


def everything() -> HostileServer:
    """Answers any WebSocket route forgectl could ask for: nothing may reach it."""
    routes: dict[str, Frames] = {}
    for ident in (*BAD_IDS.values(), "p1"):
        for path in (
            f"/ws/execution-processes/{ident}/logs/normalized",
            f"/ws/execution-processes/{ident}/logs/raw",
            f"/ws/task-attempts/{ident}/diff",
            f"/ws/{ident}/diff",
            "/ws/execution-processes",
            "/ws/diff",
        ):
            routes[path] = Frames()
    return HostileServer(routes)


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[HostileServer, RecordingProxy]]:
    with everything() as srv, RecordingProxy() as proxy:
        yield srv, proxy


@pytest.mark.parametrize("api", ["documented", "forge", "auto"])
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("ident", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_an_id_that_is_not_one_is_a_usage_error_before_anything_is_sent(
    ident: str,
    command: Callable[[str], list[str]],
    api: str,
    peers: tuple[HostileServer, RecordingProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, proxy = peers
    srv.seen.clear()
    proxy.received.clear()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # a proxy would normalize "..": none sees it
    result = support.invoke(srv, *command(ident), "--no-reconnect", api=api)
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert srv.seen == [] and proxy.received == []
    assert "is not" in result.stderr or "cannot be empty" in result.stderr
    assert inert(result.stderr) is None, result.stderr


def test_the_console_script_says_so_too() -> None:
    with everything() as srv:
        run = forgectl("-s", srv.url, "--api", "documented", "diff", "..")
    assert run.code == ExitCode.USAGE, run.stderr
    assert srv.seen == []
    assert run.stderr == (
        "forgectl: error: Invalid value for 'ATTEMPT_ID': '..' is not an id (it would "
        "name another URL path) (see `forgectl diff --help`)\n"
    )


async def test_the_python_api_refuses_them_too() -> None:
    with everything() as srv:
        async with ForgeClient(srv.url, api="documented") as forge:
            for ident in BAD_IDS.values():
                with pytest.raises(UsageError) as info:
                    async for _ in forge.processes.stream_logs(ident):
                        pass
                assert info.value.exit_code == ExitCode.USAGE
                with pytest.raises(UsageError):
                    async for _ in forge.attempts.stream_diff(ident):
                        pass
        assert srv.seen == []


def test_a_good_id_still_goes_through_a_proxy_untouched() -> None:
    # The proxy forwards what it is given: the path stays as typed (quoted).
    with everything() as srv, RecordingProxy() as proxy:
        run = forgectl(
            "-s",
            srv.url,
            "--api",
            "documented",
            "diff",
            "p1",
            "--no-reconnect",
            env=clean_env(HTTP_PROXY=proxy.url),
        )
    assert run.code == 0, run.stderr  # the route closed normally, with no diff
    assert srv.paths() == ["/ws/task-attempts/p1/diff"]
    assert proxy.everything().startswith(b"CONNECT 127.0.0.1:")


# -- quiet failures --------------------------------------------------------------------


def test_stdout_failing_while_the_stream_is_idle_ends_the_command_at_once() -> None:
    event = '{"type": "process_started", "processId": "p1"}'
    with HostileServer({"/ws/execution-processes": Frames([event], hold=True)}) as srv:
        started = time.monotonic()
        with open("/dev/full", "wb") as full:
            child = subprocess.Popen(
                [EXE, "-s", srv.url, "--api", "documented", "monitor", "--json"],
                stdin=subprocess.DEVNULL,
                stdout=full,
                stderr=subprocess.PIPE,
                env=clean_env(),
            )
        try:
            _, err = child.communicate(timeout=20)  # the stream itself never ends
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == ExitCode.OUTPUT, err
    assert err.decode().splitlines() == [
        "forgectl: error: cannot write the output: No space left on device"
    ]
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "server", ["http://a..b", "http://" + "x" * 64 + ".example", "ws://.example:1"]
)
def test_a_host_name_that_cannot_be_one_is_a_usage_error(server: str) -> None:
    run = forgectl("-s", server, "logs", "p1")
    assert run.code == ExitCode.USAGE, run.stderr
    (line,) = run.stderr.splitlines()
    assert "not a valid host name" in line and "unexpected" not in line
