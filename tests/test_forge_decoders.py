"""The real Forge server's dialect, decoder by decoder: synthetic frames for the
policies (revisions, resends after a reconnect, snapshots) and every captured
sample in tests/samples/forge-0.7.4 (real frames of the 0.7.4 server, copied from the
captures the project was given, so the tests run on any machine)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from forgectl.diagnostics import Diagnostics
from forgectl.dialects.forge import (
    ForgeDiffDecoder,
    ForgeLogsDecoder,
    ForgeMonitorDecoder,
    ForgeRawAsLogsDecoder,
    ForgeRawDecoder,
    process_events,
)
from forgectl.dialects.patch import BadFrame, parse, unescape
from forgectl.errors import NotFoundError, ProtocolError
from forgectl.events import BACKLOG_END, DiffUpdate, Event, LogEntry, ProcessEvent, RawChunk
from forgectl.output.jsonl import JsonLinesRenderer
from forgectl.transport import status_error

SAMPLES = Path(__file__).resolve().parent / "samples" / "forge-0.7.4"
README = Path(__file__).resolve().parent.parent / "README.md"


class Said:
    """Diagnostics that keep what they were told."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.diag = Diagnostics(lambda level, line: self.lines.append((level, line)), verbose=2)

    def warnings(self) -> list[str]:
        return [line for level, line in self.lines if level == "warning"]


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def frames(name: str) -> list[str]:
    return [f["data"] for f in sample(name)["frames"] if f.get("dir") == "recv"]


def feed(decoder: Any, items: list[str] | list[bytes], *, marks: bool = False) -> list[Event]:
    """The events of ``items``; where a history ends (a driver's signal) only with ``marks``."""
    out: list[Event] = []
    for item in items:
        out.extend(e for e in decoder.feed(item) if marks or e is not BACKLOG_END)
    return out


def patch(*ops: dict[str, Any]) -> bytes:
    # The standard library writes the values nested deeper than orjson does.
    return json.dumps({"JsonPatch": list(ops)}, separators=(",", ":")).encode()


FINISHED = b'{"finished":true}'


def entry(text: str, kind: str = "assistant_message") -> dict[str, Any]:
    return {
        "type": "NORMALIZED_ENTRY",
        "content": {
            "timestamp": None,
            "entry_type": {"type": kind},
            "content": text,
            "metadata": None,
        },
    }


def add(index: int, text: str) -> bytes:
    return patch({"op": "add", "path": f"/entries/{index}", "value": entry(text)})


def replace(index: int, text: str) -> bytes:
    return patch({"op": "replace", "path": f"/entries/{index}", "value": entry(text)})


def revs(events: list[Event]) -> list[tuple[int, int, str]]:
    out = []
    for event in events:
        assert isinstance(event, LogEntry) and event.metadata is not None
        out.append((event.metadata["index"], event.metadata["revision"], event.message))
    return out


# -- every sample is used -------------------------------------------------------------

USED = {
    "config.seed.json",
    "derived_execution_processes_state.json",
    "doc_ws_execution_processes.json",
    "rest_basic.json",
    "rest_create_attempt.json",
    "rest_create_project.json",
    "rest_create_task.json",
    "rest_get_attempt.json",
    "rest_get_process_codingagent.json",
    "rest_get_process_setupscript.json",
    "rest_list_attempts.json",
    "rest_list_processes_early.json",
    "rest_list_processes_final.json",
    "rest_start_dev_server.json",
    "rest_stop_process.json",
    "sse_events_after.txt",
    "sse_events_headers.txt",
    "sse_events_initial.txt",
    "ws_diff_stream.json",
    "ws_diff_stream_stats_only.json",
    "ws_drafts_stream.json",
    "ws_execution_processes_ping_probe.json",
    "ws_execution_processes_stream.json",
    "ws_execution_processes_stream_devserver.json",
    "ws_execution_processes_unknown_attempt.json",
    "ws_normalized_logs_codingagent_historic.json",
    "ws_normalized_logs_codingagent_live.json",
    "ws_normalized_logs_setup.json",
    "ws_normalized_logs_setupscript_historic.json",
    "ws_raw_logs_codingagent_historic.json",
    "ws_raw_logs_codingagent_live.json",
    "ws_raw_logs_devserver_live.json",
    "ws_raw_logs_setup_live.json",
    "ws_raw_logs_setupscript_historic.json",
    "ws_raw_logs_unknown_id.json",
    "ws_tasks_stream.json",
}


def test_every_sample_is_fed_to_a_decoder_here() -> None:
    """A new sample must get a test below (and a name in USED)."""
    assert {p.name for p in SAMPLES.iterdir()} == USED
    source = Path(__file__).read_text()
    for name in USED:
        assert source.count(f'"{name}"') >= 2, f"{name} is listed but not used"


