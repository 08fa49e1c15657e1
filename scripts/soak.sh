#!/usr/bin/env bash
# The soak run, 'scripts/bench.sh soak' (not in CI): does 'slum run' stay
# flat when it runs for months? It builds slum from this tree, starts one
# 'slum sim' process per simulated server and a real 'slum run' over them,
# then churns the fleet for SLUM_SOAK_DURATION (default 30m) at a steady
# rate through the CLI: every second a tenant added, one removed and one
# moved, every 15 seconds an 'apply -f' that starts or stops 20 instances,
# and every few minutes a server restarted (kill -9 and started again, its
# instances lost) or cut off (SIGSTOP for a while, then SIGCONT: its
# connections hang, then it returns with its instances). It samples the
# controller's RSS (/proc), goroutines and heap in use (its /metrics), open
# files (/proc/PID/fd), the database's size (with its -wal) and the events
# table's rows, and prints them at start, middle and end with a verdict.
#
# The events table is capped (desired.maxEvents); it is filled to the cap
# before the run starts, the state of a controller that has run a while,
# so the run measures the trimming rather than the filling.
#
#   SLUM_SOAK_DURATION  how long to churn: 30m, 3m, 90s, 1h (default 30m)
#   SLUM_SOAK_SERVERS   simulated servers (default 10)
#   SLUM_SOAK_TENANTS   tenants placed before the churn starts (default 1000)
#   SLUM_SOAK_KEEP=1    keep the work directory (logs, database, samples);
#                       it is always kept when the run fails
# Exit status: 0 flat, 1 something grew or the run broke, 2 bad settings.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"

die() { echo "soak: $*" >&2; exit 1; }
usage() { echo "soak: $*" >&2; exit 2; }
for c in go python3; do
  command -v "$c" >/dev/null || die "'$c' is needed and not on PATH"
done
python3 -c 'import sqlite3' 2>/dev/null || die "python3 has no sqlite3 module (it reads the events table)"
[ -r /proc/self/status ] || die "needs Linux /proc (RSS and open files are read there)"

