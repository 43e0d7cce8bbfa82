#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine:
#   bash tests/run.sh [pytest args...]
# It installs what it needs (system packages when missing, a virtualenv with
# forgectl and its test extras, the real Forge binary from its npm package),
# checks lint and types, then runs pytest inside a private network namespace
# (unshare -rn: only loopback exists there), where the tests start the real
# Forge server and the reference servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in git jq groff npm unshare ip; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if ((${#need[@]})); then
    echo "run.sh: installing system packages for: ${need[*]}" >&2
    pkgs=()
    for tool in "${need[@]}"; do
        case $tool in
            npm) pkgs+=(npm) ;;
            unshare) pkgs+=(util-linux) ;;
            ip) pkgs+=(iproute2) ;;
            *) pkgs+=("$tool") ;;
        esac
    done
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    fi
fi

venv=${FORGECTL_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[test]'

FORGECTL_FORGE_BIN=$(bash tests/forge_binary.sh)
export FORGECTL_FORGE_BIN
echo "run.sh: real Forge server binary: $FORGECTL_FORGE_BIN" >&2

"$venv/bin/ruff" check forgectl tests bench
"$venv/bin/ruff" format --check forgectl tests bench
"$venv/bin/mypy"

# pytest runs where only loopback exists, so the real server cannot reach the
# internet (its analytics are also switched off in the config the tests seed).
export PATH="$PWD/$venv/bin:$PATH"
exec unshare -rn sh -c 'ip link set lo up && exec "$@"' sh "$venv/bin/python" -m pytest "$@"