# -- raw logs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["ws_raw_logs_setup_live.json", "ws_raw_logs_setupscript_historic.json"]
)
def test_raw_setup_script_verbatim_and_resend_skipped(name: str) -> None:
    said = Said()
    decoder = ForgeRawDecoder(said.diag)
    decoder.connected()
    events = feed(decoder, frames(name))
    assert decoder.done
    chunks = [e for e in events if isinstance(e, RawChunk)]
    assert len(chunks) == len(events) == 5
    by_stream = {s: b"".join(c.raw for c in chunks if c.stream == s) for s in ("stdout", "stderr")}
    assert by_stream == {
        "stdout": b"setup-start\nline 1\nline 2\nline 3\nsetup-done\n",
        "stderr": b"to-stderr\n",
    }
    decoder.done = False
    decoder.connected()  # a reconnect: the server resends from /entries/0
    assert feed(decoder, frames(name)) == []
    assert said.warnings() == []


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("ws_raw_logs_codingagent_live.json", "npm error code ENOTCACHED\n"),
        ("ws_raw_logs_codingagent_historic.json", "npm error code EAI_AGAIN\n"),
        ("ws_raw_logs_devserver_live.json", "dev-server-up\ntick 0\n"),
    ],
)
def test_raw_other_processes(name: str, start: str) -> None:
    decoder = ForgeRawDecoder(Said().diag)
    events = feed(decoder, frames(name))
    text = "".join(e.text for e in events if isinstance(e, RawChunk))
    assert text.startswith(start) and text.endswith("\n")
    assert decoder.done
    if "devserver" in name:
        assert text == "dev-server-up\n" + "".join(f"tick {i}\n" for i in range(6))


def test_raw_as_logs_keeps_lines_whole_per_stream() -> None:
    """Chunks are not lines, and a stderr chunk can land inside a stdout line."""
    decoder = ForgeRawAsLogsDecoder(Said().diag)
    values = [
        ("STDOUT", "line 1\nli"),
        ("STDERR", "to-std"),
        ("STDOUT", "ne 2\n"),
        ("STDERR", "err\n"),
    ]
    ops = [
        {"op": "add", "path": f"/entries/{i}", "value": {"type": t, "content": c}}
        for i, (t, c) in enumerate(values)
    ]
    events = feed(decoder, [patch(op) for op in ops] + [FINISHED])
    got = [(e.get("source"), e.get("message"), e.get("level")) for e in events]
    assert got == [
        ("stdout", "line 1", "info"),
        ("stdout", "line 2", "info"),
        ("stderr", "to-stderr", "warn"),
    ]


def test_raw_as_logs_on_the_setup_sample_flushes_an_unterminated_line() -> None:
    decoder = ForgeRawAsLogsDecoder(Said().diag)
    events = feed(decoder, frames("ws_raw_logs_setup_live.json"))
    assert [e.get("message") for e in events] == [
        "setup-start",
        "line 1",
        "line 2",
        "line 3",
        "to-stderr",
        "setup-done",
    ]
    tail = ForgeRawAsLogsDecoder(Said().diag)
    op = {"op": "add", "path": "/entries/0", "value": {"type": "STDOUT", "content": "no newline"}}
    assert feed(tail, [patch(op)]) == []
    assert [e.get("message") for e in tail.settled()] == ["no newline"]


# -- normalized logs: the revision policy ------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["ws_normalized_logs_codingagent_historic.json", "ws_normalized_logs_codingagent_live.json"],
)
def test_normalized_coding_agent_sample(name: str) -> None:
    decoder = ForgeLogsDecoder(Said().diag, follow=False)
    events = feed(decoder, frames(name))
    assert decoder.done
    (log,) = events
    assert isinstance(log, LogEntry)
    assert set(log.to_dict()) == {"level", "message", "timestamp", "source", "metadata"}
    assert (log.level, log.source, log.timestamp) == ("error", "executor", None)
    assert log.message.startswith("npm error code ENOTCACHED")
    assert log.metadata == {
        "entryType": "error_message",
        "index": 0,
        "error": {"type": "other"},
        "revision": 0,
    }


def test_replaced_entry_printed_then_replaced_gets_the_next_revision() -> None:
    decoder = ForgeLogsDecoder(Said().diag, follow=True)
    decoder.connected()
    assert feed(decoder, [add(0, "Hel")]) == []  # the newest entry may still change
    assert revs(list(decoder.quiet())) == [(0, 0, "Hel")]
    assert feed(decoder, [replace(0, "Hello, world")]) == []
    assert revs(list(decoder.quiet())) == [(0, 1, "Hello, world")]
    assert revs(feed(decoder, [add(1, "next"), FINISHED])) == [(1, 0, "next")]
    # A reconnect: the server resends every version from the start; all skipped.
    decoder.done = False
    decoder.connected()
    resent = feed(decoder, [add(0, "Hel"), replace(0, "Hello, world"), add(1, "next")])
    assert resent + list(decoder.quiet()) + feed(decoder, [FINISHED]) == []


