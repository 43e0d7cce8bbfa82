"""What the benchmark scripts share: timing whole processes, verdicts, tables.

A verdict compares a subject (forgectl) with one reference on one metric:
``ratio = subject / reference`` against a ``target`` (ok when ``ratio <=
target``). A reference that could not run still gets its verdict line, saying
why it was not judged; a reference shown only for scale (a floor) says that it
has no target. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

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


# -- one process -------------------------------------------------------------------


@dataclass
class Sample:
    wall: float  # seconds, start to exit
    cpu: float  # seconds, user + system (the process and what it waited for)
    rss_kb: int  # peak resident set
    lines: int  # newlines written to stdout
    size: int  # bytes written to stdout
    crc: int  # CRC-32 of stdout
    status: int  # exit status
    error: str = ""  # the end of stderr when the status was not 0


def run_once(
    argv: Sequence[str],
    *,
    reader_delay: float = 0.0,
    stdin_open: bool = False,
    to_file: bool = False,
    cwd: Path | None = None,
) -> Sample:
    """Run ``argv`` with stdout into a pipe drained here; wall, CPU, peak RSS, output.

    ``reader_delay`` makes the reader sleep before draining (a slow consumer);
    ``stdin_open`` keeps the child's stdin an open pipe (wscat and websocat end
    the session on stdin EOF); ``to_file`` sends stdout to a temporary file
    instead of the pipe (wscat exits before node drains a pipe, losing lines).
    """
    # The peak RSS of a child forked from this (large) process would start at
    # this process's own RSS, so /usr/bin/time, a small C program, launches it
    # and reports the child's own peak. Its CPU time is the child's too: wait4
    # counts what a process waited for.
    rss_file: IO[str] | None = None
    if TIME is not None:
        rss_file = tempfile.NamedTemporaryFile("r", suffix=".rss")  # noqa: SIM115
        argv = [TIME, "-f", "%M", "-o", rss_file.name, "--", *argv]
    out: IO[bytes] | None = tempfile.TemporaryFile() if to_file else None  # noqa: SIM115
    counts = [0, 0, 0]  # lines, bytes, crc

    def drain(fd: int) -> None:
        if reader_delay:
            time.sleep(reader_delay)
        read, crc32 = os.read, zlib.crc32
        lines = size = crc = 0
        while data := read(fd, 1 << 20):
            lines += data.count(b"\n")
            size += len(data)
            crc = crc32(data, crc)
        counts[:] = [lines, size, crc]

    errors: list[bytes] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin_open else subprocess.DEVNULL,
        stdout=out if out is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=CHILD_ENV,
        cwd=cwd,
    )
    assert proc.stderr is not None
    stderr = proc.stderr
    threads = [threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)]
    if out is None:
        assert proc.stdout is not None
        threads.append(threading.Thread(target=drain, args=(proc.stdout.fileno(),), daemon=True))
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    if out is not None:
        with out:
            out.seek(0)
            data = out.read()
        counts = [data.count(b"\n"), len(data), zlib.crc32(data)]
    rss = _rss(rss_file, usage.ru_maxrss)
    error = ""
    if code != 0:
        tail = (errors[0] if errors else b"").decode(errors="replace").strip().splitlines()
        error = f"exit {code}" + (f": {tail[-1][:200]}" if tail else "")
    lines, size, crc = counts
    return Sample(wall, usage.ru_utime + usage.ru_stime, rss, lines, size, crc, code, error)


def _rss(rss_file: IO[str] | None, fallback: int) -> int:
    if rss_file is None:
        return fallback
    with rss_file:
        text = rss_file.read().split()
    # /usr/bin/time prints "Command exited with non-zero status N" before %M.
    return int(text[-1]) if text and text[-1].isdigit() else fallback


# -- clients and rows ----------------------------------------------------------------


@dataclass
class Client:
    name: str
    argv: Callable[[str], list[str]] | None  # URL -> command; None: not available
    why: str = ""  # why it is not available
    label: str = ""  # what verdicts call it (default: the name)
    stdin_open: bool = False
    to_file: bool = False
    #: wscat ends every message with a newline, a raw line's own included
    lines_per_frame: int = 1
    #: expected to print exactly what the table's reference client prints
    same_output: bool = True


@dataclass
class Row:
    name: str
    label: str = ""
    samples: list[Sample] = field(default_factory=list)
    missing: str = ""
    lines_per_frame: int = 1
    same_output: bool = True
    #: set by check(): why this row's figures cannot be judged
    bad: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def rss(self) -> float:
        """Median peak RSS in bytes."""
        return statistics.median(s.rss_kb for s in self.samples) * 1024.0

    def metric(self, name: str) -> float:
        return {"wall": self.wall, "CPU": self.cpu, "peak RSS": self.rss}[name]

    def check(self, lines: int | None, reference: Row | None) -> None:
        """Mark the row bad when a run failed, or printed the wrong thing."""
        for s in self.samples:
            if s.status != 0:
                self.bad = f"a run failed ({s.error})"
                return
        if lines is not None:
            want = lines * self.lines_per_frame
            wrong = [s.lines for s in self.samples if s.lines != want]
            if wrong:
                self.bad = f"printed {wrong[0]:,} lines, not {want:,}"
                return
        if self.same_output and reference is not None and reference.samples:
            ref = reference.samples[0]
            for s in self.samples:
                if (s.size, s.crc) != (ref.size, ref.crc):
                    how = (
                        f"{s.size:,} bytes, not {ref.size:,}"
                        if s.size != ref.size
                        else "the same size, other bytes"
                    )
                    self.bad = f"output differs from {reference.label or reference.name}'s ({how})"
                    return


def measure(
    clients: Sequence[Client],
    url: str,
    runs: int,
    *,
    lines: int | None,
    reader_delay: float = 0.0,
    warmup: bool = False,
    reference: int = 1,
    cwd: Path | None = None,
) -> list[Row]:
    """Run every available client ``runs`` times, round-robin, so drift hits all alike.

    ``reference`` is the index of the client whose output the others must match.
    """
    rows = [
        Row(
            c.name,
            c.label or c.name,
            missing="" if c.argv else (c.why or "not available"),
            lines_per_frame=c.lines_per_frame,
            same_output=c.same_output,
        )
        for c in clients
    ]
    live = [(c, r) for c, r in zip(clients, rows, strict=True) if c.argv is not None]
    if warmup:  # page cache, first-import bytecode
        for c, _ in live:
            assert c.argv is not None
            run_once(c.argv(url), stdin_open=c.stdin_open, to_file=c.to_file, cwd=cwd)
    for _ in range(runs):
        for c, r in live:
            assert c.argv is not None
            r.samples.append(
                run_once(
                    c.argv(url),
                    reader_delay=reader_delay,
                    stdin_open=c.stdin_open,
                    to_file=c.to_file,
                    cwd=cwd,
                )
            )
    ref: Row | None = rows[reference]
    assert ref is not None
    ref.check(lines, None)
    if ref.bad or not ref.samples:
        ref = None  # nothing to compare with: each row is judged on its own
    for r in rows:
        if r.samples and r is not rows[reference]:
            r.check(lines, ref)
    return rows


# -- verdicts ------------------------------------------------------------------------


@dataclass
class Verdict:
    section: str
    subject: str
    reference: str
    metric: str  # "wall", "CPU", "peak RSS", "time", ...
    target: float | None  # None: shown for scale only
    ratio: float | None = None
    why: str = ""  # why it was not judged, or why there is no target

    @property
    def mark(self) -> str:
        if self.target is None:
            return "no target"
        if self.ratio is None:
            return "not judged"
        return "ok" if self.ratio <= self.target else "MISSED"

    def line(self, width: int = 44) -> str:
        what = f"{self.subject} / {self.reference}"
        ratio = f"{self.ratio:6.2f}x" if self.ratio is not None else "      -"
        target = f"<= {self.target:g}x" if self.target is not None else ""
        text = f"   -> {what:<{width}} {self.metric:<8} {ratio}  {target:<8} {self.mark}"
        return text + (f": {self.why}" if self.why else "")


class Measured(Protocol):
    """A row of any table: a process's (Row) or an in-process call's (Timed)."""

    name: str
    label: str
    missing: str
    bad: str

    @property
    def samples(self) -> Sequence[object]: ...

    def metric(self, name: str) -> float: ...


def compare(
    section: str,
    subject: Measured,
    reference: Measured,
    metric: str,
    target: float | None,
    *,
    why: str = "",
) -> Verdict:
    """The verdict of ``subject`` against ``reference``; says why when it cannot judge."""
    names = subject.label or subject.name, reference.label or reference.name
    v = Verdict(section, *names, metric, target, why=why)
    for row in (subject, reference):
        if not row.samples:
            v.why = f"{row.label or row.name}: {row.missing or 'not run'}"
            return v
        if row.bad:
            v.why = f"{row.label or row.name}: {row.bad}"
            return v
    v.ratio = subject.metric(metric) / reference.metric(metric)
    return v


def absolute(
    section: str,
    subject: Measured,
    metric: str,
    reference: str,
    value: float,
    target: float | None,
    *,
    why: str = "",
) -> Verdict:
    """``subject``'s metric against a fixed quantity (such as the largest frame's size)."""
    v = Verdict(section, subject.label or subject.name, reference, metric, target, why=why)
    if not subject.samples or subject.bad:
        v.why = f"{v.subject}: {subject.bad or subject.missing or 'not run'}"
        return v
    v.ratio = subject.metric(metric) / value
    return v


def print_verdicts(verdicts: Sequence[Verdict]) -> None:
    width = max((len(f"{v.subject} / {v.reference}") for v in verdicts), default=0)
    print(f"   {'':<{width + 3}} {'metric':<8} {'ratio':>7}  {'target':<8} verdict")
    for v in verdicts:
        print(v.line(min(width, 64)))
    sys.stdout.flush()


def print_summary(verdicts: Sequence[Verdict]) -> None:
    """Every verdict in one table, the section first."""
    sec = max((len(v.section) for v in verdicts), default=0)
    what = max((len(f"{v.subject} / {v.reference}") for v in verdicts), default=0)
    print(
        f"   {'section':<{sec}}  {'comparison':<{what}}  {'metric':<8} {'ratio':>7}  {'target':<8} verdict"
    )
    for v in verdicts:
        line = v.line(what)
        print(f"   {v.section:<{sec}}  {line[6:]}")
    marks = [v.mark for v in verdicts]
    counts = ", ".join(f"{marks.count(m)} {m}" for m in ("ok", "MISSED", "not judged", "no target"))
    print(f"   {counts}")
    sys.stdout.flush()


def save_verdicts(path: Path | None, verdicts: Sequence[Verdict]) -> None:
    """Append verdicts as JSON lines (how bench_patch and bench_diff report to run.py)."""
    if path is None:
        return
    with path.open("a") as f:
        for v in verdicts:
            f.write(json.dumps(asdict(v)) + "\n")


def load_verdicts(path: Path) -> list[Verdict]:
    if not path.exists():
        return []
    out: list[Verdict] = []
    for line in path.read_text().splitlines():
        data: dict[str, Any] = json.loads(line)
        out.append(Verdict(**data))
    return out


# -- tables --------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f}"


def rate(per_second: float) -> str:
    if per_second >= 1e4:
        return f"{per_second / 1e3:,.0f}k"
    return f"{per_second:,.1f}" if per_second < 100 else f"{per_second:,.0f}"


def table(title: str, rows: Sequence[Row], frames: int | None) -> None:
    """Wall and CPU (median, min-max), frames/s by wall time, peak RSS."""
    width = max(40, *(len(r.name) for r in rows))
    print(f"\n== {title}")
    print(
        f"   {'client':<{width}} {'wall ms':>8} {'min-max':>13} {'CPU ms':>8} {'min-max':>13} "
        f"{'frames/s':>9} {'peak RSS':>9}"
    )
    for r in rows:
        if not r.samples:
            print(f"   {r.name:<{width}} {r.missing}")
            continue
        walls = [s.wall for s in r.samples]
        cpus = [s.cpu for s in r.samples]
        per_second = rate(frames / r.wall) if frames else ""
        wall_range = f"{ms(min(walls))}-{ms(max(walls))}"
        cpu_range = f"{ms(min(cpus))}-{ms(max(cpus))}"
        flag = f"  BAD: {r.bad}" if r.bad else ""
        print(
            f"   {r.name:<{width}} {ms(r.wall):>8} {wall_range:>13} {ms(r.cpu):>8} "
            f"{cpu_range:>13} {per_second:>9} {r.rss / 2**20:7.1f}MB{flag}"
        )
    sys.stdout.flush()


@dataclass
class Timed:
    """An in-process call timed ``runs`` times; each call does ``count`` units."""

    name: str
    label: str = ""
    count: int = 0
    times: list[float] = field(default_factory=list)
    missing: str = ""
    bad: str = ""

    @property
    def samples(self) -> list[float]:
        return self.times

    def metric(self, name: str) -> float:
        """Median seconds per unit ("time")."""
        assert name == "time"
        return statistics.median(self.times) / self.count


def timed(
    name: str, label: str, fn: Callable[[], object], runs: int, count: int, *, warmup: bool = True
) -> Timed:
    """``fn`` called ``runs`` times (after one untimed call, unless ``warmup`` is False)."""
    if warmup:
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timed(name, label, count, times)


def timed_table(title: str, rows: Sequence[Timed], unit: str, scale: float) -> None:
    """Median and min-max per ``unit`` (seconds times ``scale``), and units per second."""
    width = max(40, *(len(r.name) for r in rows))
    print(f"\n== {title}")
    print(f"   {'':<{width}} {unit:>10} {'min-max':>17} {'per second':>11}")
    for r in rows:
        if not r.times:
            print(f"   {r.name:<{width}} {r.missing}")
            continue
        per = r.metric("time")
        lo, hi = min(r.times) / r.count, max(r.times) / r.count
        print(
            f"   {r.name:<{width}} {per * scale:10.2f} "
            f"{f'{lo * scale:.2f}-{hi * scale:.2f}':>17} {rate(1 / per):>11}"
        )
    sys.stdout.flush()
