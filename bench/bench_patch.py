"""Applying the real server's JSON Patch log frames: forgectl's decoder vs jsonpatch.

``python bench/bench_patch.py [--count N] [--runs R]`` builds the frames
bench/server.py sends on /normalized-logs/ws and times, in-process, per frame:

- parse only (``orjson.loads``): the floor every approach pays;
- ``ForgeLogsDecoder.feed``: what forgectl does (parse, interpret ``add
  /entries/N`` directly, normalize to the documented shape, CRC for resends);
- parse + ``jsonpatch.apply_patch(doc, ops, in_place=True)`` on a growing
  ``{"entries": [...]}`` document: applying the same ops with the library,
  before any normalization;
- the same with ``in_place=False`` (the library's default: a deep copy of the
  document per frame) on the first 1,000 frames only, since it is quadratic.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from server import forge_json_payload  # noqa: E402

from forgectl.diagnostics import Diagnostics  # noqa: E402
from forgectl.dialects.forge import ForgeLogsDecoder  # noqa: E402


def best_and_median(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=120)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    frames = [forge_json_payload(i, args.size) for i in range(args.count)]
    count = len(frames)

    def parse_only() -> None:
        loads = orjson.loads
        for f in frames:
            loads(f)

    def ours() -> None:
        feed = ForgeLogsDecoder(Diagnostics(lambda level, line: None)).feed
        for f in frames:
            feed(f)

    rows: list[tuple[str, float, int]] = []
    for name, fn in (
        ("parse only (orjson.loads)", parse_only),
        ("forgectl ForgeLogsDecoder.feed", ours),
    ):
        rows.append((name, best_and_median(fn, args.runs)[1], count))
    try:
        import jsonpatch
    except ImportError:
        print("jsonpatch: not available (pip install jsonpatch to compare)")
    else:
        apply_patch = jsonpatch.apply_patch

        def library(in_place: bool, frames: list[bytes]) -> Callable[[], None]:
            def run() -> None:
                doc: dict[str, list[object]] = {"entries": []}
                loads = orjson.loads
                for f in frames:
                    doc = apply_patch(doc, loads(f)["JsonPatch"], in_place=in_place)

            return run

        rows.append(
            (
                f"parse + jsonpatch {jsonpatch.__version__} apply_patch(in_place=True)",
                best_and_median(library(True, frames), args.runs)[1],
                count,
            )
        )
        tenth = frames[:1000]
        rows.append(
            (
                "parse + jsonpatch apply_patch(in_place=False)",
                best_and_median(library(False, tenth), 1)[1],
                len(tenth),
            )
        )
    print(f"== {count:,} JSON Patch log frames of the normalized-logs route, median of {args.runs}")
    base = rows[1][1] / rows[1][2]
    for name, seconds, n in rows:
        per = seconds / n
        print(
            f"{name:<58} {per * 1e6:7.2f} us/frame  {n / seconds / 1e3:8.0f}k frames/s"
            f"  {per / base:5.2f}x forgectl  ({n:,} frames)"
        )


if __name__ == "__main__":
    main()
