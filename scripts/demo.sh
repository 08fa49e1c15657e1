#!/usr/bin/env bash
# slum's main job, on a fresh machine: build slum, install the real tenement
# if it can (pip install tenement==0.2.2), and run 'slum demo': three
# tenement servers (real ones in network namespaces when run as root with
# tenement installed, simulated otherwise), the example fleet applied, and
# the controller converging it live. Extra arguments go to 'slum demo'.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || { echo "demo: Go is required (https://go.dev/dl)" >&2; exit 1; }
if ! python3 -c 'import sysconfig,os,sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("scripts"),"ten")) else 1)' 2>/dev/null \
   && ! command -v ten >/dev/null; then
  echo "demo: installing tenement 0.2.2 (pip) for real servers…" >&2
  python3 -m pip install -q tenement==0.2.2 || echo "demo: could not install tenement; the demo will use simulated servers" >&2
fi
if [ "$(id -u)" = 0 ] && ! command -v ip >/dev/null; then
  echo "demo: installing iproute2 for network namespaces…" >&2
  (apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null) || echo "demo: no iproute2; the demo will use simulated servers" >&2
fi
mkdir -p bin
go build -o bin/slum ./cmd/slum
exec bin/slum demo "$@"
