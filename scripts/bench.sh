#!/usr/bin/env bash
# slum's benchmark command: the figures the issues ask for.
#  1. go test benchmarks: apply of 1k/10k/100k instances over 1,000 servers,
#     convergence of 1k/10k/100k instances over 100 in-process simulated
#     servers, a no-op pass over 100k, and merging the logs of 10 copies;
#     10k instances over 10 simulated servers converged on SQLite and on
#     Postgres in one run, with a no-op pass each, Postgres' figures beside
#     SQLite's and the target (within 1.5x).
#  2. The controller as users run it: 'slum apply' of a fleet file of 1k,
#     10k and 100k instances over 100 servers, first and again unchanged,
#     then 'slum run' against 100 simulators in another process ('slum sim
#     --count 100') converging them; time to converge and the controller's
#     RSS. The 100k figures are printed beside their targets.
# Usage: scripts/bench.sh [quick|process|apply|soak]
#   quick: skip the 100k process run; process: only the process runs;
#   apply: only the apply benchmark (BenchmarkApply in sqlite/).
#   soak: only the soak run (scripts/soak.sh): 'slum run' against simulated
#     servers under steady churn and faults for SLUM_SOAK_DURATION (default
#     30m); its RSS, goroutines, heap, open files, database size and events
#     rows must stay flat. E.g. SLUM_SOAK_DURATION=3m scripts/bench.sh soak
# Before and after in one run: SLUM_BASELINE=DIR, a source tree of the
# previous build (git worktree add /tmp/slum-base main), measures the apply
# benchmark and the process runs for that build and this one, alternating,
# SLUM_BENCH_ROUNDS times each (default 1); lines say which build
# ("base" or "this"). SLUM_BENCH_SIZES="100000" limits the process runs
# to those sizes. The run holds /tmp/slum-bench.lock (the machine is
# shared: the load average is printed with each figure).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"

mode=${1:-all}
case $mode in
all | quick | process | apply) ;;
soak) exec ./scripts/soak.sh ;;
*) echo "bench.sh: unknown mode '$mode': give quick, process, apply or soak, or nothing for all" >&2; exit 2 ;;
esac
base=${SLUM_BASELINE:-}
if [ -n "$base" ] && [ ! -f "$base/go.mod" ]; then
  echo "bench.sh: SLUM_BASELINE=$base is not a source tree of slum (no go.mod)" >&2; exit 2
