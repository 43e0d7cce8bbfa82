"""The fused path: JSON lines and raw bytes written straight from the frames.

With no filter, ``logs --json`` and ``logs --raw`` on the documented API take
each network read's frames in one call, and the decoder writes their output
itself (:class:`~forgectl.events.Encoded` lines, one raw chunk per read). It
must print exactly what the event path prints, report exactly what it reports,
and skip a resent history as it does: the same randomized streams (valid
entries in any JSON spelling, junk, pongs, frames over the large-frame size,
reconnects resending the history, a history that differs) go through the event
path one frame at a time and through the batch path, fused and not, split into
reads at random. Then the same against the reference server, over a reconnect.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import Callable, Iterator

import orjson
import pytest
from reference_server import Fault, Process, Scenario, ThreadedReferenceServer

from forgectl import ForgeClient
from forgectl.diagnostics import Diagnostics
from forgectl.dialects.base import Decoder, StreamRequest
from forgectl.dialects.documented import (
    LARGE_FRAME,
    DocumentedLogsDecoder,
    DocumentedRawDecoder,
    _load_large,
)
from forgectl.events import Encoded, Event, RawChunk
from forgectl.output.base import Renderer
from forgectl.output.jsonl import JsonLinesRenderer
from forgectl.output.raw import RawRenderer
from forgectl.stream import StreamOptions

pytestmark = pytest.mark.timeout(60)

BIG = LARGE_FRAME + 4096


def _text(rng: random.Random, size: int) -> str:
    alphabet = 'abc xyz\n\t"\\/é€😀\u2028'
    return "".join(rng.choice(alphabet) for _ in range(size))


def _entry_frame(rng: random.Random, i: int, size: int) -> bytes:
    """A valid log message, spelt one of several ways (the output is orjson's either way)."""
    obj: dict[str, object] = {
        "level": rng.choice(["info", "warn"]),
        "message": f"{i} {_text(rng, size)}",
    }
    if rng.random() < 0.3:
        obj["metadata"] = {"n": rng.randint(-(1 << 62), 1 << 62), "f": rng.random() * 1e300}
    spelling = rng.randrange(4)
    if spelling == 0:
        return orjson.dumps(obj)
    if spelling == 1:
        return json.dumps(obj).encode()  # \\u escapes, spaces after separators
    if spelling == 2:
        return json.dumps(obj, ensure_ascii=False, indent=1).encode()
    return b" " + json.dumps({"level": obj["level"]}).encode() + b"\n"


JUNK = [
    b"not json",
    b"[1, 2]",
    b'{"other": 1}',
    b'"a string"',
    b"\xff\xfe{",
    b'{"type":"pong"}',
    b'{"level": NaN}',
    b'{"level": "info", "message": "x", "n": 1e400}',
    b"",
]


def _large_frames(rng: random.Random, i: int) -> list[bytes]:
    """Frames over LARGE_FRAME: where the standard library and orjson read alike,
    and where they do not (orjson's reading must win)."""
    body = "x" * BIG
    return [
        orjson.dumps({"level": "info", "message": f"{i} {body}"}),
        json.dumps({"level": "info", "message": f"{i} é\n{body}"}).encode(),  # escapes
        json.dumps({"message": f"{i} 😀 {body}"}).encode(),  # a surrogate pair escape
        b'{"level": "info", "message": "' + body.encode() + b'", "n": 123456789012345678901}',
        b'{"level": "info", "message": "' + body.encode() + b'", "n": NaN}',
        b'{"level": "info", "message": "' + body.encode() + b'", "n": 1e999}',
        b'{"level": "info", "message": "' + body.encode() + b'\xff"}',  # not UTF-8
        b"[" + b"1," * (BIG // 2) + b"1]",
        b'{"message": "' + body.encode() + b'", "d": ' + b"[" * 1100 + b"]" * 1100 + b"}",
    ]


def _log_stream(rng: random.Random, count: int, large: bool) -> list[bytes]:
    frames: list[bytes] = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.12:
            frames.append(rng.choice(JUNK))
        elif large and roll < 0.17:
            frames.append(rng.choice(_large_frames(rng, i)))
        else:
            frames.append(_entry_frame(rng, i, rng.randrange(0, 200)))
    return frames


def _raw_stream(rng: random.Random, count: int, large: bool) -> list[bytes]:
    frames: list[bytes] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.1:
            frames.append(
                rng.choice(
                    [b'{"type":"pong"}', b'{ "type" : "pong" }', b"{short}", b"", b"{", b"\n"]
                )
            )
        elif large and roll < 0.13:
            frames.append(b"y" * BIG + rng.choice([b"\n", b""]))
        else:
            line = _text(rng, rng.randrange(0, 100)).encode()
            frames.append(line + rng.choice([b"\n", b"", b"\r\n"]))
    return frames


def _connections(
    rng: random.Random, make: Callable[[random.Random, int, bool], list[bytes]], large: bool
) -> list[list[bytes]]:
    """Three connections: a history, that history resent with more, then a history
    that differs part-way (the resend filter's three cases)."""
    first = make(rng, 60, large)
    second = [*first, *make(rng, 30, large)]
    cut = rng.randrange(1, len(second))
    third = [*second[:cut], b'{"level":"info","message":"changed"}', *second[cut:]]
    return [first, second, third]


def _reads(rng: random.Random, frames: list[bytes]) -> Iterator[list[bytes]]:
    """``frames`` cut into network reads at random (each a fresh list)."""
    pos = 0
    while pos < len(frames):
        size = rng.choice([1, 2, 5, 40])
        yield list(frames[pos : pos + size])
        pos += size


def _run(
    decoder: Decoder,
    connections: list[list[bytes]],
    renderer: Renderer,
    mode: str,
    rng: random.Random,
) -> list[type[Event]]:
    """Feed ``connections`` to ``decoder`` one frame at a time (``mode == "frames"``)
    or a read at a time; render every event; the event types seen."""
    kinds: list[type[Event]] = []
    for frames in connections:
        decoder.connected()
        if mode == "frames":
            events: list[Event] = []
            for frame in frames:
                events.extend(decoder.feed(frame))
        else:
            events = []
            for read in _reads(rng, frames):
                decoder.feed_batch(read, events)
        for event in events:
            kinds.append(type(event))
            renderer.render(event)
    renderer.flush()
    return kinds


def _decode(
    make_decoder: Callable[[Diagnostics], Decoder],
    make_renderer: Callable[[io.BytesIO], Renderer],
    connections: list[list[bytes]],
    mode: str,
    seed: int,
) -> tuple[bytes, list[str], list[type[Event]]]:
    said: list[str] = []
    decoder = make_decoder(Diagnostics(lambda level, line: said.append(f"{level}: {line}")))
    if mode == "fused":
        assert decoder.fuse(make_renderer(io.BytesIO()).fuses or "")
    out = io.BytesIO()
    kinds = _run(decoder, connections, make_renderer(out), mode, random.Random(seed))
    return out.getvalue(), said, kinds


def _logs_decoder(diag: Diagnostics) -> Decoder:
    return DocumentedLogsDecoder(StreamRequest("logs", "p"), diag)


@pytest.mark.parametrize("seed", range(12))
def test_fused_json_lines_are_the_event_paths_lines(seed: int) -> None:
    rng = random.Random(seed)
    connections = _connections(rng, _log_stream, large=seed % 3 == 0)
    reference = _decode(_logs_decoder, JsonLinesRenderer, connections, "frames", seed)
    for mode in ("batches", "fused"):
        out, said, kinds = _decode(_logs_decoder, JsonLinesRenderer, connections, mode, seed)
        assert out == reference[0], mode
        assert said == reference[1], mode
    assert Encoded in kinds  # the fused path was taken
    assert reference[0] and any("invalid JSON frame" in line for line in reference[1])


def _raw_renderer(out: io.BytesIO) -> Renderer:
    return RawRenderer(out)


@pytest.mark.parametrize("seed", range(12))
def test_fused_raw_output_is_the_event_paths_output(seed: int) -> None:
    rng = random.Random(seed)
    connections = _connections(rng, _raw_stream, large=seed % 3 == 0)
    reference = _decode(DocumentedRawDecoder, _raw_renderer, connections, "frames", seed)
    for mode in ("batches", "fused"):
        out, said, _ = _decode(DocumentedRawDecoder, _raw_renderer, connections, mode, seed)
        assert out == reference[0], mode
        assert said == reference[1], mode
    assert reference[0]


def test_a_decoder_fuses_only_the_form_its_events_print_in() -> None:
    diag = Diagnostics(lambda level, line: None)
    assert not _logs_decoder(diag).fuse("raw")  # a raw view of entries prints messages
    assert not DocumentedRawDecoder(diag).fuse("json")  # {"stream", "content"} per chunk
    assert JsonLinesRenderer.fuses == "json" and RawRenderer.fuses == "raw"


LARGE_CASES = [
    '{"a": 1}',
    '{"a": 9223372036854775807, "b": -9223372036854775808, "c": 18446744073709551615}',
    '{"a": 18446744073709551616}',
    '{"a": -9223372036854775809}',
    '{"a": 123456789012345678901234567890}',
    '{"a": 1e308, "b": 5e-324, "c": 1e-400, "d": -0.0, "e": 0.1, "f": 1E5}',
    '{"a": 1e309}',
    '{"a": -1e400}',
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": -Infinity}',
    '{"a": "\\ud800"}',
    '{"a": "\\uDC00 x"}',
    '{"a": "\\ud83d\\ude00"}',
    '{"a": "\\u00e9\\n\\t\\"\\\\\\/"}',
    '{"a": 1, "a": 2}',
    ' \t\r\n{"a": []} \n',
    '{"a": "x"} trailing',
    '\ufeff{"a": 1}',
    '{"a": "control \x01 char"}',
    '{"a": 01}',
    '[1, 2, {"b": null, "c": true, "d": false}]',
    "[" * 1100 + "]" * 1100,
    "[" * 200 + "]" * 200,
    "",
    "{",
    '"\u2028"',
]


@pytest.mark.parametrize("text", LARGE_CASES, ids=range(len(LARGE_CASES)))
def test_a_large_frame_is_read_as_orjson_reads_it(text: str) -> None:
    try:
        expected: object = orjson.loads(text)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            _load_large(text)
        return
    got = _load_large(text)
    assert got == expected
    assert orjson.dumps(got) == orjson.dumps(expected)  # ints stay ints, floats floats


# -- against the reference server ------------------------------------------------------


def _lines(count: int) -> list[dict[str, object]]:
    return [{"level": "info", "message": f"line {i} é", "source": "stdout"} for i in range(count)]


@pytest.fixture
def srv() -> Iterator[ThreadedReferenceServer]:
    process = Process(id="proc_many", logs=_lines(300), raw=[f"raw {i}" for i in range(300)])
    with ThreadedReferenceServer(scenario=Scenario(processes={process.id: process})) as server:
        yield server


async def _pump(srv: ThreadedReferenceServer, raw: bool, fused: str | None) -> list[Event]:
    got: list[Event] = []
    options = StreamOptions(backoff_initial=0.05)
    async with ForgeClient(server=srv.url, api="documented", options=options) as forge:
        if raw:
            await forge.processes.stream_logs("proc_many", "raw", follow=True).pump(
                got.append, fused=fused
            )
        else:
            await forge.processes.stream_logs("proc_many", follow=True).pump(
                got.append, fused=fused
            )
    return got


@pytest.mark.parametrize("raw", [False, True], ids=["json", "raw"])
def test_fused_output_over_a_reconnect_matches_the_server(
    srv: ThreadedReferenceServer, raw: bool
) -> None:
    """The link drops after 120 messages (with a pong before it, and for JSON a
    junk frame, which a raw stream would print); the server resends its history
    on the next connection: everything once, in order, fused or not."""
    inject: list[tuple[int, str | bytes]] = [(80, b'{"type":"pong"}')]
    if not raw:
        inject.append((40, b"junk"))
    outputs = []
    for fused in ("raw" if raw else "json", None):
        fault = Fault(drop_after=120, inject=list(inject), times=1)
        srv.faults.append(fault)
        outputs.append(asyncio.run(_pump(srv, raw, fused)))
        assert fault.applied == 1
    fused_events, plain = outputs
    if raw:
        fused_bytes = b"".join(e.raw for e in fused_events if isinstance(e, RawChunk))
        assert fused_bytes == b"".join(e.raw for e in plain if isinstance(e, RawChunk))
        assert fused_bytes == b"".join(f"raw {i}\n".encode() for i in range(300))
        assert len(fused_events) < len(plain)  # reads, not frames
    else:
        assert any(type(e) is Encoded for e in fused_events)  # a resent history goes through feed()
        out = io.BytesIO()
        renderer = JsonLinesRenderer(out)
        for event in fused_events:
            renderer.render(event)
        renderer.flush()
        lines = out.getvalue()
        assert lines == b"".join(orjson.dumps(e.data) + b"\n" for e in plain)
        assert [orjson.loads(line) for line in lines.splitlines()] == _lines(300)
