#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine:
#   bash tests/run.sh [pytest args...]
# Installs what it needs (tests/bootstrap.sh), checks lint and types, then runs
# pytest inside a private network namespace, where the tests start the real
# Forge server and the reference servers on 127.0.0.1.
#
# Tests run side by side (pytest-xdist) on FORGECTL_TEST_WORKERS workers (default:
# two per CPU, as the tests mostly wait; 0 runs everything in this process). The
# tests of a real-server module stay on one worker, so that its server starts once
# (tests/conftest.py, pytest_xdist_make_scheduler).
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/bootstrap.sh

"$venv/bin/ruff" check forgectl tests bench tools
"$venv/bin/ruff" format --check forgectl tests bench tools
"$venv/bin/mypy"

export PATH="$PWD/$venv/bin:$PATH"
workers=${FORGECTL_TEST_WORKERS:-$(($(nproc) * 2))}
parallel=()
if [ "$workers" != 0 ]; then
    parallel=(-n "$workers")
fi
in_private_netns "$venv/bin/python" -m pytest "${parallel[@]}" "$@"
