"""A script process at a chosen speed: numbered lines at RATE lines/s, on a schedule.

Used as a Forge project's ``setup_script`` / ``dev_script`` (see ``producer_command``)::

    python producer.py --rate 100 [--lines N] [--quiet-after K --quiet-for S] [--exit C]

Prints ``line 1``, ``line 2``, ... flushed one by one at ``--rate`` lines per second
(absolute schedule: a late line goes out at once, the rest keep their times), for ever
or ``--lines`` lines; ``--quiet-after K --quiet-for S`` goes silent for S seconds after
line K (a live but quiet process); then exits with ``--exit``. ``--stderr-every N``
also writes ``err N`` on stderr after every Nth line.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path


def producer_command(
    rate: float,
    *,
    lines: int | None = None,
    quiet_after: int | None = None,
    quiet_for: float = 0.0,
    exit_code: int = 0,
    stderr_every: int | None = None,
) -> str:
    """The shell command running this producer with the test's Python."""
    args = [sys.executable, str(Path(__file__).resolve()), "--rate", str(rate)]
    if lines is not None:
        args += ["--lines", str(lines)]
    if quiet_after is not None:
        args += ["--quiet-after", str(quiet_after), "--quiet-for", str(quiet_for)]
    if stderr_every is not None:
        args += ["--stderr-every", str(stderr_every)]
    args += ["--exit", str(exit_code)]
    return shlex.join(args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--lines", type=int, default=None)
    p.add_argument("--quiet-after", type=int, default=None)
    p.add_argument("--quiet-for", type=float, default=0.0)
    p.add_argument("--stderr-every", type=int, default=None)
    p.add_argument("--exit", type=int, default=0)
    opts = p.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    interval = 1.0 / opts.rate
    start = time.monotonic()
    n = 0
    try:
        while opts.lines is None or n < opts.lines:
            n += 1
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sys.stdout.write(f"line {n}\n")
            sys.stdout.flush()
            if opts.stderr_every and n % opts.stderr_every == 0:
                sys.stderr.write(f"err {n}\n")
                sys.stderr.flush()
            if opts.quiet_after is not None and n == opts.quiet_after:
                time.sleep(opts.quiet_for)
                start = time.monotonic() - n * interval
    except BrokenPipeError:
        return 141
    except KeyboardInterrupt:  # stopped by the server: no traceback in the log
        return 130
    return int(opts.exit)


if __name__ == "__main__":
    sys.exit(main())
