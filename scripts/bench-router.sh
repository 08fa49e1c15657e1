#!/usr/bin/env bash
# The router's overhead, side by side in one run: wrk (--latency) against
#   direct     a fast Go backend
#   slum       'slum route' in front of it, following a fleet database
#   slum+log   the same with its JSON access log on (written to /dev/null)
#   slum-nethttp  'slum route --route-fast-path=false': net/http's server
#   httputil   Go's httputil.ReverseProxy with default settings
#   haproxy    haproxy as a plain reverse proxy (http-reuse always)
#   slum-base  with SLUM_BASELINE=path/to/slum: that build of 'slum route',
#              for before/after figures in one run
#   slum-1p    with SLUM_ONE_PROC=1: 'slum route' with GOMAXPROCS=1, to see
#              what the scheduler's wake-ups between threads cost
# each with 1, 64 and 256 keep-alive connections (CONNS), then a table of
# rps, p50, p99 and the CPU time the proxy's process (the backend's, for
# direct) spent per request, and slum's figures beside the targets
# (>= 100 % of haproxy's rps, CPU per request <= haproxy's) and beside
# the previous build (SLUM_BASELINE). The run holds /tmp/slum-bench.lock. Loopback only. The load generator, proxy and backend
# share the machine's cores: compare proxies with each other, not with
# direct. CPU per request depends least on what else runs on the machine.
# Shared virtual machines are noisy, so the cells run in ROUNDS interleaved
# rounds and the table shows each figure's median (rps of every round are
# listed below it).
# Usage: scripts/bench-router.sh                  (3 rounds of 3 s per cell, ~2 minutes)
#        ROUNDS=1 DURATION=5 scripts/bench-router.sh
#        SLUM_BASELINE=/tmp/slum-main scripts/bench-router.sh
#        PATHS="slum haproxy slum-base" SLUM_BASELINE=... scripts/bench-router.sh
#          (only those paths; slum and haproxy always run)
set -euo pipefail
cd "$(dirname "$0")/.."
# One benchmark at a time on the machine: figures from overlapping runs
# mean nothing.
exec 9>/tmp/slum-bench.lock
flock 9

DURATION=${DURATION:-3}
CONNS=${CONNS:-1 64 256}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-18400}
DOMAIN=bench.test
SLUM_BASELINE=${SLUM_BASELINE:-}
SLUM_ONE_PROC=${SLUM_ONE_PROC:-}
PATHS=${PATHS:-}
if [ -n "$SLUM_BASELINE" ] && [ ! -x "$SLUM_BASELINE" ]; then
  echo "bench-router: SLUM_BASELINE=$SLUM_BASELINE is not an executable" >&2; exit 1
fi
for tool in wrk haproxy go curl; do
  command -v "$tool" >/dev/null || { echo "bench-router: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/routerbench" ./router/internal/routerbench
go build -o "$work/slum" ./cmd/slum

port_backend=$BASE_PORT
port_slum=$((BASE_PORT + 1))
port_slumlog=$((BASE_PORT + 2))
port_httputil=$((BASE_PORT + 3))
port_haproxy=$((BASE_PORT + 4))
port_slumbase=$((BASE_PORT + 5))
port_nethttp=$((BASE_PORT + 6))
port_slum1p=$((BASE_PORT + 7))
for p in $port_backend $port_slum $port_slumlog $port_httputil $port_haproxy $port_slumbase $port_nethttp $port_slum1p; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
    echo "bench-router: port $p is in use; set BASE_PORT" >&2; exit 1
  fi
done
backend=http://127.0.0.1:$port_backend
declare -A pid # whose CPU time each path's cells count

"$work/routerbench" -mode backend -listen 127.0.0.1:$port_backend & pids+=($!); pid[direct]=$!
# The slum rows are 'slum route' as users run it, following a fleet
# database in which tenant $DOMAIN is served by a copy on the backend.
"$work/routerbench" -mode fleet-db -db "$work/fleet.db" -backend "$backend" -domain $DOMAIN
"$work/slum" --db "$work/fleet.db" route --listen 127.0.0.1:$port_slum --metrics-addr "" --access-log=false 2>/dev/null & pids+=($!); pid[slum]=$!
"$work/slum" --db "$work/fleet.db" route --listen 127.0.0.1:$port_slumlog --metrics-addr "" --log-format json 2>/dev/null & pids+=($!); pid[slum+log]=$!
"$work/slum" --db "$work/fleet.db" route --listen 127.0.0.1:$port_nethttp --metrics-addr "" --access-log=false --route-fast-path=false 2>/dev/null & pids+=($!); pid[slum-nethttp]=$!
"$work/routerbench" -mode httputil -listen 127.0.0.1:$port_httputil -backend "$backend" 2>/dev/null & pids+=($!); pid[httputil]=$!
paths="direct slum slum+log slum-nethttp httputil haproxy"
ports="$port_backend $port_slum $port_slumlog $port_nethttp $port_httputil $port_haproxy"
if [ -n "$SLUM_BASELINE" ]; then
  "$SLUM_BASELINE" --db "$work/fleet.db" route --listen 127.0.0.1:$port_slumbase --metrics-addr "" --access-log=false 2>/dev/null & pids+=($!); pid[slum-base]=$!
  paths+=" slum-base"
  ports+=" $port_slumbase"
fi
if [ -n "$SLUM_ONE_PROC" ]; then
  GOMAXPROCS=1 "$work/slum" --db "$work/fleet.db" route --listen 127.0.0.1:$port_slum1p --metrics-addr "" --access-log=false 2>/dev/null & pids+=($!); pid[slum-1p]=$!
  paths+=" slum-1p"
  ports+=" $port_slum1p"
fi
cat > "$work/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend bench
  bind 127.0.0.1:$port_haproxy
  default_backend app
backend app
  server app1 127.0.0.1:$port_backend
EOF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 & pids+=($!); pid[haproxy]=$!

for p in $ports; do
  for _ in $(seq 100); do
    curl -fs -o /dev/null -H "Host: $DOMAIN" "http://127.0.0.1:$p/" && continue 2
    sleep 0.1
  done
  echo "bench-router: nothing answers on port $p" >&2; exit 1
done

# to_us turns a wrk latency (850.00us, 1.20ms, 1.05s) into microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000; else f = 0
    printf "%.0f", n * f }'
}