fi
rounds=${SLUM_BENCH_ROUNDS:-1}
exec 9>/tmp/slum-bench.lock
flock 9
load() { cut -d' ' -f1-3 /proc/loadavg; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
builds="this"
mkdir -p "$work/this"
go build -o "$work/this/slum" ./cmd/slum
go test -c -o "$work/this/sqlite.test" ./sqlite/
if [ -n "$base" ]; then
  builds="base this"
  mkdir -p "$work/base"
  (cd "$base" && go build -o "$work/base/slum" ./cmd/slum && go test -c -o "$work/base/sqlite.test" ./sqlite/)
fi

if [ "$mode" != process ]; then
echo "== first apply and re-apply of a fleet file over 1,000 servers (BenchmarkApply; target at 100,000: < 3 s and < 1 s)"
for r in $(seq "$rounds"); do
  for b in $builds; do
    (cd sqlite && "$work/$b/sqlite.test" -test.run '^$' -test.bench 'Apply' -test.benchtime 1x -test.timeout 30m) |
      grep -E '^Benchmark' | sed "s/^/$b (load $(load)): /" | tee -a "$work/apply.txt"
  done
done
# The 100,000-instance figures of each build beside the targets: medians
# of the rounds.
awk '/instances=100000/ { b = $1; for (i = 2; i < NF; i++) { if ($(i+1) == "first_apply_s") f[b] = f[b] " " $i; if ($(i+1) == "reapply_s") r[b] = r[b] " " $i } }
function median(s,   a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function verdict(v, target) { return v < target ? "met" : "missed" }
END { for (b in f) printf "%s at 100,000: first apply %.2f s (target < 3 s: %s), re-apply %.2f s (target < 1 s: %s); rounds:%s /%s\n",
	b, median(f[b]), verdict(median(f[b]), 3), median(r[b]), verdict(median(r[b]), 1), f[b], r[b] }' "$work/apply.txt"
fi
[ "$mode" = apply ] && exit 0
if [ "$mode" != process ]; then
echo "== go test benchmarks"
go test -run '^$' -bench 'Converge|NoopPass' -benchtime 1x -timeout 30m ./reconcile/ | grep -E '^Benchmark|^ok'
go test -run '^$' -bench 'NoopPass' -benchtime 20x -timeout 30m ./reconcile/ | grep -E '^Benchmark'
go test -run '^$' -bench 'ReactToCommit' -benchtime 100x -timeout 30m ./reconcile/ | grep -E '^Benchmark'
go test -run '^$' -bench 'Merge|Gather' -benchtime 20x -timeout 10m ./logs/ | grep -E '^Benchmark'
echo "== converge 10,000 instances over 10 simulated servers: Postgres against SQLite, one run"
go test -run '^$' -bench 'ConvergeEngines' -benchtime 1x -timeout 30m ./postgres/ | grep -E '^Benchmark' | tee /dev/stderr |
	awk '{ e = ($1 ~ /postgres/) ? "pg" : "sqlite"; for (i = 1; i < NF; i++) { if ($(i+1) == "converge_s") c[e] = $i; if ($(i+1) == "noop_pass_ms") n[e] = $i } }
	END { if (c["sqlite"] > 0 && n["sqlite"] > 0) {
		printf "converge: postgres %.2f s, sqlite %.2f s: %.2fx (target within 1.5x)\n", c["pg"], c["sqlite"], c["pg"] / c["sqlite"]
		printf "no-op pass: postgres %.1f ms, sqlite %.1f ms: %.2fx (target within 1.5x)\n", n["pg"], n["sqlite"], n["pg"] / n["sqlite"] } }'
fi

echo "== slum apply, then slum run against 100 simulated servers in another process"
go build -o "$work/genfleet" ./scripts/genfleet
printf 'bench-token' > "$work/token"
export SLUM_BENCH_TOKEN=bench-token
secs() { python3 -c "print(f'{$(date +%s.%N) - $1:.2f}')"; }
# cpusecs PID: the user and system CPU seconds the process has used.
cpusecs() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"; }
sizes="1000 10000 100000"
[ "$mode" = quick ] && sizes="1000 10000"
sizes=${SLUM_BENCH_SIZES:-$sizes}
port=21000
for n in $sizes; do
  for r in $(seq "$rounds"); do
    for b in $builds; do
      slum="$work/$b/slum"
      "$work/genfleet" -servers 100 -instances "$n" -port "$port" > "$work/fleet-$n.yaml"
      "$slum" sim --listen "127.0.0.1:$port" --count 100 --token-file "$work/token" 2>/dev/null &
      simpid=$!; pids+=("$simpid")
      db="$work/bench-$b-$n-$r.db"
      sleep 1
      start=$(date +%s.%N)
      "$slum" --db "$db" apply -f "$work/fleet-$n.yaml" >/dev/null
      apply=$(secs "$start")
      start=$(date +%s.%N)
      "$slum" --db "$db" apply -f "$work/fleet-$n.yaml" >/dev/null
      reapply=$(secs "$start")
      start=$(date +%s.%N)
      # slum run keeps its own collector setting (GOGC 50), as users run it,
      # unless SLUM_BENCH_GOGC is set.
      mport=20999 # below every simulator's port
      env ${SLUM_BENCH_GOGC:+GOGC=$SLUM_BENCH_GOGC} "$slum" --db "$db" run --metrics-addr "127.0.0.1:$mport" --log-level warn 2>"$work/run-$n.log" &
      runpid=$!; pids+=("$runpid")
      # Converged, as the controller sees it: its gauge of desired
      # instances running reaches n (every server lists them). Polled with
      # curl, which costs the shared cores little ('slum status' reads every
      # status row: a poll of it every 0.2 s took ~0.7 of a core at 100k).
      while :; do
        running=$(curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null | awk '$1 == "slum_instances{phase=\"running\"}" {print $2}' || true)
        [ -n "$running" ] && [ "${running%.*}" -ge "$n" ] 2>/dev/null && break
        if ! kill -0 "$runpid" 2>/dev/null; then
          echo "bench.sh: slum run exited before converging:" >&2; cat "$work/run-$n.log" >&2; exit 1
        fi
        sleep 0.1
      done
      seen=$(secs "$start")
      cpu=$(cpusecs "$runpid"); simcpu=$(cpusecs "$simpid")
      # ...and as users see it: every status row reads running.
      while :; do
        running=$("$slum" --db "$db" -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["phases"].get("running",0))')
        [ "$running" -ge "$n" ] && break
        sleep 0.2
      done
      took=$(secs "$start")
      sleep 2 # a few no-op passes
      rss=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$runpid/status")
      hwm=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$runpid/status")
      target=""
      [ "$n" = 100000 ] && target=" (targets: apply < 3 s, re-apply < 1 s, converge < 5 s, peak RSS < 150 MB)"
      perspawn=$(python3 -c "print(f'{$cpu / $n * 1e6:.0f}')"); simper=$(python3 -c "print(f'{$simcpu / $n * 1e6:.0f}')")
      echo "$b instances=$n (load $(load)): slum apply ${apply}s, again ${reapply}s; converged (every server's list, as the controller sees it) in ${seen}s, every status running in ${took}s; CPU until converged: slum run ${cpu}s (${perspawn} µs per instance), the simulators ${simcpu}s (${simper} µs); slum run RSS ${rss} MB, peak ${hwm} MB$target"
      kill "$runpid" "$simpid"; wait "$runpid" "$simpid" 2>/dev/null || true
      rm -f "$db" "$db"-*
      port=$((port + 100))
    done
  done
done