duration=$(python3 -c '
import re, sys
s = sys.argv[1].strip()
m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?|(\d+)", s)
if not s or not m: sys.exit(1)
h, mi, se, bare = (int(g) if g else 0 for g in m.groups())
print(h * 3600 + mi * 60 + se + bare)' "${SLUM_SOAK_DURATION:-30m}") ||
  usage "SLUM_SOAK_DURATION=${SLUM_SOAK_DURATION:-} is not a duration like 30m, 3m, 90s or 1h30m"
servers=${SLUM_SOAK_SERVERS:-10}
tenants=${SLUM_SOAK_TENANTS:-1000}
[[ $servers =~ ^[0-9]+$ ]] && [ "$servers" -ge 4 ] || usage "SLUM_SOAK_SERVERS=$servers: give at least 4 (one is down at a time, and a third down looks like a partition)"
[[ $tenants =~ ^[0-9]+$ ]] && [ "$tenants" -ge 10 ] && [ "$tenants" -le 32767 ] || usage "SLUM_SOAK_TENANTS=$tenants: give 10 to 32767"
[ "$duration" -ge 60 ] || usage "SLUM_SOAK_DURATION is ${duration}s: give at least 1m (the first fifth is warm-up)"
cap=$(sed -n 's/^const maxEvents = \([0-9][0-9]*\)$/\1/p' desired/status.go)
[ -n "$cap" ] || die "cannot find 'const maxEvents = N' in desired/status.go (the event log's cap)"

clamp() { local v=$1; [ "$v" -lt "$2" ] && v=$2; [ "$v" -gt "$3" ] && v=$3; echo "$v"; }
sample_every=$(clamp $((duration / 90)) 2 20)  # about 90 samples
fault_every=$(clamp $((duration / 12)) 20 150) # a dozen faults
cut_for=$(clamp $((fault_every / 2)) 5 30)     # a cut server stays cut this long
down_for=3                                     # a restarted server is down this long
window=100                                     # CLI tenants alive at once
apply_every=15                                 # ticks (seconds) between applies
batch=20                                       # instances each apply starts or stops

work=$(mktemp -d /tmp/slum-soak.XXXXXX)
bin=$work/slum
db=$work/soak.db
runpid=
declare -a simpid simport
cleanup() {
  status=$?
  trap - EXIT INT TERM
  local p pids=()
  for p in "${simpid[@]}" "$runpid"; do
    [ -n "$p" ] || continue
    kill -CONT "$p" 2>/dev/null || true # a cut server must run to see SIGTERM
    kill -TERM "$p" 2>/dev/null && pids+=("$p")
  done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" = 0 ] && [ "${SLUM_SOAK_KEEP:-}" != 1 ]; then
    rm -rf "$work"
  else
    echo "soak: work directory kept: $work (run.log, churn-errors.log, samples.tsv, soak.db)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== soak: slum run, ${servers} simulated servers, ${tenants} tenants, churn for ${duration}s (sample every ${sample_every}s, a fault every ${fault_every}s)"
go build -o "$bin" ./cmd/slum

# Ports below the ephemeral range, so that an outgoing connection cannot
# take a restarted server's port while it is down.
read -r -a ports <<<"$(python3 -c '
import random, socket, sys
n = int(sys.argv[1])
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
found = []
for p in random.sample(range(20000, max(lo, 20001)), min(4000, max(lo, 20001) - 20000)):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        found.append(p)
    except OSError:
        pass
    finally:
        s.close()
    if len(found) == n:
        break
print(*found)' $((servers + 1)))"
[ "${#ports[@]}" = $((servers + 1)) ] || die "found only ${#ports[@]} free ports below the ephemeral range"
metrics=127.0.0.1:${ports[$servers]}
export SLUM_SOAK_TOKEN=soak-token

start_sim() {
  local i=$1
  "$bin" sim --listen "127.0.0.1:${simport[$i]}" --token-env SLUM_SOAK_TOKEN 2>>"$work/sim-$i.log" &
  simpid[$i]=$!
  for _ in $(seq 100); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "${simport[$i]}" 2>/dev/null && return 0
    kill -0 "${simpid[$i]}" 2>/dev/null || break
    sleep 0.05
  done
  die "simulated server s$i did not start on port ${simport[$i]}: $(tail -3 "$work/sim-$i.log")"
}

{
  echo "version: 1"
  echo "servers:"
  for ((i = 0; i < servers; i++)); do
    simport[i]=${ports[$i]}
    echo "  - {id: s$i, url: 'http://127.0.0.1:${simport[$i]}', capacity_mb: 1000000, token_env: SLUM_SOAK_TOKEN}"
  done
  echo "tenants:"
  for ((i = 0; i < tenants; i++)); do
    echo "  - {id: t$i, domain: t$i.soak.test, instances: [{id: prod, process: api, memory_mb: 1}]}"
  done
  for ((i = 1; i <= window; i++)); do # the CLI's tenants, so the churn starts at its steady size
    echo "  - {id: c$i, domain: c$i.soak.test, instances: [{id: prod, process: api, memory_mb: 1}]}"
  done
} >"$work/fleet.yaml"
for ((i = 0; i < servers; i++)); do start_sim "$i"; done

# The applied file names only its own tenants: without --prune the rest
# of the fleet is left alone. Each apply flips their instances' state.
write_apply() {
  local state=$1
  {
    echo "version: 1"
    echo "tenants:"
    for ((i = 0; i < batch; i++)); do
      echo "  - {id: a$i, domain: a$i.soak.test, instances: [{id: prod, process: api, memory_mb: 1, state: $state}]}"
    done
  } >"$work/apply.yaml"
}
write_apply running
"$bin" --db "$db" apply -f "$work/fleet.yaml" >/dev/null
"$bin" --db "$db" apply -f "$work/apply.yaml" >/dev/null

python3 - "$db" "$cap" <<'EOF'
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
con.executemany("INSERT INTO events (at, object, reason, message) VALUES (?, ?, ?, ?)",
                [(now, "soak/prefill", "SoakPrefill", "filler: the log as a controller that has run a while has it")] * int(sys.argv[2]))
con.commit()
EOF

cat >"$work/sample.py" <<'EOF'
# One sample of the controller, as a tab-separated line.
import json, os, sqlite3, subprocess, sys, urllib.request
slum, db, pid, metrics = sys.argv[1:5]
rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
fds = len(os.listdir(f"/proc/{pid}/fd"))
want = {"go_goroutines": None, "go_memstats_heap_inuse_bytes": None}
for line in urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode().splitlines():
    name, _, value = line.partition(" ")
    if name in want:
        want[name] = float(value)
missing = [k for k, v in want.items() if v is None]
if missing:
    sys.exit(f"slum run's /metrics lacks {', '.join(missing)}")
size = lambda p: os.path.getsize(p) if os.path.exists(p) else 0
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
events, = con.execute("SELECT COUNT(*) FROM events").fetchone()
con.close()
st = json.loads(subprocess.run([slum, "--db", db, "-o", "json", "status"], check=True, capture_output=True).stdout)
phases = st.get("phases", {})
behind = st["instances"] - phases.get("running", 0) - phases.get("stopped", 0)
print(rss, int(want["go_goroutines"]), int(want["go_memstats_heap_inuse_bytes"]), fds,
      size(db), size(db + "-wal"), events, st["instances"], behind, sep="\t")
EOF

"$bin" --db "$db" run --metrics-addr "$metrics" --log-level warn 2>"$work/run.log" &
runpid=$!

now_us() { echo "${EPOCHREALTIME/./}"; }
alive() { kill -0 "$runpid" 2>/dev/null || die "slum run exited; the end of its log:
$(tail -20 "$work/run.log")"; }
settle() { # waits until every instance runs or is stopped as desired; prints the seconds it took
  local from limit=$1 out
  from=$(now_us)
  while :; do
    alive
    if out=$(python3 "$work/sample.py" "$bin" "$db" "$runpid" "$metrics" 2>/dev/null) &&
      [ "$(cut -f9 <<<"$out")" = 0 ]; then
      echo $((($(now_us) - from) / 1000000))
      return 0
    fi
    [ $(($(now_us) - from)) -lt $((limit * 1000000)) ] || return 1
    sleep 0.5
  done
}
took=$(settle 180) || die "the initial fleet did not converge within 180s; see $work/run.log"
echo "initial fleet ($((tenants + window + batch)) instances) converged in ${took}s; churning"

printf 't_s\tphase\trss_kb\tgoroutines\theap_inuse\tfds\tdb_bytes\twal_bytes\tevents\tinstances\tbehind\n' >"$work/samples.tsv"
t0=$(now_us)
sample() { # phase label
  local out
  out=$(python3 "$work/sample.py" "$bin" "$db" "$runpid" "$metrics") || die "sampling failed"
  printf '%s\t%s\t%s\n' $((($(now_us) - t0) / 1000000)) "$1" "$out" >>"$work/samples.tsv"
}
rows_of() { # every table's rows, "table n" space-separated
  python3 -c '
import sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
names = [n for n, in con.execute("SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE ? ORDER BY name", ("table", "sqlite_%"))]
print(" ".join("%s %d" % (n, con.execute("SELECT COUNT(*) FROM " + n).fetchone()[0]) for n in names))' "$db" ||
    die "cannot count the tables' rows"
}
sample start
rows_start=$(rows_of)
max_id_start=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT COALESCE(MAX(id),0) FROM events").fetchone()[0])' "$db")

declare -A ops=() fails=()
op() { # kind, CLI arguments...
  local kind=$1 out
  shift
  ops[$kind]=$((${ops[$kind]:-0} + 1))
  if ! out=$("$bin" --db "$db" "$@" 2>&1); then
    fails[$kind]=$((${fails[$kind]:-0} + 1))
    printf '%s %s: slum %s: %s\n' "$(date +%T)" "$kind" "$*" "$out" >>"$work/churn-errors.log"
  fi
}

end=$((t0 + duration * 1000000))
next_tick=$t0
next_sample=$((t0 + sample_every * 1000000))
next_fault=$((t0 + fault_every * 1000000 / 2))
fault_until=0 fault_kind= fault_on= faults=0 restarts=0 cuts=0 n=$window applied=running
while :; do
  now=$(now_us)
  [ "$now" -lt "$end" ] || break
  alive
  if [ "$now" -ge "$next_tick" ]; then
    n=$((n + 1))
    op add tenant add "c$n" --domain "c$n.soak.test" --process api --memory-mb 1
    op remove tenant remove "c$((n - window))"
    op move tenant move "t$((RANDOM % tenants))"
    if [ $((n % apply_every)) = 0 ]; then
      if [ "$applied" = running ]; then applied=stopped; else applied=running; fi
      write_apply "$applied"
      op apply apply -f "$work/apply.yaml"
    fi
    next_tick=$((next_tick + 1000000))
  fi
  if [ -z "$fault_kind" ] && [ "$now" -ge "$next_fault" ]; then
    fault_on=$((faults % servers))
    if [ $((faults % 2)) = 0 ]; then
      fault_kind=restart restarts=$((restarts + 1))
      kill -KILL "${simpid[$fault_on]}"
      wait "${simpid[$fault_on]}" 2>/dev/null || true
      simpid[$fault_on]= # cleanup must not signal its number, which may be another's by then
      fault_until=$((now + down_for * 1000000))
    else
      fault_kind=cut cuts=$((cuts + 1))
      kill -STOP "${simpid[$fault_on]}"
      fault_until=$((now + cut_for * 1000000))
    fi
    faults=$((faults + 1))
    next_fault=$((next_fault + fault_every * 1000000))
  elif [ -n "$fault_kind" ] && [ "$now" -ge "$fault_until" ]; then
    if [ "$fault_kind" = restart ]; then start_sim "$fault_on"; else kill -CONT "${simpid[$fault_on]}"; fi
    fault_kind=
  fi
  for ((i = 0; i < servers; i++)); do
    [ "$fault_kind" = restart ] && [ "$i" = "$fault_on" ] && continue
    kill -0 "${simpid[$i]}" 2>/dev/null || die "simulated server s$i exited on its own: $(tail -3 "$work/sim-$i.log")"
  done
  if [ "$now" -ge "$next_sample" ]; then
    sample churn
    next_sample=$((next_sample + sample_every * 1000000))
  fi
  sleep 0.1
done
if [ -n "$fault_kind" ]; then
  if [ "$fault_kind" = restart ]; then start_sim "$fault_on"; else kill -CONT "${simpid[$fault_on]}"; fi
fi
sample churn
took=$(settle 180) && settled="${took}s" || settled="not within 180s"
sample settled
rows_end=$(rows_of)
max_id_end=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT COALESCE(MAX(id),0) FROM events").fetchone()[0])' "$db")

summary="churn: $((n - window)) ticks;"
for k in add remove move apply; do summary+=" $k ${ops[$k]:-0} (${fails[$k]:-0} failed)"; done
summary+="; faults: $restarts restarts (down ${down_for}s), $cuts cuts (SIGSTOP ${cut_for}s)"
summary+="; events written: $((max_id_end - max_id_start)) ($(python3 -c "print(f'{($max_id_end - $max_id_start) / $duration:.1f}')")/s, cap $cap)"
summary+="; after the churn stopped the fleet settled in $settled"
summary+=$'\nrows per table, start -> settled:'$(python3 -c '
import sys
a, b = (dict(zip(s.split()[::2], map(int, s.split()[1::2]))) for s in sys.argv[1:3])
print(",".join(f" {n} {a.get(n, 0)}" + (f" -> {b[n]}" if b[n] != a.get(n, 0) else "") for n in b))' "$rows_start" "$rows_end")
[ -s "$work/churn-errors.log" ] &&
  summary+="; churn errors, most common: $(sed -E 's/^[0-9:]+ //; s/[0-9]+/N/g' "$work/churn-errors.log" | sort | uniq -c | sort -rn | head -5 | tr -s ' \n' ' ')"
ops_total=0 fails_total=0
for k in "${!ops[@]}"; do ops_total=$((ops_total + ops[$k])); fails_total=$((fails_total + ${fails[$k]:-0})); done

python3 - "$work/samples.tsv" "$cap" "$summary" "$ops_total" "$fails_total" "${settled}" <<'EOF'
import statistics, sys
path, cap, summary, ops, fails, settled = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rows = [l.rstrip("\n").split("\t") for l in open(path)]
head, rows = rows[0], rows[1:]
col = {h: i for i, h in enumerate(head)}
val = lambda r, h: float(r[col[h]]) if h != "phase" else r[col[h]]
churn = [r for r in rows if r[col["phase"]] == "churn"]
settled_rows = [r for r in rows if r[col["phase"]] == "settled"]
MB = 1024 * 1024
show = [  # name, how to read it, unit shown
    ("RSS", lambda r: val(r, "rss_kb") / 1024, "MB"),
    ("heap in use", lambda r: val(r, "heap_inuse") / MB, "MB"),
    ("goroutines", lambda r: val(r, "goroutines"), ""),
    ("open files", lambda r: val(r, "fds"), ""),
    ("db + wal", lambda r: (val(r, "db_bytes") + val(r, "wal_bytes")) / MB, "MB"),
    ("events rows", lambda r: val(r, "events"), ""),
]
def fmt(v, unit):
    return f"{v:.1f}" if unit == "MB" else f"{v:.0f}"
picks = [("start", rows[0]), ("middle", churn[len(churn) // 2]), ("end", churn[-1])]
if settled_rows:
    picks.append(("settled", settled_rows[-1]))
print()
print(f"{'':10}{'t':>7}" + "".join(f"{n + (' ' + u if u else ''):>16}" for n, _, u in show) + f"{'instances':>11}{'behind':>8}")
for label, r in picks:
    print(f"{label:10}{val(r, 't_s'):>6.0f}s" + "".join(f"{fmt(f(r), u):>16}" for _, f, u in show)
          + f"{val(r, 'instances'):>11.0f}{val(r, 'behind'):>8.0f}")
# The verdict: the first fifth of the churn is warm-up (pools, caches and
# the heap reach their working size); the rest is cut in halves, and the
# median of the second half must be within tolerance of the first's.
# Medians, because a sample that lands on a fault or a GC cycle is an
# outlier; halves, because start against end alone is two noisy points.
# A leak of a few bytes, a goroutine or a file per operation would show as
# thousands over this churn; the tolerances sit above the noise of a
# healthy run (GC sawtooth, calls in flight, a hung server's connections).
tol = {  # metric: (relative, absolute floor), the larger applies
    "RSS": (0.05, 2.0), "heap in use": (0.10, 1.0), "goroutines": (0.10, 10),
    "open files": (0.10, 5), "db + wal": (0.10, 0.5), "events rows": (0.0, 0),
}
post = churn[len(churn) // 5:]
first, second = post[: len(post) // 2], post[len(post) // 2:]
hours = (val(post[-1], "t_s") - val(post[0], "t_s")) / 3600 or 1
print(f"\nverdict: medians of the two halves of the churn after {val(post[0], 't_s'):.0f}s of warm-up "
      f"({len(first)} and {len(second)} samples); slope over the same span")
grew = []
for name, f, unit in show:
    a = statistics.median(f(r) for r in first)
    b = statistics.median(f(r) for r in second)
    xs = [val(r, "t_s") for r in post]; ys = [f(r) for r in post]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (sum((x - mx) ** 2 for x in xs) or 1) * 3600
    rel, floor = tol[name]
    allowed = max(a * rel, floor)
    if name == "events rows":
        ok = max(ys) <= cap + 1000  # the controller trims on its next report; the CLI's events wait for it
        why = f"max {max(ys):.0f}, capped at {cap} (+1000 for CLI events between trims)"
    else:
        ok = b - a <= allowed
        why = f"allowed +{fmt(allowed, unit)}{' ' + unit if unit else ''}"
    print(f"  {name:12} {fmt(a, unit):>9} -> {fmt(b, unit):>9} {unit:2}  {b - a:+9.1f}  slope {slope:+9.1f}/h  "
          f"{'flat' if ok else 'GROWING'} ({why})")
    if not ok:
        grew.append(name)
print(summary)
bad = []
if grew:
    bad.append("grew: " + ", ".join(grew))
if ops and fails > ops * 0.05:
    bad.append(f"{fails} of {ops} churn commands failed")
if settled.startswith("not"):
    bad.append("the fleet did not settle after the churn")
print("SOAK: " + ("FLAT" if not bad else "FAILED: " + "; ".join(bad)))
sys.exit(1 if bad else 0)
EOF
