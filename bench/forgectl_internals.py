"""Every forgectl internal the in-process benchmarks use, imported in this one place.

The process-level benchmarks (bench/run.py) only run the ``forgectl`` command;
bench/bench_patch.py and bench/bench_diff.py time forgectl's decoder and diff
engine in-process, through the names below. When forgectl's modules move, this
file is the one to update.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from forgectl.diagnostics import Diagnostics  # noqa: E402
from forgectl.dialects.forge import ForgeLogsDecoder  # noqa: E402
from forgectl.diffing import DiffState, file_diff  # noqa: E402

#: How a fresh process imports the diff engine (bench_diff's process rows).
DIFF_IMPORT = "from forgectl.diffing import file_diff"


def logs_decoder() -> ForgeLogsDecoder:
    """A real-server normalized-logs decoder that reports nothing."""
    return ForgeLogsDecoder(Diagnostics(lambda level, line: None))


__all__ = ["DIFF_IMPORT", "ROOT", "DiffState", "file_diff", "logs_decoder"]
