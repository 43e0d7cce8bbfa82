# Sourced by tests/run.sh and tests/demo.sh: everything a fresh machine needs.
# Installs missing system tools, a virtualenv with forgectl (and its test
# extras), and the real Forge server binary (cached outside the work tree).
# Leaves $venv and $FORGECTL_FORGE_BIN set.

need=()
for tool in git jq groff npm unshare ip openssl; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if ((${#need[@]})); then
    echo "forgectl: installing system packages for: ${need[*]}" >&2
    pkgs=()
    for tool in "${need[@]}"; do
        case $tool in
            unshare) pkgs+=(util-linux) ;;
            ip) pkgs+=(iproute2) ;;
            *) pkgs+=("$tool") ;;
        esac
    done
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

venv=${FORGECTL_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[test]'

FORGECTL_FORGE_BIN=$(bash tests/forge_binary.sh)
export FORGECTL_FORGE_BIN
echo "forgectl: real Forge server binary: $FORGECTL_FORGE_BIN" >&2

# Run a command where only loopback exists: the real Forge server must not reach
# the internet (its analytics are also switched off in the config we seed).
in_private_netns() {
    unshare -rn sh -c 'ip link set lo up && exec "$@"' sh "$@"
}
