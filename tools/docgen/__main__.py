"""``python -m tools.docgen [--check]``: regenerate (or check) man/ and completions/."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
