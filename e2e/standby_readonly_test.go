package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// readOnlyFor is how long TestDatabaseReadOnlyUnderLoad keeps the
// database read-only (SLUM_E2E_READONLY, default 60s).
func readOnlyFor(t *testing.T) time.Duration {
	if v := os.Getenv("SLUM_E2E_READONLY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SLUM_E2E_READONLY: %v", err)
		}
		return d
	}
	return 60 * time.Second
}

// The database goes read-only under a running 'slum run --route-addr' with
// steady traffic: the controller stands by (says so on /readyz and in its
// metrics, and 'slum status' says no controller leads), its router keeps
// answering every request, and once the database is writable again it
// leads and acts again by itself, without a restart.
func TestDatabaseReadOnlyUnderLoad(t *testing.T) {
	e := newEnv(t)
	router, metrics := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", standbyTenants))
	e.startRun("--route-addr", router, "--metrics-addr", metrics, "--access-log=false")
	base := "http://" + metrics
	e.converge(map[string][]string{"s1": {"api:alice--prod"}, "s2": {"api:alice--backup", "api:bob--prod"}, "s3": {"api:carol--prod"}}, 60*time.Second)
	eventually(t, 10*time.Second, "leading and ready", func() bool { return leading(base) })

	stop := make(chan struct{})
	loads := map[string]*load{}
	var waits []func()
	for _, tenant := range []string{"alice", "bob", "carol"} {
		eventually(t, 10*time.Second, tenant+" routed", func() bool { return through(router, tenant+".example.com").status == 200 })
		l, wg := startLoad(router, tenant+".example.com", stop)
		loads[tenant], waits = l, append(waits, wg.Wait)
	}
	time.Sleep(time.Second)

	files := []string{e.db, e.db + "-wal"}
	immutable(t, true, files...)
	readOnly := time.Now()
	writable := false
	defer func() {
		if !writable {
			immutable(t, false, files...)
		}
	}()
	took := eventually(t, 10*time.Second, "standing by, saying the database is read-only", func() bool {
		code, body := metricsOf(base + "/readyz")
		return code == 503 && strings.Contains(body, "standby") && strings.Contains(body, "read-only")
	})
	figure(t, "database read-only: the controller stands by", took)
	if _, m := metricsOf(base + "/metrics"); !strings.Contains(m, "slum_controller_leader 0") || !strings.Contains(m, "slum_controller_database_ok 0") {
		t.Errorf("the metrics do not say it stands by on a bad database")
	}
	if out, err := e.try("tenant", "add", "late", "--domain", "late.example.com", "--process", "api"); err == nil {
		t.Errorf("a write to the read-only database succeeded: %s", out)
	}
	eventually(t, 5*time.Second, "slum status says the lease holder stands by", func() bool {
		out, _ := e.try("status")
		return strings.Contains(out, "BUT IT STANDS BY") && strings.Contains(out, "read-only")
	})
	eventually(t, 30*time.Second, "slum status says no controller leads", func() bool {
		out, _ := e.try("status")
		return strings.Contains(out, "NO LIVE LEADER")
	})
	time.Sleep(time.Until(readOnly.Add(readOnlyFor(t))))

	immutable(t, false, files...)
	writable = true
	back := time.Now()
	eventually(t, 5*time.Second, "leading again", func() bool { return leading(base) })
	led := time.Since(back)
	figure(t, "database writable again: leading again", led)
	e.slum("tenant", "add", "dave", "--domain", "dave.example.com", "--process", "api", "--server", "s3")
	eventually(t, 20*time.Second, "dave spawned", func() bool {
		names, _ := e.running("s3")
		return slices.Contains(names, "api:dave--prod")
	})
	acted := time.Since(back)
	figure(t, "database writable again: a tenant added then runs (from writable)", acted)
	if led > 2*time.Second {
		t.Errorf("led again %v after the database was writable, want within 2s", led)
	}
	eventually(t, 10*time.Second, "dave routed", func() bool { return through(router, "dave.example.com").status == 200 })
	close(stop)
	for _, w := range waits {
		w()
	}
	for tenant, l := range loads {
		fmt.Printf("e2e figure: %-60s %6d\n", fmt.Sprintf("read-only %s: %s failed requests (of %d)", readOnlyFor(t), tenant, sum(l.by)), l.failed.Load())
		if n := l.failed.Load(); n != 0 {
			t.Errorf("%s: %d of %d requests failed while the database was read-only: %v", tenant, n, sum(l.by), l.by)
		}
	}
}
