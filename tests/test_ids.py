"""Ids as people type them, ps's table and the attempt prefix, without a server.

The rule (forgectl/ids.py): a whole id is itself, a unique prefix names its id,
an ambiguous one is a usage error naming the candidates, none is "not found";
``ps`` prints the shortest prefixes that stay unique. The servers' side is in
test_find.py (real binary) and test_find_documented.py (documented API).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from forgectl.errors import AmbiguousId, ExitCode, InvalidValue, NotFoundError
from forgectl.events import ProcessChunk, ProcessRecord
from forgectl.ids import is_uuid, match_prefix, short_ids, uuid_prefix
from forgectl.output.prefixed import AttemptRenderer, LineWriter, process_label
from forgectl.output.raw import RawRenderer
from forgectl.output.table import ProcessTable, span
from forgectl.pipeline import record_filter

A = "3f2a1b2c-0000-4000-8000-000000000001"
B = "3f2a9d00-0000-4000-8000-000000000002"
C = "8c1e0000-0000-4000-8000-000000000003"


def test_uuid_shapes() -> None:
    assert is_uuid(A) and is_uuid(A.upper())
    assert not is_uuid(A[:-1]) and not is_uuid("proc_abc123")
    assert all(uuid_prefix(A[:n]) for n in range(1, 36))
    # Not a start of a UUID: the server judges those (exit 2 from its 400), no list asked.
    for other in ("", A, "not-an-id", "3f2a1b2c9", "3f2a-", "b-100000-120", "proc_abc123"):
        assert not uuid_prefix(other), other


def test_an_exact_id_wins_over_longer_ones() -> None:
    assert match_prefix("process", "proc_a", ["proc_a", "proc_ab"]) == "proc_a"


def test_a_unique_prefix_names_its_id_in_any_case() -> None:
    assert match_prefix("process", "8c", [A, B, C]) == C
    assert match_prefix("process", "3F2A1", [A, B, C]) == A


def test_an_ambiguous_prefix_is_a_usage_error_naming_every_candidate() -> None:
    with pytest.raises(AmbiguousId) as caught:
        match_prefix("process", "3f2a", {A: "setupscript, failed", B: "devserver\x1b[2J"})
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    assert [c[0] for c in error.candidates] == [A, B]
    text = str(error)
    assert "process id 3f2a is ambiguous: 2 processes start with it" in text
    assert A in text and B in text and "setupscript, failed" in text
    assert "\x1b" not in text  # server text in a message is escaped


def test_many_candidates_are_counted_not_all_listed() -> None:
    ids = [f"aa{i:02d}" for i in range(10)]
    with pytest.raises(AmbiguousId, match=r"10 attempts start with it: .* and 4 more"):
        match_prefix("attempt", "aa", ids)


def test_no_match_is_not_found() -> None:
    with pytest.raises(NotFoundError) as caught:
        match_prefix("attempt", "ffff", [A, B])
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    assert "attempt ffff not found" in str(caught.value)


def test_short_ids_are_unique_and_at_least_eight_long() -> None:
    short = short_ids([A, B, C, "3f2a1b2c-0000-4000-8000-00000000000f"])
    assert short[C] == "8c1e0000"
    assert short[B] == "3f2a9d00"
    assert short[A] == A  # it differs from another in its last character only
    for ident, prefix in short.items():  # each names its id, and only it
        assert match_prefix("process", prefix, short) == ident
    assert short_ids(["proc_a", "proc_ab"]) == {"proc_a": "proc_a", "proc_ab": "proc_ab"}


def test_record_filter_takes_names_and_comma_lists() -> None:
    failed = ProcessRecord({"processId": A, "status": "failed", "runReason": "setupscript"})
    running = ProcessRecord({"processId": B, "status": "running", "runReason": "devserver"})
    assert record_filter(status="failed,killed")(failed)
    assert not record_filter(status=["running"])(failed)
    assert record_filter(run_reason="devserver")(running)
    assert record_filter()(running)
    with pytest.raises(InvalidValue, match="choose from running, completed, failed, killed"):
        record_filter(status="stopped")


def _record(
    pid: str, status: str, started: str, ended: str | None, **more: object
) -> ProcessRecord:
    return ProcessRecord(
        {
            "processId": pid,
            "taskAttemptId": C,
            "runReason": "codingagent",
            "executor": "CLAUDE_CODE",
            "status": status,
            "exitCode": more.get("exit"),
            "startedAt": started,
            "completedAt": ended,
        }
    )


def test_the_table_has_short_ids_durations_and_escaped_text() -> None:
    now = datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC)
    out = io.BytesIO()
    table = ProcessTable(out, color="never", now=now)
    table.render(_record(A, "running", "2026-12-01T12:00:00Z", None))
    table.render(_record(B, "failed", "2026-12-01T11:00:00Z", "2026-12-01T11:04:05Z", exit=3))
    hostile = _record(C, "completed", "2026-11-30T11:00:00Z", "2026-11-30T11:00:00.25Z", exit=0)
    hostile.data["executor"] = "EVIL\x1b]0;title\x07"
    table.render(hostile)
    rows = table.rows()
    assert rows[0][:3] == ("ID", "ATTEMPT", "REASON")
    assert [r[0] for r in rows[1:]] == ["3f2a1b2c", "3f2a9d00", "8c1e0000"]
    assert [r[7] for r in rows[1:]] == ["10.0s", "4m05s", "250ms"]  # running: so far
    assert [r[5] for r in rows[1:]] == ["-", "3", "0"]
    table.close()
    text = out.getvalue().decode()
    assert "\x1b" not in text and "\x07" not in text and "EVIL\\x1b" in text
    assert len(text.splitlines()) == 4


def test_spans_read_like_durations() -> None:
    assert [span(s) for s in (0.85, 12.34, 245, 3720, 2 * 86400 + 3600)] == [
        "850ms",
        "12.3s",
        "4m05s",
        "1h02m",
        "2d01h",
    ]


def test_line_writer_passes_whole_lines_with_their_prefix() -> None:
    out = io.BytesIO()
    shared = RawRenderer(out)
    writer = LineWriter(shared, b"P ", end_partial=True)
    writer.write(b"one\ntw")
    writer.write(b"o\nthr")
    writer.finish()
    shared.close()
    assert out.getvalue() == b"P one\nP two\nP thr\n"


def test_lines_of_two_processes_never_mix() -> None:
    out = io.BytesIO()
    records = {
        A: ProcessRecord({"processId": A, "runReason": "setupscript"}),
        C: ProcessRecord({"processId": C, "runReason": "devserver"}),
    }
    renderer = AttemptRenderer(
        lambda sink: RawRenderer(sink),
        lambda pid: process_label(records, pid),
        color="never",
        out=out,
    )
    renderer.render(ProcessChunk(b"setup ha", "stdout", A))
    renderer.render(ProcessChunk(b"tick 1\ntick", "stdout", C))
    renderer.render(ProcessChunk(b"lf done\n", "stdout", A))
    renderer.close()
    assert out.getvalue().decode().splitlines() == [
        "8c1e0000 dev     tick 1",
        "3f2a1b2c setup   setup half done",
        "8c1e0000 dev     tick",
    ]


def test_without_a_label_the_bytes_are_the_processes_own() -> None:
    out = io.BytesIO()
    renderer = AttemptRenderer(lambda sink: RawRenderer(sink), lambda pid: "", out=out)
    renderer.render(ProcessChunk(b"no newline at the end", "stdout", A))
    renderer.close()
    assert out.getvalue() == b"no newline at the end"
