"""The command line: click wiring only (options, help, choosing a renderer)."""

from __future__ import annotations

import sys


def entry() -> None:
    """The ``forgectl`` console script: Ctrl-C while still starting up ends it
    quietly, by SIGINT (as any command does)."""
    try:
        from .main import main

        main()
    except KeyboardInterrupt:
        import os
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        sys.exit(130)
