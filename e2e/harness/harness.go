// Package harness runs real tenement servers for slum's contract and
// end-to-end tests, on top of package localfleet: it fails a test in CI when
// `ten` is missing and skips it, loudly, elsewhere.
package harness

import (
	"context"
	"os"
	"testing"

	"github.com/slum-fleet/slum/localfleet"
)

// RequireTen returns the ten binary. In CI (CI set) a missing binary fails
// the test; elsewhere the test is skipped, loudly.
func RequireTen(t testing.TB) string {
	t.Helper()
	p, err := localfleet.FindTen()
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI requires real tenement: %v", err)
	}
	t.Skipf("SKIPPING REAL-TENEMENT TEST (allowed outside CI only): %v", err)
	return ""
}

// RequireNetns fails (in CI) or skips a test that cannot make network
// namespaces here.
func RequireNetns(t testing.TB) {
	t.Helper()
	if err := localfleet.CanNetns(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI requires network namespaces for the real-tenement tests: %v", err)
		}
		t.Skipf("SKIPPING NETWORK-NAMESPACE TEST (allowed outside CI only): %v", err)
	}
}

// Options describe a test's tenement server.
type Options struct {
	Port     int
	Services []localfleet.Service
}

// Start runs a real tenement server on the host's loopback for the test's
// duration.
func Start(t testing.TB, opt Options) *localfleet.Ten {
	t.Helper()
	RequireTen(t)
	s, err := localfleet.StartTen(context.Background(), localfleet.TenOptions{Dir: t.TempDir(), Port: opt.Port, Services: opt.Services})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