def test_versions_replaced_before_printing_are_never_printed() -> None:
    """A finished agent's history replays every version at once: one line per entry."""
    decoder = ForgeLogsDecoder(Said().diag, follow=False)
    history = [add(0, "a"), replace(0, "ab"), replace(0, "abc"), add(1, "x"), FINISHED]
    assert revs(feed(decoder, history)) == [(0, 0, "abc"), (1, 0, "x")]


def test_an_entry_changed_while_disconnected_is_a_new_revision() -> None:
    decoder = ForgeLogsDecoder(Said().diag, follow=True)
    decoder.connected()
    assert revs(feed(decoder, [add(0, "a"), add(1, "b")]) + list(decoder.quiet())) == [
        (0, 0, "a"),
        (1, 0, "b"),
    ]
    decoder.connected()
    again = feed(decoder, [add(0, "a"), add(1, "b"), replace(1, "b2"), add(2, "c")])
    assert revs(again + list(decoder.quiet())) == [(1, 1, "b2"), (2, 0, "c")]


@pytest.mark.parametrize("path", ["hot", "general"])
def test_a_version_returning_to_an_earlier_one_is_printed(path: str) -> None:
    """A tool call approved goes back to ``created``: A, B, then A again is a new
    version, live and across a reconnect that resends all three."""
    decoder = ForgeLogsDecoder(Said().diag, follow=True)
    if path == "general":
        general_path_only(decoder)
    decoder.connected()
    assert revs(feed(decoder, [add(0, "created")]) + list(decoder.quiet())) == [(0, 0, "created")]
    assert revs(feed(decoder, [replace(0, "pending")]) + list(decoder.quiet())) == [
        (0, 1, "pending")
    ]
    assert revs(feed(decoder, [replace(0, "created")]) + list(decoder.quiet())) == [
        (0, 2, "created")
    ]
    decoder.connected()  # the history resends A, B, A: nothing new
    resent = [add(0, "created"), replace(0, "pending"), replace(0, "created")]
    assert feed(decoder, resent) + list(decoder.quiet()) == []
    # Changed back while disconnected: the fourth version is new, though seen before.
    decoder.connected()
    assert revs(feed(decoder, [*resent, replace(0, "pending")]) + list(decoder.quiet())) == [
        (0, 3, "pending")
    ]


def test_a_version_back_to_the_printed_one_before_release_is_not_printed_again() -> None:
    decoder = ForgeLogsDecoder(Said().diag, follow=True)
    decoder.connected()
    assert revs(feed(decoder, [add(0, "a")]) + list(decoder.quiet())) == [(0, 0, "a")]
    assert feed(decoder, [replace(0, "b"), replace(0, "a")]) + list(decoder.quiet()) == []
    assert revs(feed(decoder, [replace(0, "c")]) + list(decoder.quiet())) == [(0, 1, "c")]


def test_an_interleaved_resend_is_skipped_by_its_versions() -> None:
    """A tool call's result replaces it after later entries: its resent first
    version is not printed again when the next entry releases it."""
    decoder = ForgeLogsDecoder(Said().diag, follow=True)
    decoder.connected()
    history = [add(0, "tool created"), add(1, "text"), add(2, "more"), replace(0, "tool done")]
    assert revs(feed(decoder, history) + list(decoder.quiet())) == [
        (0, 0, "tool created"),
        (1, 0, "text"),
        (2, 0, "more"),
        (0, 1, "tool done"),
    ]
    decoder.connected()
    assert feed(decoder, history) + list(decoder.quiet()) == []


def test_a_resend_with_fewer_versions_ends_as_the_server_has_it() -> None:
    """A finished process's log read again can have fewer versions of an entry:
    what that history ends with is printed, once the history is over."""
    decoder = ForgeLogsDecoder(Said().diag, follow=True)
    decoder.connected()
    live = [add(0, "a"), replace(0, "ab"), replace(0, "abc"), add(1, "x")]
    assert revs(feed(decoder, live) + list(decoder.quiet())) == [(0, 0, "abc"), (1, 0, "x")]
    decoder.connected()
    assert feed(decoder, [add(0, "a"), replace(0, "abd"), add(1, "x")]) == []
    settled = [*decoder.history_over(), *decoder.quiet()]
    assert revs([e for e in settled if e is not BACKLOG_END]) == [(0, 1, "abd")]
    decoder.connected()  # the same short history again: nothing new
    assert feed(decoder, [add(0, "a"), replace(0, "abd"), add(1, "x")]) == []
    assert [*decoder.history_over(), *decoder.quiet()] == []


