package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/store"
)

// standbyTenants: alice with a warm spare, bob and carol on one server
// each, so every tenant's copies run on servers that stay healthy.
const standbyTenants = `  - {id: alice, domain: alice.example.com, instances: [{id: prod, process: api, server: s1}, {id: backup, process: api, server: s2}]}
  - {id: bob, domain: bob.example.com, instances: [{id: prod, process: api, server: s2}]}
  - {id: carol, domain: carol.example.com, instances: [{id: prod, process: api, server: s3}]}
`

// metricsOf reads a /readyz or /metrics page of the controller.
func metricsOf(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// leading reports whether the controller whose metrics are at base
// leads, by its /readyz.
func leading(base string) bool {
	code, body := metricsOf(base + "/readyz")
	return code == 200 && strings.Contains(body, "leading")
}

// immutable makes the database files immutable (chattr +i), which makes
// every write of SQLite's fail even for root (who ignores file modes), or
// writable again. A test that needs it fails in CI where it cannot.
func immutable(t *testing.T, on bool, files ...string) {
	t.Helper()
	flag := "-i"
	if on {
		flag = "+i"
	}
	var present []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			present = append(present, f)
		}
	}
	out, err := exec.Command("chattr", append([]string{flag}, present...)...).CombinedOutput()
	if err == nil {
		return
	}
	if !on {
		t.Errorf("chattr -i: %v: %s", err, out)
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI requires chattr +i on the test's file system (root, ext4 or the like): %v: %s", err, out)
	}
	t.Skipf("SKIPPING: chattr +i is needed to make the database read-only for root: %v: %s", err, out)
}

// controllerLease reads the lease from the database (zero when it cannot).
func controllerLease(st *store.Store) slum.Lease {
	l, _ := st.GetLease(context.Background(), slum.ControllerLease)
	return l
}
