package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/internal/pgtest"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/store"
)

// openWritePort is the Postgres port of TestStandbyLeadsPastALeadersOpenWrite.
const openWritePort = 25434

// A leader cut off in the middle of a write leaves it open on the server,
// holding the fleet's write lock, for as long as the server takes to give
// up on the connection (25-30 s: keepalives over a cut link, the idle
// timeout here). A `slum run` standing by, as a user starts it, stands by
// without waiting for that write, and takes the lease when it expires: it
// ends the old holder's open write (the TookOver event says so) and leads;
// the old write is rolled back.
func TestStandbyLeadsPastALeadersOpenWrite(t *testing.T) {
	pg := pgtest.ServeTCP(t, []string{"127.0.0.1"}, openWritePort, "127.0.0.1/32")
	url := pg.URL("127.0.0.1")
	ctx := context.Background()
	eng, err := postgres.OpenEngine(ctx, url, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() }) // after the held write is released
	st := store.New(eng)
	const cutOff = "elsewhere/1/cut"
	// Long enough for slum run to start and stand by on a busy machine.
	lease, err := st.AcquireLease(ctx, slum.ControllerLease, cutOff, "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rev0, err := eng.Read().GetRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := fleettest.HoldWrite(t, ctx, eng) // the leader, cut off mid-write

	run := startRunProc(t, filepath.Join(t.TempDir(), "run.log"), []string{"SLUM_DB=", "SLUM_DB_URL=" + url},
		"run", "--metrics-addr", "", "--route-addr", "", "--log-level", "debug")
	defer func() {
		run.stop(syscall.SIGTERM)
		if t.Failed() {
			b, _ := os.ReadFile(run.log)
			t.Logf("slum run's log (tail):\n%s", tail(strings.ReplaceAll(string(b), pg.Password, "xxxxx"), 40))
		}
	}()

	var l slum.Leadership
	for l.Leader == cutOff && len(l.Standbys) == 0 || l.Leader == "" {
		if time.Now().After(lease.ExpiresAt) {
			t.Fatalf("slum run did not stand by while the lease ran (it waited for the open write?): %+v", l)
		}
		l, _ = st.Leadership(ctx, slum.ControllerLease)
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		if l, err = st.Leadership(ctx, slum.ControllerLease); err == nil && l.Live && l.Leader != cutOff {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l.Leader == cutOff || !l.Live {
		t.Fatalf("slum run never led past the cut-off leader's open write: %+v", l)
	}
	after := time.Since(lease.ExpiresAt)
	figure(t, "standby leads past the cut-off leader's open write (from its lease's expiry)", after)
	if after > 3*time.Second {
		t.Errorf("slum run led %s after the cut-off leader's lease expired, want within 3 s (it waited for the open write)", after.Round(time.Millisecond))
	}
	if err := held.Release(); err == nil {
		t.Error("the cut-off leader's write committed after slum run took the lease")
	}
	if rev, err := eng.Read().GetRevision(ctx); err != nil || rev != rev0 {
		t.Errorf("revision %d (%v), want %d: the cut-off leader's write landed", rev, err, rev0)
	}
	evs, err := st.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, e := range evs {
		if e.Reason == slum.ReasonTookOver {
			said = append(said, e.Message)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "ended 1 of its sessions with a write open") {
		t.Errorf("takeover events %q, want one that says it ended the open write", said)
	}
}