# cpu_ticks: the user and system time a process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick_us=$((1000000 / $(getconf CLK_TCK)))

declare -A rps p50 p99 errs cpu
run() { # name port conns round
  local name=$1 port=$2 conns=$3 round=$4 threads=1 out t0 t1
  [ "$conns" -gt 1 ] && threads=2
  if [ "$round" = 1 ]; then # warm up
    wrk -t1 -c"$conns" -d1s -H "Host: $DOMAIN" "http://127.0.0.1:$port/" >/dev/null
  fi
  t0=$(cpu_ticks "${pid[$name]}")
  out=$(wrk -t$threads -c"$conns" -d"${DURATION}s" --latency -H "Host: $DOMAIN" "http://127.0.0.1:$port/")
  t1=$(cpu_ticks "${pid[$name]}")
  rps[$name,$conns]+=" $(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")"
  cpu[$name,$conns]+=" $(awk -v t=$((t1 - t0)) -v us=$tick_us '/ requests in / {printf "%.1f", t * us / $1}' <<<"$out")"
  p50[$name,$conns]+=" $(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
  p99[$name,$conns]+=" $(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
  errs[$name,$conns]=$(( ${errs[$name,$conns]:-0} + $(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) n += $i} END {print n + 0}' <<<"$out") ))
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A port=([direct]=$port_backend [slum]=$port_slum [slum+log]=$port_slumlog [slum-nethttp]=$port_nethttp [httputil]=$port_httputil [haproxy]=$port_haproxy [slum-base]=$port_slumbase [slum-1p]=$port_slum1p)
if [ -n "$PATHS" ]; then # only the paths asked for (all were started and checked above)
  chosen=""
  for path in $paths; do
    case " $PATHS slum haproxy " in *" $path "*) chosen+=" $path" ;; esac
  done
  paths=$chosen
fi
has_path() { case " $paths " in *" $1 "*) return 0 ;; esac; return 1; }
echo "== router benchmark: wrk, $ROUNDS rounds of ${DURATION}s per cell; $(nproc) cores shared by wrk, proxy and backend"
load_before=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
  for c in $CONNS; do
    for path in $paths; do run "$path" "${port[$path]}" "$c" "$round"; done
  done
done

declare -A med
for path in $paths; do
  for c in $CONNS; do
    for v in rps p50 p99; do
      declare -n vals=$v
      med[$path,$c,$v]=$(median "${vals[$path,$c]}" | awk '{printf "%.0f", $1}')
    done
    med[$path,$c,cpu]=$(median "${cpu[$path,$c]}" | awk '{printf "%.1f", $1}')
  done
