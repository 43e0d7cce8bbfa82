"""The command line: click wiring only (options, help, choosing a renderer)."""

from __future__ import annotations

import sys


def entry() -> None:
    """The ``forgectl`` console script: Ctrl-C while still starting up exits 130 quietly."""
    try:
        from .main import main

        main()
    except KeyboardInterrupt:
        sys.exit(130)