@pytest.mark.parametrize("path", ["hot", "general"])
def test_what_is_kept_per_entry_does_not_grow_with_its_versions(path: str) -> None:
    """An entry streamed in 500 versions, live and then resent, with a tool call
    flipping between two states: two numbers per entry, nothing per version."""
    decoder = ForgeLogsDecoder(Said().diag, follow=True)
    if path == "general":
        general_path_only(decoder)
    decoder.connected()
    versions = [add(0, "v0"), *(replace(0, f"v{i}") for i in range(1, 500))]
    flips = [add(1, "created"), *(replace(1, ("pending", "created")[i % 2]) for i in range(100))]
    history = [*versions, *flips, add(2, "x")]
    assert revs(feed(decoder, history) + list(decoder.quiet())) == [
        (0, 0, "v499"),
        (1, 0, "created"),
        (2, 0, "x"),
    ]
    decoder.connected()
    assert feed(decoder, history) + list(decoder.quiet()) == []
    assert (list(decoder.versions), len(decoder.marks)) == ([500, 101, 1], 3)
    assert decoder.revisions == {} and decoder.owed == {}


def test_revision_policy_is_documented() -> None:
    doc = ForgeLogsDecoder.__doc__ or ""
    assert "metadata.revision" in doc and "(0 first)" in doc and "skipped" in doc
    readme = " ".join(README.read_text().split())
    assert "`metadata.revision` (0 first)" in readme
    assert "identical resend is skipped" in readme


def general_path_only(decoder: Any) -> Any:
    """``decoder`` with its hot paths switched off: every frame takes the general path."""
    decoder.next_added = lambda value: None
    decoder.held_replaced = lambda value: None
    return decoder


#: entry_type values near the server's (tests/test_agent_schema.py has every variant)
ENTRY_TYPES: list[Any] = [
    {"type": "assistant_message"},
    {"type": "assistant_message"},
    {"type": "thinking"},
    {"type": "assistant_message", "new_field": 1},
    {"type": "tool_use", "tool_name": "Bash", "status": {"status": "success"}},
    {
        "type": "tool_use",
        "tool_name": "Bash",
        "action_type": {"action": "command_run", "command": "`ls`", "result": None},
        "status": {"status": "created"},
    },
    {
        "type": "tool_use",
        "tool_name": "bash",
        "action_type": {
            "action": "command_run",
            "command": "ls",
            "result": {"exit_status": {"type": "exit_code", "code": 1}, "output": "x"},
        },
        "status": {"status": "failed"},
    },
    {
        "type": "tool_use",
        "tool_name": "edit",
        "action_type": {"action": "file_edit", "path": "a", "changes": [{"action": "delete"}]},
        "status": {"status": "pending_approval", "approval_id": "a1", "timeout_at": "t"},
    },
    {"type": "error_message", "error_type": {"type": "other"}},
    {"type": "user_feedback", "denied_tool": "Edit"},
    {"type": "mystery", "x_y": [1]},
    {"type": 7},
    "not an object",
]


def normalized_value(rng: random.Random) -> Any:
    content: dict[str, Any] = {
        "timestamp": rng.choice([None, "2026-11-26T08:07:02.069Z", 5]),
        "entry_type": rng.choice(ENTRY_TYPES),
        "content": rng.choice(["hello", "hello", "world", "", None, 3]),
        "metadata": rng.choice([None, None, {"b": 1, "a": [2]}, deep(300)]),
    }
    for key in ("timestamp", "metadata", "content", "entry_type"):
        if rng.random() < 0.05:
            del content[key]
    if rng.random() < 0.05:
        content["future_key"] = "kept"
    value: dict[str, Any] = {
        "type": rng.choice(["NORMALIZED_ENTRY"] * 8 + ["STDOUT"]),
        "content": content,
    }
    if rng.random() < 0.03:
        value["extra"] = True
    return value


def raw_value(rng: random.Random) -> Any:
    value = {
        "type": rng.choice(["STDOUT", "STDOUT", "STDERR", "stdout", "NORMALIZED_ENTRY", 1]),
        "content": rng.choice(["out\n", "out\n", "no newline", "", "é\n", None, 3]),
    }
    if rng.random() < 0.05:
        del value[rng.choice(["type", "content"])]
    return value


def mutated_frame(rng: random.Random, index: int, value: Any) -> bytes:
    """A frame for ``index``: mostly what the server sends, often something near it."""
    value = rng.choice([value] * 20 + [[value], "text", None])
    op: Any = {"op": rng.choice(["add"] * 5 + ["replace", "remove", "move"]), "path": ""}
    op["path"] = rng.choice(
        [f"/entries/{index}"] * 20
        + [f"/entries/{index}/content", "/x", "/entries/²", f"/entries/{index + 2_000_000}"]
    )
    op["value"] = value
    ops: Any = rng.choice([[op]] * 20 + [[op, op], [], op])
    frame: Any = rng.choice([{"JsonPatch": ops}] * 30 + [ops, {"finished": True}, [1], "x"])
    data = json.dumps(frame, separators=(",", ":")).encode()
    return data if rng.random() > 0.02 else data[:-1]  # sometimes not even JSON


