#!/usr/bin/env bash
# forgectl's main job, end to end, on a fresh machine:
#   bash tests/demo.sh
# Installs forgectl, starts the real Forge server on 127.0.0.1 (in a private
# network namespace, analytics off), creates a project and task whose scripts
# print output and whose coding agent is a scripted Claude Code session, shows
# `forgectl monitor`, `logs --follow`, `diff`, `ps` and `logs --attempt` on them,
# and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/bootstrap.sh
export PATH="$PWD/$venv/bin:$PATH"
in_private_netns "$venv/bin/python" tests/demo.py "$@"
