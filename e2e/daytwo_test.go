package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

// Six tenants on three servers; a, b and c have a warm spare.
const dayTwoTenants = `  - {id: a, domain: a.example.com, instances: [{id: prod, process: api, server: s1}, {id: backup, process: api, server: s2}]}
  - {id: b, domain: b.example.com, instances: [{id: prod, process: api, server: s2}, {id: backup, process: api, server: s3}]}
  - {id: c, domain: c.example.com, instances: [{id: prod, process: api, server: s3}, {id: backup, process: api, server: s1}]}
  - {id: d, domain: d.example.com, instances: [{id: prod, process: api, server: s1}]}
  - {id: e, domain: e.example.com, instances: [{id: prod, process: api, server: s2}]}
  - {id: f, domain: f.example.com, instances: [{id: prod, process: api, server: s3}]}
`

var (
	dayTwoConverged = map[string][]string{"s1": {"api:a--prod", "api:c--backup", "api:d--prod"},
		"s2": {"api:a--backup", "api:b--prod", "api:e--prod"}, "s3": {"api:b--backup", "api:c--prod", "api:f--prod"}}
	withSpare = []string{"a", "b", "c"}
)

// tenantLoad sends a request to every tenant through the router every
// 20 ms, each on its own (one that hangs holds up no other; at most three
// at once per tenant, so hung ones do not swamp the machine), recording
// each tenant's failures and its longest gap: from the sending of a
// request that failed to that of the next one answered.
type tenantLoad struct {
	mu     sync.Mutex
	failed map[string]int
	sent   map[string]int
	gap    map[string]time.Duration
	sends  map[string][]send
	why    []string // each failure: tenant, when, what
	stop   chan struct{}
	wg     sync.WaitGroup
}

type send struct {
	at time.Time
	ok bool
}

func startTenantLoad(router string, tenants []string) *tenantLoad {
	l := &tenantLoad{failed: map[string]int{}, sent: map[string]int{}, gap: map[string]time.Duration{}, sends: map[string][]send{},
		stop: make(chan struct{})}
	for _, tn := range tenants {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var inFlight sync.WaitGroup
			defer inFlight.Wait()
			slots := make(chan struct{}, 3)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				select {
				case slots <- struct{}{}:
				default:
					continue // three still hang: this tick sends nothing
				}
				inFlight.Add(1)
				go func(sent time.Time) {
					defer func() { <-slots; inFlight.Done() }()
					a := through(router, tn+".example.com")
					ok := a.status == 200 && a.err == nil && strings.HasPrefix(a.tenant, tn+"--")
					l.mu.Lock()
					defer l.mu.Unlock()
					l.sent[tn]++
					l.sends[tn] = append(l.sends[tn], send{sent, ok})
					if !ok {
						l.failed[tn]++
						l.why = append(l.why, fmt.Sprintf("%s sent %s, after %s: %d %v", tn, sent.Format("15:04:05.000"), time.Since(sent).Round(time.Millisecond), a.status, a.err))
					}
				}(time.Now())
			}
		}()
	}
	return l
}

// end stops the load and works out each tenant's longest gap.
func (l *tenantLoad) end() {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for tn, ss := range l.sends {
		slices.SortFunc(ss, func(a, b send) int { return a.at.Compare(b.at) })
		var failingSince time.Time
		for _, s := range ss {
			switch {
			case !s.ok && failingSince.IsZero():
				failingSince = s.at
			case s.ok && !failingSince.IsZero():
				l.gap[tn] = max(l.gap[tn], s.at.Sub(failingSince))
				failingSince = time.Time{}
			}
		}
		if !failingSince.IsZero() {
			l.gap[tn] = max(l.gap[tn], ss[len(ss)-1].at.Sub(failingSince))
		}
	}
}

