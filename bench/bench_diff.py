"""forgectl's diff engine against a pure-Python unified diff of the same contents.

``python bench/bench_diff.py [--runs N] [--files N ...]`` from the repository root:

1. One file of 50,000 lines with 50 scattered edits:
   - in-process: forgectl's ``file_diff`` against ``difflib.unified_diff``
     (3 lines of context, joined into one string), the same two contents;
   - whole processes (start-up included): a Python process running forgectl's
     engine against one running difflib, each reading the two files and
     printing the diff; ``git diff --no-index`` and a bare interpreter start
     for scale.
2. ``DiffState.set`` updating 1 file among N files (and the ``text()`` join that
   JSON output needs after it): an update should cost what changed, not N.
"""

from __future__ import annotations

import argparse
import difflib
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import (  # noqa: E402
    PY,
    Client,
    Verdict,
    compare,
    measure,
    print_verdicts,
    save_verdicts,
    table,
    timed,
    timed_table,
)
from forgectl_internals import DIFF_IMPORT, ROOT, DiffState, file_diff  # noqa: E402

SECTION = "diff"

#: A fresh process doing each diff: read the two files, print the unified diff.
FORGECTL_SCRIPT = f"""\
import sys, pathlib
sys.path.insert(0, sys.argv[1])
{DIFF_IMPORT}
old = pathlib.Path(sys.argv[2]).read_text()
new = pathlib.Path(sys.argv[3]).read_text()
sys.stdout.write(file_diff({{"change": "modified", "oldPath": "f", "newPath": "f",
                            "oldContent": old, "newContent": new}}).text)
"""
DIFFLIB_SCRIPT = """\
import sys, pathlib, difflib
old = pathlib.Path(sys.argv[2]).read_text().splitlines(keepends=True)
new = pathlib.Path(sys.argv[3]).read_text().splitlines(keepends=True)
sys.stdout.writelines(difflib.unified_diff(old, new, "a/f", "b/f", n=3))
"""


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


def difflib_diff(old: str, new: str) -> str:
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, "a/big.txt", "b/big.txt", n=3))


def counts(diff: str) -> tuple[int, int]:
    lines = diff.splitlines()
    plus = sum(1 for s in lines if s.startswith("+") and not s.startswith("+++"))
    minus = sum(1 for s in lines if s.startswith("-") and not s.startswith("---"))
    return plus, minus


def bench_big_file(runs: int) -> list[Verdict]:
    old, new = make_pair(50_000, 50)
    ours = timed(
        "forgectl file_diff", "forgectl", lambda: file_diff(entry("big.txt", old, new)), runs, 1
    )
    theirs = timed(
        "difflib.unified_diff (n=3), joined", "difflib", lambda: difflib_diff(old, new), runs, 1
    )
    timed_table(
        f"diff of one file: 50,000 lines, 50 scattered edits, in-process, median of {runs}",
        [ours, theirs],
        "ms",
        1e3,
    )
    fd = file_diff(entry("big.txt", old, new))
    plus, minus = counts(difflib_diff(old, new))
    print(f"   (forgectl: +{fd.insertions} -{fd.deletions}; difflib: +{plus} -{minus})")
    verdicts = [compare(f"{SECTION} (in-process)", ours, theirs, "time", 1.0)]
    print_verdicts(verdicts)

    git = shutil.which("git")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "old.txt"), Path(tmp, "new.txt")
        a.write_text(old)
        b.write_text(new)
        files = [str(ROOT), str(a), str(b)]
        clients = [
            Client(
                "python process: forgectl's diff engine",
                lambda _u: [PY, "-c", FORGECTL_SCRIPT, *files],
                label="forgectl process",
            ),
            Client(
                "python process: difflib.unified_diff",
                lambda _u: [PY, "-c", DIFFLIB_SCRIPT, *files],
                label="difflib process",
            ),
            Client(
                "git diff --no-index (process)",
                (lambda _u: [git, "diff", "--no-index", "--no-color", str(a), str(b)])
                if git
                else None,
                why="not available: git not found",
                label="git diff",
            ),
            Client('python -c "pass"', lambda _u: [PY, "-c", "pass"], label="bare interpreter"),
        ]
        for c in clients:
            c.same_output = False  # each tool writes its own headers
        rows = measure(clients, "", runs, lines=None, warmup=True)
    # git diff exits 1 when the files differ: that is its success here.
    for s in rows[2].samples:
        if s.status == 1:
            s.status, s.error = 0, ""
    rows[2].bad = ""
    table("the same diff, whole processes (start-up included)", rows, None)
    process = [
        compare(f"{SECTION} (process)", rows[0], rows[1], "wall", 1.0),
        compare(f"{SECTION} (process)", rows[0], rows[1], "CPU", 1.0),
        compare(f"{SECTION} (process)", rows[0], rows[2], "wall", None, why="for scale: native C"),
        compare(f"{SECTION} (process)", rows[0], rows[3], "wall", None, why="the floor: start-up"),
    ]
    print_verdicts(process)
    return verdicts + process


def state_case(count: int, runs: int) -> tuple[Any, Any, float]:
    base = "".join(f"line {i}\n" for i in range(200))
    st = DiffState()
    for i in range(count):
        p = f"src/mod{i:05}.py"
        st.set(p, entry(p, base, base.replace(f"line {i % 200}\n", "changed\n")))
    st.text()
    target = f"src/mod{count // 2:05}.py"
    versions = iter([base.replace("line 7\n", f"v{v}\n") for v in range(2 * runs + 2)])

    def update() -> None:
        st.set(target, entry(target, base, next(versions)))

    def update_and_join() -> None:
        update()
        st.text()

    one = timed(f"set one file among {count:,}", f"set among {count:,}", update, runs, 1)
    joined = timed(
        f"set one file + text() among {count:,}",
        f"set + text() among {count:,}",
        update_and_join,
        runs,
        1,
    )
    return one, joined, len(st.text()) / 1e6


def bench_state(runs: int, sizes: list[int]) -> list[Verdict]:
    ones, joins = [], []
    for count in sizes:
        one, joined, mb = state_case(count, runs)
        joined.name += f" ({mb:.1f} MB)"
        ones.append(one)
        joins.append(joined)
    timed_table(
        f"DiffState: update 1 file among N (200-line files), median of {runs}",
        [*ones, *joins],
        "us",
        1e6,
    )
    section = f"{SECTION} (update)"
    verdicts = [
        compare(section, ones[-1], ones[0], "time", 2.0),
        compare(
            section,
            joins[-1],
            joins[0],
            "time",
            None,
            why="JSON output carries the whole diff: the join is O(total text)",
        ),
    ]
    print_verdicts(verdicts)
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--files", type=int, nargs="+", default=[500, 5_000, 20_000])
    parser.add_argument("--verdicts", type=Path, help="append the verdicts here (JSON lines)")
    args = parser.parse_args()
    verdicts = bench_big_file(args.runs)
    verdicts += bench_state(args.runs, sorted(args.files))
    save_verdicts(args.verdicts, verdicts)


if __name__ == "__main__":
    main()
