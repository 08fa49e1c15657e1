// Package guard is the supervisor slum ships for a replicated tenant, run
// by the tenant's tenement service as `slum guard -- APP...`. It holds the
// tenant's single-writer lease on the replica store (package
// replica/lease), makes the local SQLite database the newest (restoring it
// with Litestream when another copy wrote since), then runs the app and
// `litestream replicate` as two children:
//
//   - It renews the lease every TTL/4. When it cannot renew by the renew
//     deadline (shorter than the TTL another copy waits out) it kills
//     Litestream and freezes the app (SIGSTOP, its whole tree), so this
//     copy neither writes the replica nor acknowledges a write another
//     copy could never see; once a renewal of its unchanged lease
//     succeeds again it resumes the app and restarts Litestream.
//   - When it learns that another copy holds the lease, or that the lease
//     was revoked, it kills Litestream and the app at once and exits with
//     ExitFenced; a revocation of its own lease it confirms once both are
//     gone, writing the lease released, so the next copy takes it at once.
//   - On SIGTERM, when the app exits, when an observer asks for a handover,
//     and when its parent (tenement's `ten`) dies, it stops the app, lets
//     Litestream send what it has not, and writes the lease released, so a
//     replacement takes over at once.
package guard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/litestream"
	"github.com/slum-fleet/slum/replica"
	"github.com/slum-fleet/slum/replica/lease"
)

// Exit codes of `slum guard`, besides the app's own when it exits by
// itself.
const (
	ExitStopped    = 0 // stopped on a signal; the lease is released
	ExitFailure    = 1 // could not start or run
	ExitFenced     = 5 // another copy holds the lease, or it was revoked
	ExitParentGone = 6 // its parent died; the app is stopped, the lease released
)

// Config is one guard.
type Config struct {
	InstanceID string // the tenement instance id, in the holder id
	Server     string // the slum server it runs on, in the lease; may be empty
	DB         string // absolute path of the database
	Replica    replica.Location
	Store      replica.Store
	Litestream litestream.Runner
	App        []string // the app's command line
	AppEnv     []string // the app's environment
	Timing     lease.Timing
	Grace      time.Duration // SIGTERM to SIGKILL, for the app and for Litestream's last sync
	Log        io.Writer     // every transition, one line each
	Output     io.Writer     // the children's stdout and stderr; nil: the guard's own
	Clock      clock.Clock
	ParentPID  int            // the parent at start; 0 disables the parent watch
	Signals    chan os.Signal // SIGTERM or SIGINT stop the guard cleanly
}

// Exit is how a guard ended: a code for the process and the reason.
type Exit struct {
	Code   int
	Reason string
}

func (e *Exit) Error() string { return e.Reason }

// HolderID names this process as a lease holder: the instance, the host,
// the pid and a random nonce, so that no two processes ever share one.
func HolderID(instanceID string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s@%s/pid%d/%s", instanceID, host, os.Getpid(), hex.EncodeToString(b))
}

// predecessorGone reports whether a lease's holder is provably this
// copy's own predecessor, gone: the same instance on the same slum server
// and host (so the same machine), and its process no longer exists. Its
// children (the app, Litestream) die with it (SIGKILL on the parent's
// death), so nothing of it writes the replica. tenement restarts an
// unhealthy instance with SIGKILL: without this, the restarted guard
// would wait a whole TTL for a lease nobody holds. A pid that exists
// again (reused) is taken for alive: the lease is then waited for.
func predecessorGone(r lease.Record, instance, server, host string, alive func(int) bool) bool {
	if server == "" || r.Server != server {
		return false
	}
	id, rest, ok := strings.Cut(r.Holder, "@")
	if !ok || id != instance {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] != host || !strings.HasPrefix(parts[1], "pid") {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(parts[1], "pid"))
	if err != nil || pid <= 1 || pid == os.Getpid() {
		return false
	}
	return !alive(pid)
}

// pidAlive: a process with this pid exists on this machine.
func pidAlive(pid int) bool { return syscall.Kill(pid, 0) != syscall.ESRCH }

// Run runs the guard until it stops; the result is always an *Exit.
func Run(ctx context.Context, cfg Config) *Exit {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	s := &supervisor{cfg: cfg, spawn: newSpawner(cfg.Output)}
	s.logw = &lineWriter{w: cfg.Log}
	h, err := lease.NewHolder(cfg.Store, cfg.Replica, HolderID(cfg.InstanceID), cfg.Timing, cfg.Clock, s.logf)
	if err != nil {
		return &Exit{Code: ExitFailure, Reason: err.Error()}
	}
	h.OnServer(cfg.Server)
	if host, err := os.Hostname(); err == nil {
		h.TakeFromGone(func(r lease.Record) bool { return predecessorGone(r, cfg.InstanceID, cfg.Server, host, pidAlive) })
	}
	s.holder = h
	return s.run(ctx)
}

// lineWriter writes whole lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, "slum guard: "+time.Now().UTC().Format("15:04:05.000")+" "+s)
}