// remote makes an admin token for the controller's API and returns a
// slum that reaches the fleet through the API alone.
func (e *env) remote(apiAddr string) func(args ...string) string {
	tok := filepath.Join(e.dir, "admin.token")
	e.slum("token", "create", "--role", "admin", "--name", "e2e", "--out", tok)
	return func(args ...string) string {
		e.t.Helper()
		cmd := exec.Command(slumBin, append([]string{"--api", "http://" + apiAddr, "--api-token-file", tok}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			e.t.Fatalf("slum %s (through the API): %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
}

// TestRollingRestart restarts every copy of six tenants on three real
// tenement servers, through the fleet API, under steady load through the
// router: tenants with a warm spare lose no request; each of the others
// is down no longer than its copy's restart.
func TestRollingRestart(t *testing.T) {
	e := newEnv(t)
	router, apiAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", dayTwoTenants))
	e.startRun("--route-addr", router, "--api-addr", apiAddr)
	e.converge(dayTwoConverged, 60*time.Second)
	tenants := []string{"a", "b", "c", "d", "e", "f"}
	for _, tn := range tenants {
		eventually(t, 10*time.Second, tn+" served through the router", func() bool { return through(router, tn+".example.com").status == 200 })
	}
	remote := e.remote(apiAddr)
	var plan slum.Rollout
	if out := remote("-o", "json", "restart", "--all", "--dry-run"); json.Unmarshal([]byte(out), &plan) != nil || len(plan.Steps) != 9 {
		t.Fatalf("the dry run:\n%s", out)
	}
	// Each tenant's serving copy comes after its others.
	servedAt := map[string]int{}
	for i, s := range plan.Steps {
		if j, ok := servedAt[s.Instance.Tenant()]; ok {
			t.Fatalf("%s is restarted after %s's serving copy (step %d): %+v", s.Instance, s.Instance.Tenant(), j+1, plan.Steps)
		}
		if s.Serving {
			servedAt[s.Instance.Tenant()] = i
		}
	}

	l := startTenantLoad(router, tenants)
	time.Sleep(time.Second)
	start := time.Now()
	out := remote("-o", "json", "restart", "--all")
	took := time.Since(start)
	time.Sleep(time.Second)
	l.end()
	var r slum.Rollout
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.State != slum.RolloutDone || r.Counts()[slum.StepDone] != 9 {
		t.Fatalf("rollout %s: %s\n%s", r.State, r.Message, out)
	}
	figure(t, "rolling restart: 9 copies of 6 tenants, one at a time", took)
	restartOf := map[string]time.Duration{}
	for _, s := range r.Steps {
		d := s.FinishedAt.Sub(s.StartedAt)
		restartOf[s.Instance.Tenant()] = max(restartOf[s.Instance.Tenant()], d)
		figure(t, fmt.Sprintf("rolling restart: %s restarted and healthy", s.Instance), d)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("requests sent %v, failed %v, longest gaps %v; failures: %v", l.sent, l.failed, l.gap, l.why)
	for _, tn := range tenants {
		if slices.Contains(withSpare, tn) {
			fmt.Printf("e2e figure: %-60s %6d of %d\n", "rolling restart: failed requests of "+tn+" (warm spare)", l.failed[tn], l.sent[tn])
			if l.failed[tn] != 0 {
				t.Errorf("%s has a warm spare, yet %d of %d requests failed during the restart", tn, l.failed[tn], l.sent[tn])
			}
			continue
		}
		figure(t, "rolling restart: longest gap of "+tn+" (one copy)", l.gap[tn])
		// The gap is measured between requests sent 20 ms apart.
		if l.gap[tn] > restartOf[tn]+100*time.Millisecond {
			t.Errorf("%s was down %v, longer than its copy's restart (%v)", tn, l.gap[tn], restartOf[tn])
		}
	}
	ev := e.slum("events")
	for _, want := range []string{"RolloutStarted", "Restarted", "RolloutDone"} {
		if !strings.Contains(ev, want) {
			t.Errorf("no %s event:\n%s", want, tail(ev, 20))
		}
	}
}

// TestRollingRestartHalts: the copies of a hung server do not come back;
// the rollout halts on the first, leaves the rest untouched and exits 1.
func TestRollingRestartHalts(t *testing.T) {
	e := newEnv(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", dayTwoTenants))
	e.slum("settings", "set", "--dead-after", "30") // s1 hangs, and is not failed over meanwhile
	e.startRun()
	e.converge(dayTwoConverged, 60*time.Second)
	if err := e.member("s1").Ten.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer e.member("s1").Ten.Signal(syscall.SIGCONT)
	out, err := e.try("restart", "--server", "s1", "--timeout", "2s")
	if err == nil || !strings.Contains(out, "halted") {
		t.Fatalf("a restart on a dead server: %v\n%s", err, out)
	}
	status := e.slum("restart", "--status")
	if !strings.Contains(status, "failed") || !strings.Contains(status, "pending") {
		t.Fatalf("after the halt:\n%s", status)
	}
	t.Logf("halted as expected:\n%s\n%s", out, status)
}

// TestRebalanceAfterFailover: s1 dies, its copies fail over and stay
// (failback: stay); once s1 is back and stable, 'slum rebalance --apply'
// returns the fleet to within one instance of even, make-before-break,
// under steady load: tenants with a warm spare lose no request.
func TestRebalanceAfterFailover(t *testing.T) {
	e := newEnv(t)
	router := "127.0.0.1:" + freePort(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", dayTwoTenants))
	e.slum("settings", "set", "--stable-after", "3s")
	e.startRun("--route-addr", router)
	e.converge(dayTwoConverged, 60*time.Second)
	s1 := e.member("s1")
	s1.Ten.Kill()
	eventually(t, 30*time.Second, "s1's copies failed over", func() bool {
		n2, _ := e.running("s2")
		n3, _ := e.running("s3")
		return len(n2)+len(n3) == 9
	})
	if err := s1.Ten.Launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.store()
	eventually(t, 30*time.Second, "s1 back online", func() bool { return serverStatus(t, st, "s1").Health == slum.HealthOnline })
	time.Sleep(4 * time.Second) // stable_after
	e.converge(map[string][]string{"s1": {}}, 30*time.Second)
	before := e.slum("rebalance")
	t.Logf("the plan:\n%s", before)

	l := startTenantLoad(router, []string{"a", "b", "c", "d", "e", "f"})
	copies := watchCopies(e, l.stop)
	time.Sleep(time.Second)
	start := time.Now()
	out := e.slum("rebalance", "--apply")
	figure(t, "rebalance --apply: every moved copy running at its new server", time.Since(start))
	eventually(t, 30*time.Second, "the old copies stopped", func() bool {
		total := 0
		for _, id := range []string{"s1", "s2", "s3"} {
			n, _ := e.running(id)
			total += len(n)
		}
		return total == 9
	})
	time.Sleep(time.Second)
	l.end()
	t.Logf("%s", out)
	counts := []int{}
	for _, id := range []string{"s1", "s2", "s3"} {
		n, _ := e.running(id)
		counts = append(counts, len(n))
	}
	fmt.Printf("e2e figure: %-60s %v\n", "rebalance: instances per server after", counts)
	if slices.Max(counts)-slices.Min(counts) > 1 {
		t.Errorf("after the rebalance the servers run %v instances: not within one of even", counts)
	}
	copies.check(t)
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("requests sent %v, failed %v; failures: %v", l.sent, l.failed, l.why)
	for _, tn := range withSpare {
		fmt.Printf("e2e figure: %-60s %6d of %d\n", "rebalance: failed requests of "+tn+" (warm spare)", l.failed[tn], l.sent[tn])
		if l.failed[tn] != 0 {
			t.Errorf("%s has a warm spare, yet %d requests failed during the rebalance", tn, l.failed[tn])
		}
	}
	for _, tn := range []string{"d", "e", "f"} {
		fmt.Printf("e2e figure: %-60s %6d of %d\n", "rebalance: failed requests of "+tn+" (one copy)", l.failed[tn], l.sent[tn])
	}
}

// copyWatch polls what every server runs, to tell make-before-break: a
// copy that leaves a server while no other server runs it was broken
// before it was made.
type copyWatch struct {
	mu     sync.Mutex
	broken []string
	done   chan struct{}
}

func watchCopies(e *env, stop <-chan struct{}) *copyWatch {
	w := &copyWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		prev := map[string]int{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			now := map[string]int{}
			for _, id := range []string{"s1", "s2", "s3"} {
				names, err := e.running(id)
				if err != nil {
					continue
				}
				for _, n := range names {
					now[n]++
				}
			}
			for n, c := range prev {
				if c > 0 && now[n] == 0 {
					w.mu.Lock()
					w.broken = append(w.broken, n)
					w.mu.Unlock()
				}
			}
			prev = now
		}
	}()
	return w
}

func (w *copyWatch) check(t *testing.T) {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.broken) > 0 {
		t.Errorf("copies ran nowhere for a moment during the rebalance (break before make): %v", w.broken)
	}
}