done
for c in $CONNS; do
  printf '\n%d connection(s):\n| %-12s | %8s | %8s | %8s | %8s | %6s |\n' "$c" path rps "p50 µs" "p99 µs" "cpu µs" errors
  printf '| %-12s | %8s | %8s | %8s | %8s | %6s |\n' --- ---: ---: ---: ---: ---:
  for path in $paths; do
    printf '| %-12s | %8s | %8s | %8s | %8s | %6s |\n' "$path" "${med[$path,$c,rps]}" "${med[$path,$c,p50]}" \
      "${med[$path,$c,p99]}" "${med[$path,$c,cpu]}" "${errs[$path,$c]}"
  done
done
echo "(cpu µs: user and system time of the proxy's process per request; the backend's for direct)"
echo
echo "rps of each round, by connections:"
for path in $paths; do
  printf '  %-12s' "$path"; for c in $CONNS; do printf ' %s:%s |' "$c" "${rps[$path,$c]}"; done; echo
done
echo "cpu µs per request of each round, by connections:"
for path in $paths; do
  printf '  %-12s' "$path"; for c in $CONNS; do printf ' %s:%s |' "$c" "${cpu[$path,$c]}"; done; echo
done
echo
# ratio_median a b: the median over rounds of a/b, each round's pair
# measured back to back.
ratio_median() {
  paste <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk '{print $1 / $2}' | sort -g | awk '{v[NR] = $1} END {printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
verdict() { # value op target
  awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; printf "%s", ok ? "meets" : "MISSES" }'
}
echo "slum against the targets (median of per-round ratios):"
for c in $CONNS; do
  r=$(ratio_median "${rps[slum,$c]}" "${rps[haproxy,$c]}")
  u=$(ratio_median "${cpu[slum,$c]}" "${cpu[haproxy,$c]}")
  printf '  %3d conns: rps %.0f %% of haproxy (target >= 100 %%: %s); cpu per request %.2fx haproxy'"'"'s (%s vs %s µs; target <= 1: %s)\n' \
    "$c" "$(awk -v r="$r" 'BEGIN{print 100*r}')" "$(verdict "$r" ">=" 1)" "$u" "${med[slum,$c,cpu]}" "${med[haproxy,$c,cpu]}" "$(verdict "$u" "<=" 1)"
done
if has_path slum-nethttp; then
  echo "slum's fast path against its net/http server (same build, --route-fast-path=false):"
  for c in $CONNS; do
    printf '  %3d conns: rps %sx, cpu per request %sx\n' "$c" "$(ratio_median "${rps[slum,$c]}" "${rps[slum-nethttp,$c]}")" \
      "$(ratio_median "${cpu[slum,$c]}" "${cpu[slum-nethttp,$c]}")"
  done
fi
if has_path slum-1p; then
  echo "slum with GOMAXPROCS=1 (slum-1p) against haproxy and against slum:"
  for c in $CONNS; do
    printf '  %3d conns: rps %.0f %% of haproxy, cpu per request %sx haproxy'"'"'s (%s vs %s µs); against slum: rps %sx, cpu %sx\n' "$c" \
      "$(awk -v r="$(ratio_median "${rps[slum-1p,$c]}" "${rps[haproxy,$c]}")" 'BEGIN{print 100*r}')" \
      "$(ratio_median "${cpu[slum-1p,$c]}" "${cpu[haproxy,$c]}")" "${med[slum-1p,$c,cpu]}" "${med[haproxy,$c,cpu]}" \
      "$(ratio_median "${rps[slum-1p,$c]}" "${rps[slum,$c]}")" "$(ratio_median "${cpu[slum-1p,$c]}" "${cpu[slum,$c]}")"
  done
fi
if has_path slum-base; then
  echo "slum against the previous build (slum-base, SLUM_BASELINE=$SLUM_BASELINE):"
  for c in $CONNS; do
    printf '  %3d conns: rps %sx, cpu per request %sx (%s vs %s µs)\n' "$c" "$(ratio_median "${rps[slum,$c]}" "${rps[slum-base,$c]}")" \
      "$(ratio_median "${cpu[slum,$c]}" "${cpu[slum-base,$c]}")" "${med[slum,$c,cpu]}" "${med[slum-base,$c,cpu]}"
  done
fi
load_after=$(cut -d' ' -f1 /proc/loadavg)
echo "load average before $load_before, after $load_after (this run alone adds about 3 at 64 connections)"
awk -v b="$load_before" 'BEGIN { exit !(b > 1.0) }' &&
  echo "WARNING: the machine was busy before the run started; figures are unreliable" >&2
if has_path direct; then
  awk -v sp="${med[slum,1,p50]:-0}" -v dp="${med[direct,1,p50]:-0}" 'BEGIN {
    printf "slum added p50 at 1 connection: %d µs over direct (target < 100 µs)\n", sp - dp }'
fi
