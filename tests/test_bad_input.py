"""Bad frames never kill a stream: warned about once per kind, skipped, nothing
valid lost (invalid JSON, binary, unknown shapes, truncated UTF-8, 64 MiB)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import support
from click.testing import Result
from reference_server import (
    ATTEMPT_ID,
    PROC_FINISHED,
    PROC_RAW,
    SPEC_DIFF_UPDATE,
    SPEC_RAW_LINES,
    Fault,
    ThreadedReferenceServer,
    default_scenario,
)

pytestmark = pytest.mark.timeout(60)

NORMALIZED = f"/ws/execution-processes/{PROC_FINISHED}/logs/normalized"


@pytest.fixture
def srv() -> Iterator[ThreadedReferenceServer]:
    with ThreadedReferenceServer(scenario=default_scenario()) as server:
        yield server


def invoke(srv: ThreadedReferenceServer, *args: str) -> Result:
    return support.invoke(srv, *args, api="documented")


def json_lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines()]


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("forgectl: warning: ")]


def first_warnings(stderr: str) -> list[str]:
    return [line for line in warnings(stderr) if "(skipped; later ones are counted)" in line]


def test_junk_between_log_entries(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(
        Fault(
            path=NORMALIZED,
            inject=[
                (0, "not json {"),
                (1, b"\x00\x01\xfe binary"),
                (1, "[1, 2, 3]"),
                (2, '{"foo": 1}'),
                (3, b'{"level":"info","message":"caf\xc3'),  # truncated UTF-8
                (3, '{"level": "info", "message": '),  # truncated JSON
                (4, "null"),
                (9, '{"bar": 2}'),  # after the last item
            ],
        )
    )
    result = invoke(srv, "logs", PROC_FINISHED, "--json")
    assert result.exit_code == 0
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs
    kinds = [line.split(": ")[2] for line in first_warnings(result.stderr)]
    assert kinds == ["invalid JSON frame", "unexpected message", "unexpected log message"]
    # Later ones of a kind are counted, once, at the end.
    assert "forgectl: warning: invalid JSON frame: 4 frames skipped in all" in result.stderr
    assert "forgectl: warning: unexpected message: 2 frames skipped in all" in result.stderr
    assert "forgectl: warning: unexpected log message: 2 frames skipped in all" in result.stderr
    assert len(warnings(result.stderr)) == 6


def test_a_64_mib_frame_does_not_end_the_stream(srv: ThreadedReferenceServer) -> None:
    huge = "x" * (64 * 1024 * 1024)
    big_log = {"level": "info", "message": "y" * (8 * 1024 * 1024)}
    srv.processes[PROC_FINISHED].logs.insert(3, big_log)
    srv.faults.append(Fault(path=NORMALIZED, inject=[(2, huge)]))
    # --settle 5: the stream ends with the server's close; on a loaded machine the
    # in-process server paused over 0.5 s (the default) after the 64 MiB frame, and
    # forgectl, rightly, took that for the end of the backlog.
    result = invoke(srv, "logs", PROC_FINISHED, "--json", "--settle", "5")
    assert result.exit_code == 0
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs
    (warning,) = warnings(result.stderr)
    assert "invalid JSON frame: 67108864 bytes starting 'xxxx" in warning
    assert len(warning) < 300  # the frame itself is not echoed


@pytest.mark.parametrize("transport", ["sansio", "websockets"])
def test_a_frame_over_the_limit_is_one_error_not_a_reconnect_loop(
    srv: ThreadedReferenceServer, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if transport == "websockets":
        monkeypatch.setenv("FORGECTL_TRANSPORT", "websockets")
    srv.faults.append(Fault(path=NORMALIZED, inject=[(2, "x" * (3 << 20))], times=None))
    result = invoke(srv, "logs", PROC_FINISHED, "--json", "--max-message-size", "2")
    assert result.exit_code == 6, result.stderr
    assert result.stderr.splitlines() == [
        "forgectl: error: the server sent a message of 3 MiB (3,145,728 bytes), over the "
        "2 MiB (2,097,152 bytes) limit (--max-message-size MIB raises it)"
    ]
    # What came before it is printed; nothing was retried.
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs[:2]
    assert len(srv.connections) == 1


def test_monitor_skips_objects_without_a_type_and_keeps_unknown_types(
    srv: ThreadedReferenceServer,
) -> None:
    srv.monitor_hold_open = False
    srv.faults.append(
        Fault(path="/ws/execution-processes", inject=[(1, '{"processId": "x"}'), (2, "oops")])
    )
    result = support.invoke(srv, "monitor", "--json", "--no-reconnect")
    # The event stream never ends: a server close is a lost connection.
    assert result.exit_code == 3
    assert json_lines(result.stdout) == srv.events  # process_paused included
    kinds = [line.split(": ")[2] for line in first_warnings(result.stderr)]
    assert kinds == ["unexpected process event", "invalid JSON frame"]


def test_diff_skips_other_messages(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(
        Fault(
            path=f"/ws/task-attempts/{ATTEMPT_ID}/diff",
            inject=[(0, '{"type": "something_else"}'), (0, b"\xff\xfe")],
        )
    )
    result = invoke(srv, "diff", ATTEMPT_ID, "--json")
    assert result.exit_code == 0
    assert json_lines(result.stdout) == [SPEC_DIFF_UPDATE]
    kinds = [line.split(": ")[2] for line in first_warnings(result.stderr)]
    assert kinds == ["unexpected diff message", "invalid JSON frame"]


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"a": value}
    return value


def test_objects_nested_past_orjsons_writing_limit_still_print(
    srv: ThreadedReferenceServer,
) -> None:
    """orjson reads 1024 levels but writes only 254: such a message prints unchanged."""
    deep_log = {"level": "info", "message": "deep", "metadata": nested(300)}
    deep_diff = {**SPEC_DIFF_UPDATE, "diff": nested(300)}
    srv.faults.append(Fault(path=NORMALIZED, inject=[(1, json.dumps(deep_log))]))
    srv.faults.append(
        Fault(path=f"/ws/task-attempts/{ATTEMPT_ID}/diff", inject=[(0, json.dumps(deep_diff))])
    )
    result = invoke(srv, "logs", PROC_FINISHED, "--json")
    assert result.exit_code == 0, result.stderr
    logs = srv.processes[PROC_FINISHED].logs
    assert json_lines(result.stdout) == [logs[0], deep_log, *logs[1:]]
    assert result.stderr == ""
    result = invoke(srv, "diff", ATTEMPT_ID, "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == [deep_diff]


def test_raw_passes_binary_and_broken_utf8_through_verbatim(
    srv: ThreadedReferenceServer,
) -> None:
    srv.faults.append(
        Fault(
            path=f"/ws/execution-processes/{PROC_RAW}/logs/raw",
            inject=[(1, b"bin\x00ary \xc3\n"), (2, "{not json")],
        )
    )
    result = invoke(srv, "logs", PROC_RAW, "--raw", "--follow")
    assert (result.exit_code, result.stderr) == (0, "")
    proc = srv.processes[PROC_RAW]
    lines = [*proc.raw, *proc.live_raw]
    expected = (
        (lines[0] + "\n").encode()
        + b"bin\x00ary \xc3\n"
        + (lines[1] + "\n").encode()
        + b"{not json\n"
        + "".join(line + "\n" for line in lines[2:]).encode()
    )
    assert result.stdout_bytes == expected
    assert lines[:2] == list(SPEC_RAW_LINES[:2])


def test_junk_sent_once_does_not_shift_the_resent_history(
    srv: ThreadedReferenceServer,
) -> None:
    # The first connection carries junk and drops; the second resends the history
    # without it. Exactly the five entries come out, each once.
    srv.faults.append(Fault(path=NORMALIZED, inject=[(1, "junk"), (2, '{"x": 1}')], drop_after=3))
    result = invoke(srv, "logs", PROC_FINISHED, "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs
    assert "reconnecting in" in result.stderr
    assert "differs" not in result.stderr
    assert len(srv.accepted) == 2


def test_junk_resent_after_a_reconnect_is_reported_once(srv: ThreadedReferenceServer) -> None:
    srv.faults.append(Fault(path=NORMALIZED, inject=[(1, "junk")], drop_after=3))
    srv.faults.append(Fault(path=NORMALIZED, inject=[(1, "junk")]))
    result = invoke(srv, "logs", PROC_FINISHED, "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout) == srv.processes[PROC_FINISHED].logs
    assert len(first_warnings(result.stderr)) == 1
    assert "frames skipped in all" not in result.stderr
