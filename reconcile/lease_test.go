package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestHoldLease(t *testing.T) {
	f := newFixture(t, 0, testConfig())
	if err := f.store.ReleaseLease(f.ctx, f.lease.Fence()); err != nil {
		t.Fatal(err)
	}
	lease, ctx, release, err := HoldLease(f.ctx, f.store, "host/1/a", 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := HoldLease(f.ctx, f.store, "host/2/b", 300*time.Millisecond, nil); err == nil {
		t.Fatal("a second controller got the lease")
	}
	// Renewals keep it past its ttl.
	time.Sleep(500 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("lease lost while renewed: %v", context.Cause(ctx))
	}
	// Someone takes it (as from a dead holder): the holder stops acting.
	if _, err := f.store.AcquireLease(f.ctx, LeaseName, "host/3/c", "host/1/a", time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), ErrLeaseLost) {
			t.Fatalf("cause %v", context.Cause(ctx))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the holder did not notice it lost the lease")
	}
	release()
	l, err := f.store.GetLease(f.ctx, LeaseName)
	if err != nil || l.Holder != "host/3/c" || l.Epoch != lease.Epoch+1 {
		t.Fatalf("release by the old holder touched the new lease: %+v (was epoch %d) %v", l, lease.Epoch, err)
	}
}

func TestDeadHolder(t *testing.T) {
	if deadHolder(Holder()) {
		t.Fatal("this process is dead?")
	}
	for _, h := range []string{"", "x", "otherhost/1/a", "host/notapid/a"} {
		if deadHolder(h) {
			t.Fatalf("%q counted as dead", h)
		}
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if !deadHolder(fmt.Sprintf("%s/%d/x", host, gone.Process.Pid)) {
		t.Fatal("a finished process of this host is not counted as dead")
	}
}
