"""Run a command on a busy machine: CPU hogs beside it, as a loaded CI runner has.

    python tests/cpu_hog.py                          # hog until Ctrl-C
    python tests/cpu_hog.py --runs 5 -- bash tests/run.sh
    python tests/cpu_hog.py --workers 4 -- .venv/bin/python -m pytest -q -k chaos

``--workers`` busy processes (default: one per CPU, so the command gets about half
the machine) spin until the command has run ``--runs`` times in a row or failed once;
each run's exit status and time are printed on stderr, and the exit status is the
first failing run's (0 when all passed). A test that fails only here waits for time
instead of for a condition.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def _spin() -> None:
    os.nice(0)
    x = 0
    while True:  # pure CPU, no memory, no I/O
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(opts.workers)]
    for hog in hogs:
        hog.start()
    print(f"cpu_hog: {opts.workers} busy workers", file=sys.stderr, flush=True)
    try:
        if not command:
            while True:
                time.sleep(3600)
        for n in range(1, opts.runs + 1):
            started = time.monotonic()
            code = subprocess.call(command)
            took = time.monotonic() - started
            print(f"cpu_hog: run {n}/{opts.runs}: exit {code} in {took:.0f} s", file=sys.stderr)
            if code != 0:
                return code
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join(5)


if __name__ == "__main__":
    sys.exit(main())
