#!/usr/bin/env bash
# Installs what slum's build, tests and demo need on a fresh Debian machine:
# Go modules, sqlc and staticcheck (into .tools/bin), the real tenement
# (pip install tenement==0.2.2), iproute2 for the network-namespace tests,
# and Postgres' server programs, which the Postgres engine's tests run a
# throwaway server of (internal/pgtest).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SQLC_VERSION=v1.31.1
STATICCHECK_VERSION=v0.8.2
TENEMENT_VERSION=0.2.2
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
if ! command -v wrk >/dev/null || ! command -v haproxy >/dev/null; then
  log "wrk and haproxy (scripts/bench-router.sh)"
  as_root apt-get update -qq
  as_root apt-get install -y -qq wrk haproxy >/dev/null
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

ten_path() {
  if command -v ten >/dev/null; then command -v ten; return; fi
  local d; d=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || return 1
  [ -x "$d/ten" ] && echo "$d/ten"
}
if ! ten_path >/dev/null || ! "$(ten_path)" --version 2>/dev/null | grep -q "$TENEMENT_VERSION"; then
  log "tenement $TENEMENT_VERSION (pip)"
  python3 -m pip install -q "tenement==${TENEMENT_VERSION}"
  command -v pyenv >/dev/null && pyenv rehash || true
fi
log "ten: $(ten_path || echo 'NOT FOUND')"