def dicts(events: Any) -> list[Any]:
    return [(e.raw, e.stream) if isinstance(e, RawChunk) else e.to_dict() for e in events]


@pytest.mark.parametrize(
    ("make", "value"),
    [
        (lambda diag: ForgeLogsDecoder(diag, follow=True), normalized_value),
        (ForgeRawDecoder, raw_value),
        (ForgeRawAsLogsDecoder, raw_value),
    ],
    ids=["normalized", "raw", "raw-as-logs"],
)
def test_the_hot_path_prints_what_the_general_path_prints(make: Any, value: Any) -> None:
    """Random streams near the server's shape, with reconnects resending the history:
    the decoder's output and reports equal those of the general path alone."""
    rng = random.Random(20261126)
    for _ in range(300):
        said_fast, said_general = Said(), Said()
        fast, general = make(said_fast.diag), general_path_only(make(said_general.diag))
        history: list[bytes] = []
        out_fast: list[Any] = []
        out_general: list[Any] = []
        for _ in range(rng.randrange(1, 40)):
            roll = rng.random()
            if roll < 0.05:  # a reconnect: the server resends its history from the start
                for decoder in (fast, general):
                    decoder.connected()
                frames = history[: rng.randrange(len(history) + 1)]
            elif roll < 0.1:
                out_fast += dicts(fast.quiet())
                out_general += dicts(general.quiet())
                continue
            else:
                index = max(0, fast.emitted + rng.choice([0, 0, 0, 0, -1, 1, 2]))
                frames = [mutated_frame(rng, index, value(rng))]
                history += frames
            for frame in frames:
                out_fast += dicts(fast.feed(frame))
                out_general += dicts(general.feed(frame))
                assert (fast.emitted, fast.done) == (general.emitted, general.done)
        out_fast += dicts(fast.finish())
        out_general += dicts(general.finish())
        assert out_fast == out_general
        assert said_fast.lines == said_general.lines


def test_the_hot_path_is_taken_for_the_servers_frames() -> None:
    """The equality above would hold trivially if every frame took the general path."""
    taken: list[bytes] = []

    class Watched(ForgeLogsDecoder):
        def feed_entry(self, obj: Any) -> list[Event]:
            taken.append(orjson.dumps(obj))
            return list(super().feed_entry(obj))

    decoder = Watched(Said().diag, follow=False)
    events = feed(decoder, [add(0, "a"), add(1, "b"), replace(1, "bc"), add(2, "c"), FINISHED])
    assert revs(events) == [(0, 0, "a"), (1, 0, "bc"), (2, 0, "c")]
    assert taken == [FINISHED]  # the replace of the held entry too: an agent's usual frame
    taken.clear()
    events = feed(decoder, [replace(0, "a2"), replace(2, "cd"), replace(2, "cde")])
    assert taken == [replace(0, "a2"), replace(2, "cd")]  # not the held one: general
    assert revs(events + list(decoder.quiet())) == [(0, 1, "a2"), (2, 1, "cde")]

    class WatchedRaw(ForgeRawDecoder):
        def feed_entry(self, obj: Any) -> list[Event]:
            taken.append(orjson.dumps(obj))
            return list(super().feed_entry(obj))

    taken.clear()
    out = patch({"op": "add", "path": "/entries/0", "value": {"type": "STDOUT", "content": "o"}})
    err = patch({"op": "add", "path": "/entries/1", "value": {"type": "STDERR", "content": "e"}})
    raw = feed(WatchedRaw(Said().diag), [out, err, out, FINISHED])
    assert [(e.raw, e.stream) for e in raw if isinstance(e, RawChunk)] == [
        (b"o", "stdout"),
        (b"e", "stderr"),
    ]
    assert taken == [out, FINISHED]


def test_not_a_normalized_entry_is_reported_once() -> None:
    said = Said()
    decoder = ForgeLogsDecoder(said.diag, follow=False)
    bad = patch({"op": "add", "path": "/entries/0", "value": {"type": "STDOUT", "content": "x"}})
    assert feed(decoder, [bad, FINISHED]) == []
    assert len(said.warnings()) == 1 and "NORMALIZED_ENTRY" in said.warnings()[0]
    decoder.done = False
    decoder.connected()  # the resent history repeats it: reported once is enough
    assert feed(decoder, [bad, add(1, "ok"), FINISHED]) == [LogEntry(normalize(1, "ok"))]
    assert len(said.warnings()) == 1


