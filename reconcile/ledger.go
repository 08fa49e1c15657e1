package reconcile

import (
	"math"
	"time"

	"github.com/slum-fleet/slum"
)

// LedgerEntry is one copy slum placed on a server, under its tenement
// name (which says whose it is: see desired.ParseTenementName).
type LedgerEntry struct {
	// stamp is when slum last acted on the copy (recorded it, or a spawn
	// or stop of it finished), in nanoseconds from the ledger's epoch,
	// shifted left by one, and in its lowest bit whether an action on
	// the copy is queued or in flight that the loop has not heard back
	// from. A list that started before the touch cannot tell whether the
	// copy is gone. (One int64, not a time.Time and a bool in a second
	// map: 8 bytes an entry in maps that hold every placement, all of them
	// busy at once while a fleet converges.)
	stamp int64
}

func (e LedgerEntry) touched() time.Duration { return time.Duration(e.stamp >> 1) }
func (e LedgerEntry) busy() bool             { return e.stamp&1 == 1 }

func (e LedgerEntry) withBusy(busy bool) LedgerEntry {
	e.stamp &^= 1
	if busy {
		e.stamp |= 1
	}
	return e
}

// Ledger is what slum placed on each server (the copies it may stop) and
// which of them have an action queued or in flight that the loop has not
// heard back from. It is the value the planner reads; the loop changes it
// only through its methods, each of which counts a change of the server it
// touches, so a plan's share of a server is reused only while that count
// is unchanged (no caller has to remember to say what changed).
type Ledger struct {
	servers map[string]*ledgerServer
	changes uint64 // every change so far, so a version is never reused
	// epoch is the first time an entry was touched; entries count from
	// it, and its monotonic reading carries over to Touched's times.
	epoch    time.Time
	epochSet bool
}

type ledgerServer struct {
	owned   map[string]LedgerEntry // by tenement name
	version uint64                 // the ledger's change count at its last change
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{servers: map[string]*ledgerServer{}} }

func (l *Ledger) server(id string) *ledgerServer {
	s, ok := l.servers[id]
	if !ok {
		s = &ledgerServer{owned: map[string]LedgerEntry{}}
		l.servers[id] = s
	}
	l.changes++
	s.version = l.changes
	return s
}

// entry is an entry touched at t.
func (l *Ledger) entry(t time.Time) LedgerEntry {
	if !l.epochSet {
		l.epoch, l.epochSet = t, true
	}
	// Shifted, a stamp holds ±146 years: a time beyond (a zero time.Time)
	// reads as that far, not wrapped around.
	const limit = time.Duration(math.MaxInt64 >> 1)
	return LedgerEntry{stamp: int64(max(-limit, min(t.Sub(l.epoch), limit))) << 1}
}

// Touched is when slum last acted on the copy of e.
func (l *Ledger) Touched(e LedgerEntry) time.Time { return l.epoch.Add(e.touched()) }

// Add records a placement, touched at t. Recorded again, a copy keeps
// its busy mark.
func (l *Ledger) Add(p slum.Placement, t time.Time) {
	s := l.server(p.ServerID)
	s.owned[p.Name] = l.entry(t).withBusy(s.owned[p.Name].busy())
}

// Touch notes that an action on a placed copy finished at t. A server
// that left the fleet meanwhile (an action's result can come after) has
// nothing to touch, nor to forget or be busy with below.
func (l *Ledger) Touch(server, name string, t time.Time) {
	if old, ok := l.Owned(server)[name]; ok {
		l.server(server).owned[name] = l.entry(t).withBusy(old.busy())
	}
}

// Forget drops a placement.
func (l *Ledger) Forget(server, name string) {
	if _, ok := l.Owned(server)[name]; ok {
		delete(l.server(server).owned, name)
	}
}

// DropServer forgets a server that left the fleet, with its placements.
func (l *Ledger) DropServer(id string) { delete(l.servers, id) }

// SetBusy marks whether an action on a placed copy is queued or in
// flight. A copy slum did not place has no mark: the planner asks only of
// its placements (it stops nothing else, and a spawn goes out only once
// its placement is recorded).
func (l *Ledger) SetBusy(server, name string, busy bool) {
	e, ok := l.Owned(server)[name]
	if !ok || e.busy() == busy {
		return
	}
	l.server(server).owned[name] = e.withBusy(busy)
}

// Owned is what slum placed on a server, by tenement name. It must not be
// modified.
func (l *Ledger) Owned(server string) map[string]LedgerEntry {
	if s := l.servers[server]; s != nil {
		return s.owned
	}
	return nil
}

// Owns reports whether slum placed a copy on a server.
func (l *Ledger) Owns(server, name string) bool {
	_, ok := l.Owned(server)[name]
	return ok
}

// Busy reports whether an action on a placed copy is queued or in flight.
func (l *Ledger) Busy(server, name string) bool { return l.Owned(server)[name].busy() }

// version changes with every change of a server's entries and is never
// the same for two states of them.
func (l *Ledger) version(server string) uint64 {
	if s := l.servers[server]; s != nil {
		return s.version
	}
	return 0
}

// Size counts the placements.
func (l *Ledger) Size() int {
	n := 0
	for _, s := range l.servers {
		n += len(s.owned)
	}
	return n
}
