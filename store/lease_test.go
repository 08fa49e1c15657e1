package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// keeping is an engine that keeps a gone client's transactions, as far as
// the store can tell: it records whose writes it was told to name, and
// ending them fails with end.
type keeping struct {
	store.Engine
	writers []string
	ended   []string
	end     error
}

func (k *keeping) WriteAs(holder string) { k.writers = append(k.writers, holder) }

func (k *keeping) EndWrites(_ context.Context, holder string) (int, error) {
	k.ended = append(k.ended, holder)
	return 0, k.end
}

// On such an engine a holder's writes are named as its own, a live lease
// of another's is left alone (the caller stands by), an expired one's
// holder has its writes ended before the claim, and a failure to end them
// is in the takeover's event, not lost.
func TestTakeoverEndsTheExpiredHoldersWritesFirst(t *testing.T) {
	ctx := context.Background()
	eng, err := sqlite.OpenEngine(ctx, filepath.Join(t.TempDir(), "fleet.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	k := &keeping{Engine: eng, end: errors.New("permission denied to terminate process")}
	now := time.UnixMilli(2_000_000_000_000)
	st := store.NewWithClock(k, func() time.Time { return now })

	if _, err := st.AcquireLease(ctx, slum.ControllerLease, "a", "", 4*time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if _, err := st.AcquireLease(ctx, slum.ControllerLease, "b", "", 4*time.Second); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("b on a's live lease: %v, want a conflict", err)
	}
	if l, err := st.Leadership(ctx, slum.ControllerLease); err != nil || len(l.Standbys) != 1 || l.Standbys[0].Holder != "b" {
		t.Fatalf("leadership %+v %v, want b standing by", l, err)
	}
	if len(k.ended) != 0 {
		t.Fatalf("ended %v while the lease ran, want nothing", k.ended)
	}
	now = now.Add(4 * time.Second)
	l, err := st.AcquireLease(ctx, slum.ControllerLease, "b", "", 4*time.Second)
	if err != nil || l.Holder != "b" || l.Epoch != 2 {
		t.Fatalf("b on a's expired lease: %+v %v, want it at epoch 2", l, err)
	}
	if strings.Join(k.ended, ",") != "a" || strings.Join(k.writers, ",") != "a,b,b" {
		t.Fatalf("ended %v, named %v; want a's writes ended once, each caller's named", k.ended, k.writers)
	}
	evs, err := st.Events(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var took string
	for _, e := range evs {
		if e.Reason == slum.ReasonTookOver {
			took = e.Message
		}
	}
	if !strings.Contains(took, "could not be ended (permission denied to terminate process)") {
		t.Fatalf("takeover event %q, want it to say a's writes could not be ended, and why", took)
	}
}