def normalize(index: int, text: str) -> dict[str, Any]:
    return {
        "level": "info",
        "message": text,
        "timestamp": None,
        "source": "assistant",
        "metadata": {"entryType": "assistant_message", "index": index, "revision": 0},
    }


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "path",
    [f"/entries/{1 + 10**12}", f"/entries/{2 + 10**6}", "/entries/²", "/entries/" + "9" * 4300],
    ids=["far", "just-too-far", "superscript-digit", "4300-digits"],
)
@pytest.mark.parametrize("make", [ForgeLogsDecoder, ForgeRawDecoder], ids=["logs", "raw"])
def test_an_index_no_server_sends_is_reported_and_costs_nothing(make: Any, path: str) -> None:
    said = Said()
    decoder = make(said.diag)
    for value in (entry("far"), {"type": "STDOUT", "content": "far"}):
        frame = patch({"op": "add", "path": path, "value": value})
        assert feed(decoder, [frame, frame]) == []
    assert sum(said.diag.counts.values()) == 4
    assert all(len(line) < 300 for line in said.warnings())
    assert decoder.emitted == 0 and decoder.next_path == "/entries/0"
    assert len(getattr(decoder, "marks", ())) == 0


def test_entry_details_nested_past_orjsons_limit_still_print_once() -> None:
    """orjson reads 1024 levels but writes 254: the version mark and the JSON line
    fall back to the standard library."""
    value = entry("deep")
    value["content"]["metadata"] = deep(300)
    frame = patch({"op": "add", "path": "/entries/0", "value": value})
    decoder = ForgeLogsDecoder(Said().diag, follow=False)
    (log,) = feed(decoder, [frame, FINISHED])
    decoder.done = False
    decoder.connected()
    assert feed(decoder, [frame, FINISHED]) == []
    out = io.BytesIO()
    renderer = JsonLinesRenderer(out)
    renderer.render(log)
    renderer.flush()
    assert json.loads(out.getvalue()) == log.to_dict()
    assert out.getvalue().endswith(b"}}}}\n") and out.getvalue().count(b"\n") == 1


# -- monitor ---------------------------------------------------------------------------


def types(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.type, e.get("runReason")) for e in events if isinstance(e, ProcessEvent)]


def test_monitor_attempt_stream_sample() -> None:
    name = "ws_execution_processes_stream.json"
    attempt = sample(name)["meta"]["path"].split("task_attempt_id=")[1]
    said = Said()
    decoder = ForgeMonitorDecoder(said.diag, history=True, sse=False, attempt=attempt)
    decoder.connected()
    events = feed(decoder, frames(name), marks=True)
    # The snapshot (the first frame) is the history: marked where it ends.
    assert events.count(BACKLOG_END) == 1
    events = [e for e in events if e is not BACKLOG_END]
    # The agent is listed (running) before the setup record says completed.
    assert types(events) == [
        ("process_started", "setupscript"),
        ("process_started", "codingagent"),
        ("process_completed", "setupscript"),
        ("process_failed", "codingagent"),
    ]
    completed = events[2]
    assert isinstance(completed, ProcessEvent)
    assert completed.exit_code == 0 and isinstance(completed.get("duration"), int)
    assert completed.get("duration") >= 0
    derived = sample("derived_execution_processes_state.json")
    assert {pid: state[:2] for pid, state in decoder.known.items()} == {
        pid: (rec["status"], rec["exit_code"]) for pid, rec in derived.items()
    }
    # A reconnect's snapshot of the same records says nothing new.
    final = {rec["id"]: rec for rec in sample("rest_list_processes_final.json")["data"]}
    decoder.connected()
    snapshot = patch({"op": "replace", "path": "/execution_processes", "value": final})
    assert feed(decoder, [snapshot]) == []
    assert said.warnings() == []


def test_monitor_snapshot_is_silent_about_ended_processes_without_history() -> None:
    name = "ws_execution_processes_stream_devserver.json"
    decoder = ForgeMonitorDecoder(Said().diag, history=False, sse=False, attempt=None)
    decoder.connected()
    events = feed(decoder, frames(name))
    # setup and agent had ended before: silent; the dev server started and was killed live
    assert types(events) == [("process_started", "devserver"), ("process_stopped", "devserver")]
    stopped = events[-1]
    assert stopped.to_dict()["reason"] == "killed" and stopped.get("stoppedAt")
    started = events[0]
    assert {"processId", "taskAttemptId", "executor", "startedAt"} <= set(started.to_dict())


@pytest.mark.parametrize(
    "name",
    ["ws_execution_processes_ping_probe.json", "ws_execution_processes_unknown_attempt.json"],
)
def test_monitor_snapshot_only_samples(name: str) -> None:
    decoder = ForgeMonitorDecoder(Said().diag, history=True, sse=False, attempt=None)
    decoder.connected()
    events = feed(decoder, frames(name))
    if "unknown" in name:
        assert events == []
    else:
        assert {e.type for e in events if isinstance(e, ProcessEvent)} <= {
            "process_started",
            "process_completed",
            "process_failed",
        }
        assert events


def sse_frames(name: str) -> list[str]:
    return [
        line.removeprefix("data: ")
        for line in (SAMPLES / name).read_text().splitlines()
        if line.startswith("data: ")
    ]


