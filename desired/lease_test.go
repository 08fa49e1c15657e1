package desired

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLease(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	now := time.UnixMilli(1_000_000)
	s.now = func() time.Time { return now }

	if _, err := s.AcquireLease(ctx, "controller", "a", "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "controller", "a", "", 10*time.Second); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	_, err := s.AcquireLease(ctx, "controller", "b", "", 10*time.Second)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "a holds the controller lease for 10s more") {
		t.Fatalf("second holder: %v", err)
	}
	// A holder known to be dead is replaced at once.
	if _, err := s.AcquireLease(ctx, "controller", "b", "a", 10*time.Second); err != nil {
		t.Fatalf("takeover from a dead holder: %v", err)
	}
	// An expired lease is free.
	now = now.Add(11 * time.Second)
	if _, err := s.AcquireLease(ctx, "controller", "c", "", 10*time.Second); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if l, err := s.GetLease(ctx, "controller"); err != nil || l.Holder != "c" {
		t.Fatalf("lease %+v %v", l, err)
	}
	// Releasing someone else's lease does nothing; one's own frees it.
	if err := s.ReleaseLease(ctx, "controller", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLease(ctx, "controller"); err != nil {
		t.Fatal("released by a non-holder")
	}
	if err := s.ReleaseLease(ctx, "controller", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLease(ctx, "controller"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after release: %v", err)
	}
}
