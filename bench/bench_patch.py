"""Applying the real server's JSON Patch log frames, in-process, per frame.

``python bench/bench_patch.py [--count N] [--runs R] [--lib DIR]`` builds the
frames bench/server.py sends on /normalized-logs/ws and times:

- parse only (``orjson.loads``): the floor every approach pays (no target);
- the bare apply (bench/bare_forge_client.py's ``Normalized``: parse, apply
  ``add``/``replace /entries/N``, hold the newest, build the documented object):
  the same job done bare, the reference (target: forgectl no slower);
- ``ForgeLogsDecoder.feed``: what forgectl does (the subject);
- parse + ``jsonpatch.apply_patch(doc, ops, in_place=True)`` on a growing
  ``{"entries": [...]}`` document: the same ops applied by the library, before
  any normalization (target: forgectl no slower);
- the same with ``in_place=False`` (the library's default: a deep copy of the
  document per frame) on the first ``--copy-frames`` frames only (1,000),
  since it is quadratic (shown for scale).

jsonpatch is not a dependency: bench/run.py installs it into its cache and
passes ``--lib``; without it the rows say it is not available.

Then the first three again over a coding agent's stream (bench/server.py's
``a-`` streams: each entry added, then replaced VERSIONS - 1 times with more of
its text), where most frames replace the entry forgectl holds.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bare_forge_client import Normalized  # noqa: E402
from benchlib import (  # noqa: E402
    Timed,
    compare,
    print_verdicts,
    save_verdicts,
    timed,
    timed_table,
)
from forgectl_internals import logs_decoder  # noqa: E402
from server import VERSIONS, forge_agent_payloads, forge_json_payload  # noqa: E402

SECTION = "JSON Patch apply (in-process)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=120)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--copy-frames", type=int, default=1000, help="frames for the quadratic jsonpatch row"
    )
    parser.add_argument("--lib", type=Path, help="a directory holding jsonpatch")
    parser.add_argument("--why-missing", help="what to say when jsonpatch cannot be imported")
    parser.add_argument("--verdicts", type=Path, help="append the verdicts here (JSON lines)")
    args = parser.parse_args()
    if args.lib is not None:
        sys.path.insert(0, str(args.lib))
    frames = [forge_json_payload(i, args.size) for i in range(args.count)]
    count, runs = len(frames), args.runs
    floor, reference, subject = decoders(frames, runs)
    rows = [floor, reference, subject]
    in_place = Timed("parse + jsonpatch apply_patch(in_place=True)", "jsonpatch in place")
    copies = min(count, args.copy_frames)
    copying = Timed(
        f"parse + jsonpatch apply_patch(in_place=False), {copies:,} frames", "jsonpatch copying"
    )
    try:
        jsonpatch: Any = importlib.import_module("jsonpatch")
    except ImportError:
        why = "not available: " + (
            args.why_missing
            or "jsonpatch is not installed (bench/run.py installs it into its cache)"
        )
        in_place.missing = copying.missing = why
    else:
        apply_patch = jsonpatch.apply_patch

        def library(in_place: bool, frames: list[bytes]) -> Any:
            def run() -> None:
                doc: dict[str, list[object]] = {"entries": []}
                loads = orjson.loads
                for f in frames:
                    doc = apply_patch(doc, loads(f)["JsonPatch"], in_place=in_place)

            return run

        version = jsonpatch.__version__
        name = in_place.name.replace("jsonpatch", f"jsonpatch {version}")
        in_place = timed(name, in_place.label, library(True, frames), runs, count)
        copying = timed(
            copying.name, copying.label, library(False, frames[:copies]), 1, copies, warmup=False
        )
    rows += [in_place, copying]
    timed_table(
        f"{count:,} JSON Patch log frames of the normalized-logs route, median of {runs}",
        rows,
        "us/frame",
        1e6,
    )
    verdicts = [
        compare(SECTION, subject, reference, "time", 1.0),
        compare(SECTION, subject, in_place, "time", 1.0),
        compare(SECTION, subject, floor, "time", None, why="the floor: parsing alone"),
        compare(SECTION, subject, copying, "time", None, why="for scale: a deep copy per frame"),
    ]
    print_verdicts(verdicts)

    # A coding agent's stream: each entry added, then replaced with more text.
    agent = list(forge_agent_payloads(max(1, args.count // VERSIONS), args.size))
    rows = list(decoders(agent, runs))
    timed_table(
        f"an agent's stream: {len(agent):,} frames, each entry in {VERSIONS} versions "
        f"(add, then replace), median of {runs}",
        rows,
        "us/frame",
        1e6,
    )
    section = f"{SECTION}, agent stream"
    more = [
        compare(section, rows[2], rows[1], "time", 1.0),
        compare(section, rows[2], rows[0], "time", None, why="the floor: parsing alone"),
    ]
    print_verdicts(more)
    save_verdicts(args.verdicts, verdicts + more)


def decoders(frames: list[bytes], runs: int) -> tuple[Timed, Timed, Timed]:
    """Parse alone, the bare apply and forgectl's decoder, over ``frames``."""

    def parse_only() -> None:
        loads = orjson.loads
        for f in frames:
            loads(f)

    def bare() -> None:
        state = Normalized(lambda doc: None)
        feed = state.feed
        for f in frames:
            feed(f)
        state.flush()

    def ours() -> None:
        feed = logs_decoder().feed
        for f in frames:
            feed(f)

    count = len(frames)
    return (
        timed("parse only (orjson.loads)", "parse only", parse_only, runs, count),
        timed(
            "bare apply (orjson + add/replace + documented dict)", "bare apply", bare, runs, count
        ),
        timed("forgectl ForgeLogsDecoder.feed", "forgectl", ours, runs, count),
    )


if __name__ == "__main__":
    main()