def test_sse_replay_is_a_snapshot_and_tasks_are_ignored() -> None:
    replay = sse_frames("sse_events_after.txt")
    assert sse_frames("sse_events_initial.txt") == []  # a fresh server replays nothing
    assert "content-type: text/event-stream" in (SAMPLES / "sse_events_headers.txt").read_text()
    said = Said()
    quiet = ForgeMonitorDecoder(said.diag, history=False, sse=True, attempt=None)
    quiet.connected()
    assert feed(quiet, replay) + list(quiet.history_over()) == []  # all ended: silent
    assert said.warnings() == []  # /tasks ops are not processes, not errors
    full = ForgeMonitorDecoder(Said().diag, history=True, sse=True, attempt=None)
    full.connected()
    events = feed(full, replay) + list(full.history_over())
    assert types(events) == [
        ("process_started", "setupscript"),
        ("process_completed", "setupscript"),
        ("process_started", "codingagent"),
        ("process_failed", "codingagent"),
        ("process_started", "devserver"),
        ("process_stopped", "devserver"),
    ]


def test_sse_live_events_after_the_snapshot() -> None:
    replay = sse_frames("sse_events_after.txt")
    decoder = ForgeMonitorDecoder(Said().diag, history=False, sse=True, attempt=None)
    decoder.connected()
    assert list(decoder.history_over()) == []  # an empty replay: the driver ends it
    events = feed(decoder, replay)
    assert [t for t, _ in types(events)].count("process_started") == 3
    assert types(events)[-1] == ("process_stopped", "devserver")


def test_sse_replay_is_history_until_the_driver_says_it_ended() -> None:
    """Records of the replay wait for the end of the history: a process that already
    ended is silent; what comes after the end is live, however short its life."""
    replay = sse_frames("sse_events_after.txt")
    decoder = ForgeMonitorDecoder(Said().diag, history=False, sse=True, attempt=None)
    decoder.connected()
    assert decoder.history_rule == "events" and not decoder.knows_history
    assert feed(decoder, replay) == []  # all of it ended before the stream opened
    assert list(decoder.history_over()) == []
    fresh = ForgeMonitorDecoder(Said().diag, history=False, sse=True, attempt=None)
    fresh.connected()
    assert list(fresh.history_over()) == []  # an empty replay
    assert ("process_failed", "codingagent") in types(feed(fresh, replay))


@pytest.mark.parametrize("name", ["ws_tasks_stream.json", "ws_drafts_stream.json"])
def test_other_streams_fed_to_the_monitor_are_reported_not_applied(name: str) -> None:
    said = Said()
    decoder = ForgeMonitorDecoder(said.diag, history=True, sse=False, attempt=None)
    decoder.connected()
    assert feed(decoder, frames(name)) == []
    assert said.warnings() and "unknown path" in said.warnings()[0]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("rest_get_process_setupscript.json", "process_completed"),
        ("rest_get_process_codingagent.json", "process_failed"),
    ],
)
def test_process_events_of_rest_records(name: str, kind: str) -> None:
    record = sample(name)["body"]["data"]
    started, ended = process_events(record, True, True)
    assert started.to_dict()["type"] == "process_started"
    assert started.to_dict()["startedAt"] == record["started_at"]
    assert ended.to_dict()["type"] == kind
    assert ended.to_dict()["exitCode"] == record["exit_code"]


def test_rest_process_lists_feed_the_monitor() -> None:
    early = sample("rest_list_processes_early.json")["data"]
    final = sample("rest_list_processes_final.json")["data"]
    decoder = ForgeMonitorDecoder(Said().diag, history=False, sse=False, attempt=None)
    decoder.connected()
    snap = patch(
        {"op": "replace", "path": "/execution_processes", "value": {r["id"]: r for r in early}}
    )
    first = feed(decoder, [snap])
    assert all(e.type == "process_started" for e in first if isinstance(e, ProcessEvent))
    ops = [{"op": "replace", "path": f"/execution_processes/{r['id']}", "value": r} for r in final]
    later = feed(decoder, [patch(*ops)])
    assert {e.type for e in later if isinstance(e, ProcessEvent)} >= {"process_failed"}


def test_rest_envelopes_are_what_rest_get_data_unwraps() -> None:
    for name in (
        "rest_create_attempt.json",
        "rest_create_project.json",
        "rest_create_task.json",
        "rest_start_dev_server.json",
        "rest_stop_process.json",
    ):
        body = sample(name)["body"]
        envelope = json.loads(body) if isinstance(body, str) else body
        assert envelope["success"] is True and "data" in envelope, name
    for name in ("rest_get_attempt.json", "rest_list_attempts.json"):
        assert sample(name)["success"] is True
    health = sample("rest_basic.json")["/api/health"]
    assert health["ctype"] == "application/json" and "success" in json.loads(health["body"])
    assert sample("config.seed.json")["analytics_enabled"] is False


