#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine:
#   bash tests/run.sh [pytest args...]
# Installs what it needs (tests/bootstrap.sh), checks lint and types, then runs
# pytest inside a private network namespace, where the tests start the real
# Forge server and the reference servers on 127.0.0.1.
#
# Test files run side by side (pytest-xdist), each file on one worker so that a
# module's server starts once: FORGECTL_TEST_WORKERS of them (default: two per CPU,
# as the tests mostly wait; 0 runs everything in this process). Not --dist loadgroup:
# with pytest 9.2 it no longer groups anything (pytest-xdist issue 1386).
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
    parallel=(-n "$workers" --dist loadfile)
fi
in_private_netns "$venv/bin/python" -m pytest "${parallel[@]}" "$@"
