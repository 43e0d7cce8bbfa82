"""Benchmark forgectl.diffing (prints figures, asserts nothing).

Run as ``python bench/bench_diff.py [--runs N]`` from the repository root.

1. ``file_diff`` on a 50,000-line file with 50 scattered edits, against
   ``git diff --no-index`` on the same two files (wall time of the git process),
   and the wall time of a fresh Python process doing the same diff.
2. ``DiffState.set`` updating 1 file among 500 / 5,000 files (plus the ``text()``
   join that follows), to show the update does not scale with the file count.
"""

from __future__ import annotations

import argparse
import importlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DIFFING = importlib.import_module("forgectl.diffing")
file_diff: Callable[[Mapping[str, Any]], Any] = DIFFING.file_diff
DiffState: Callable[[], Any] = DIFFING.DiffState


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_pair(lines: int, edits: int, seed: int = 1) -> tuple[str, str]:
    r = random.Random(seed)
    old = [f"    line {i}: value = compute({r.random():.12f})  # comment\n" for i in range(lines)]
    new = list(old)
    for k in range(edits):
        p = r.randrange(len(new) - 3)
        op = k % 3
        if op == 0:  # replace 1-3 lines
            for q in range(p, p + r.randint(1, 3)):
                new[q] = f"    changed {k}.{q}\n"
        elif op == 1:  # insert 1-3 lines
            new[p:p] = [f"    inserted {k}.{q}\n" for q in range(r.randint(1, 3))]
        else:  # delete 1-3 lines
            del new[p : p + r.randint(1, 3)]
    return "".join(old), "".join(new)


def entry(path: str, old: str, new: str) -> dict[str, Any]:
    return {
        "change": "modified",
        "oldPath": path,
        "newPath": path,
        "oldContent": old,
        "newContent": new,
        "contentOmitted": False,
        "additions": None,
        "deletions": None,
    }


def bench_big_file(runs: int) -> None:
    old, new = make_pair(50_000, 50)
    print(f"== one file: 50,000 lines, 50 scattered edits, median of {runs} runs")
    fd = file_diff(entry("big.txt", old, new))
    t_ours = median_time(lambda: file_diff(entry("big.txt", old, new)), runs)
    print(
        f"file_diff call:                   {t_ours * 1e3:8.2f} ms"
        f"  (+{fd.insertions} -{fd.deletions})"
    )
    git = shutil.which("git")
    if git is None:
        print("git not found: no comparison")
        return
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "old.txt"), Path(tmp, "new.txt")
        a.write_text(old)
        b.write_text(new)
        cmd = [git, "diff", "--no-index", "--no-color", str(a), str(b)]

        def run_git() -> None:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)

        t_git = median_time(run_git, runs)
        numstat = subprocess.run(
            [git, "diff", "--no-index", "--numstat", str(a), str(b)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split("\t")[:2]
        print(
            f"git diff --no-index (process):    {t_git * 1e3:8.2f} ms"
            f"  (numstat +{numstat[0]} -{numstat[1]})"
        )
        print(f"ratio file_diff / git:            {t_ours / t_git:8.2f}x")
        script = (
            "import sys, pathlib; sys.path.insert(0, sys.argv[1]);"
            "from forgectl.diffing import file_diff;"
            "o = pathlib.Path(sys.argv[2]).read_text(); n = pathlib.Path(sys.argv[3]).read_text();"
            "sys.stdout.write(file_diff({'change': 'modified', 'oldPath': 'f', 'newPath': 'f',"
            " 'oldContent': o, 'newContent': n}).text)"
        )
        py_cmd = [sys.executable, "-c", script, str(ROOT), str(a), str(b)]

        def run_py() -> None:
            subprocess.run(py_cmd, stdout=subprocess.DEVNULL, check=True)

        t_py = median_time(run_py, runs)
        t_bare = median_time(
            lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs
        )
        print(
            f"python process doing the same:    {t_py * 1e3:8.2f} ms"
            f"  (bare interpreter start {t_bare * 1e3:.2f} ms)"
        )
        print(f"ratio python process / git:       {t_py / t_git:8.2f}x")


def state_case(count: int, runs: int) -> None:
    base = "".join(f"line {i}\n" for i in range(200))
    st = DiffState()
    t0 = time.perf_counter()
    for i in range(count):
        p = f"src/mod{i:05}.py"
        st.set(p, entry(p, base, base.replace(f"line {i % 200}\n", "changed\n")))
    t_fill = time.perf_counter() - t0
    st.text()
    target = f"src/mod{count // 2:05}.py"
    versions = iter([base.replace("line 7\n", f"v{v}\n") for v in range(runs + 1)])
    last = base

    def update() -> None:
        nonlocal last
        last = next(versions)
        st.set(target, entry(target, base, last))

    def update_and_join() -> None:
        update()
        st.text()

    t_set = median_time(update, runs)
    t_text = median_time(update_and_join, 1)
    t_same = median_time(lambda: st.set(target, entry(target, base, last)), runs)
    print(
        f"N={count:5}: fill {t_fill * 1e3:8.1f} ms | set one file {t_set * 1e6:7.1f} us"
        f" | set unchanged {t_same * 1e6:6.1f} us | set + text() {t_text * 1e3:6.2f} ms"
        f" ({len(st.text()) / 1e6:.1f} MB)"
    )


def bench_state(runs: int) -> None:
    print(f"\n== DiffState: update 1 file among N (200-line files, median of {runs} runs)")
    for count in (500, 5_000):
        state_case(count, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bench_big_file(args.runs)
    bench_state(args.runs)


if __name__ == "__main__":
    main()