# -- handshake failures ----------------------------------------------------------------


def _rejected(name: str) -> tuple[int, str, bytes]:
    error = sample(name)["meta"]["error"]
    status = int(error.split("status_code=")[1].split(",")[0])
    ctype = "text/html" if "text/html" in error else ("application/json" if "json" in error else "")
    body = b"" if "body=bytearray(b'')" in error else b"{}"
    return status, ctype, body


def test_handshake_failures_map_to_exit_codes() -> None:
    html = status_error(
        "ws://x/ws/execution-processes", *_rejected("doc_ws_execution_processes.json"), "stream"
    )
    assert isinstance(html, ProtocolError) and "HTML page (HTTP 200)" in str(html)
    for name in (
        "ws_normalized_logs_setup.json",
        "ws_normalized_logs_setupscript_historic.json",
        "ws_raw_logs_unknown_id.json",
    ):
        assert isinstance(status_error("ws://x", *_rejected(name), "process p"), NotFoundError)


# -- diffs -----------------------------------------------------------------------------


def test_diff_stream_sample() -> None:
    name = "ws_diff_stream.json"
    data = frames(name)
    decoder = ForgeDiffDecoder(Said().diag, "att", follow=True)
    decoder.connected()
    assert feed(decoder, data[:2]) == []
    first, end = decoder.quiet()
    assert end is BACKLOG_END  # the first burst is the history
    assert isinstance(first, DiffUpdate)
    assert (first.files_changed, first.insertions, first.deletions) == (2, 4, 0)
    assert "+changed by peer test" in first.diff and "+++ b/new_file.txt" in first.diff
    assert feed(decoder, data[:2]) == [] and list(decoder.quiet()) == []  # identical resend
    feed(decoder, data[2:])  # remove /entries/new_file.txt: reverted
    (second,) = decoder.quiet()
    assert isinstance(second, DiffUpdate)
    assert second.files_changed == 1 and "new_file.txt" not in second.diff


def test_diff_file_gone_while_disconnected_is_dropped_once_not_resent_in_time() -> None:
    data = frames("ws_diff_stream.json")
    decoder = ForgeDiffDecoder(Said().diag, "att", follow=True)
    decoder.connected()
    feed(decoder, data[:2])
    decoder.quiet()
    decoder.connected()
    feed(decoder, data[:1])  # the new server-side state has README.md only
    # Not resent *yet* is not gone: the other file stays until the grace is over.
    assert decoder.quiet() == []
    assert decoder.wake_at == decoder.resend_until
    decoder.resend_until = 0.0  # the grace is over
    (update,) = decoder.quiet()
    assert isinstance(update, DiffUpdate) and update.files_changed == 1


def test_diff_stats_only_sample_counts() -> None:
    decoder = ForgeDiffDecoder(Said().diag, "att", follow=False)
    decoder.connected()
    feed(decoder, frames("ws_diff_stream_stats_only.json")[:2])
    update, _ = decoder.settled()
    assert isinstance(update, DiffUpdate)
    # The server gives the added file 1 deletion; an added file has none.
    assert (update.files_changed, update.insertions, update.deletions) == (2, 4, 0)


def test_diff_paths_unescape_json_pointer() -> None:
    def op(path: str, new: str) -> dict[str, Any]:
        content = {
            "change": "added",
            "oldPath": None,
            "newPath": new,
            "oldContent": None,
            "newContent": "x\n",
            "contentOmitted": False,
            "additions": None,
            "deletions": None,
        }
        return {"op": "add", "path": path, "value": {"type": "DIFF", "content": content}}

    decoder = ForgeDiffDecoder(Said().diag, "att", follow=False)
    feed(
        decoder,
        [
            patch(
                op("/entries/sub~1dir~1n.txt", "sub/dir/n.txt"),
                op("/entries/t~0~01.txt", "t~~1.txt"),
            )
        ],
    )
    update, _ = decoder.settled()
    assert isinstance(update, DiffUpdate)
    assert "diff --git a/sub/dir/n.txt b/sub/dir/n.txt" in update.diff
    assert "diff --git a/t~~1.txt b/t~~1.txt" in update.diff
    assert decoder.state.paths() == ["sub/dir/n.txt", "t~~1.txt"] or sorted(
        decoder.state.paths()
    ) == [
        "sub/dir/n.txt",
        "t~~1.txt",
    ]


# -- frames ------------------------------------------------------------------------------


def test_parse_and_unescape() -> None:
    assert parse(FINISHED).finished
    assert parse(b"[]").ops == []
    with pytest.raises(BadFrame):
        parse(b'{"JsonPatch":')
    with pytest.raises(BadFrame):
        parse(b'{"other":1}')
    assert unescape("a~1b~0c") == "a/b~c"
    assert unescape("~01") == "~1"  # RFC 6901: ~1 first would give "/"
