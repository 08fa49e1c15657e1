package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slum-fleet/slum"
)

// LeaseName is the lease a running controller holds on its database.
const LeaseName = "controller"

// LeaseStore is what HoldLease needs of the desired state.
type LeaseStore interface {
	AcquireLease(ctx context.Context, name, holder, deadHolder string, ttl time.Duration) (slum.Lease, error)
	GetLease(ctx context.Context, name string) (slum.Lease, error)
	ReleaseLease(ctx context.Context, f slum.Fence) error
}

// Holder names this process as a lease holder: host/pid/nonce.
func Holder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// deadHolder reports whether holder is a process of this host that no
// longer runs (a controller killed with SIGKILL), whose lease need not be
// waited out.
func deadHolder(holder string) bool {
	parts := strings.Split(holder, "/")
	if len(parts) != 3 {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if parts[0] != host || err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// ErrLeaseLost: another controller took the lease, or it could not be
// renewed in time; this one must stop acting.
var ErrLeaseLost = errors.New("lost the controller lease")

// HoldLease takes the controller lease and keeps renewing it (every
// ttl/3). It returns the lease (its Fence goes on every write the
// controller makes), a context that ends when ctx does or the lease is lost
// (context.Cause is then ErrLeaseLost), and release, which gives the lease
// up.
func HoldLease(ctx context.Context, store LeaseStore, holder string, ttl time.Duration, log *slog.Logger) (slum.Lease, context.Context, func(), error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lease, err := store.AcquireLease(ctx, LeaseName, holder, "", ttl)
	if err != nil {
		cur, gerr := store.GetLease(ctx, LeaseName)
		if gerr != nil || !deadHolder(cur.Holder) {
			return slum.Lease{}, nil, nil, fmt.Errorf("another slum run is active on this database: %w", err)
		}
		log.Warn("taking over the lease of a controller that is gone", "holder", cur.Holder)
		if lease, err = store.AcquireLease(ctx, LeaseName, holder, cur.Holder, ttl); err != nil {
			return slum.Lease{}, nil, nil, fmt.Errorf("another slum run is active on this database: %w", err)
		}
	}
	lctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			l, err := store.AcquireLease(lctx, LeaseName, holder, "", ttl)
			switch {
			case err == nil && l.Epoch != lease.Epoch:
				// Someone held it in between: whatever this controller
				// writes now is fenced anyway.
				err = fmt.Errorf("%w: the lease changed hands (epoch %d, now %d)", slum.ErrConflict, lease.Epoch, l.Epoch)
			case err == nil:
				last = time.Now()
				continue
			}
			if lctx.Err() != nil {
				return
			}
			// A busy database may delay a renewal; the lease is lost
			// only when it could have expired.
			if errors.Is(err, slum.ErrConflict) || time.Since(last) > ttl*2/3 {
				log.Error("lost the controller lease", "err", err)
				cancel(fmt.Errorf("%w: %v", ErrLeaseLost, err))
				return
			}
			log.Warn("lease renewal failed; retrying", "err", err)
		}
	}()
	release := func() {
		cancel(nil)
		<-done
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := store.ReleaseLease(rctx, lease.Fence()); err != nil {
			log.Warn("could not release the controller lease", "err", err)
		}
	}
	return lease, lctx, release, nil
}
