// Package lease is the single-writer lease of a replicated tenant, kept as
// one JSON object beside the tenant's replica on the replica store
// (PATH/slum-lease), so that the guard writing the replica and the store
// it writes share one reachability domain, and slum's own availability
// never stops a tenant.
//
// The rules:
//   - Every write is conditional: create with If-None-Match: *, replace with
//     If-Match on the ETag last seen. Every write changes the body (a
//     renewal counter), so an unchanged ETag means nobody wrote.
//   - A holder renews every TTL/4 and stops writing the replica once
//     RenewDeadline has passed since it sent its last renewal that
//     succeeded.
//   - Anyone else may take a held (or revoked) lease only after its ETag
//     has stayed unchanged for a whole TTL on the taker's own monotonic
//     clock; no clocks of two hosts are ever compared. A released lease is
//     taken at once.
//   - An observer may revoke a held lease (its holder stops at once) or
//     ask for a handover (its holder stops cleanly, sends the rest of the
//     database and releases it: a planned move loses nothing).
//   - Generation grows by one each time the lease changes hands;
//     DBGeneration is the generation under which the replica's database
//     was last written, so a copy can tell whether its local file is the
//     newest.
//
// Holder is the guard's side; Watcher is an observer's (the controller's):
// read, revoke, and release on a dead holder's behalf once it has lapsed.
package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
)

// ObjectName is the lease object's name inside the replica's path.
const ObjectName = "slum-lease"

// State is a lease's state.
type State string

const (
	StateHeld     State = "held"     // a holder renews it
	StateReleased State = "released" // free: the next taker takes it at once
	StateRevoked  State = "revoked"  // its holder must stop at once; taken once it lapses
	// StateHandover: its holder is asked to stop cleanly (its app, then the
	// replication's last sync) and release it; it keeps renewing meanwhile.
	// Takers wait for the release, or for the lapse, as for held.
	StateHandover State = "handover"
)

func (s State) valid() bool {
	return s == StateHeld || s == StateReleased || s == StateRevoked || s == StateHandover
}

// renewable: states the holder still renews.
func (s State) renewable() bool { return s == StateHeld || s == StateHandover }

// Record is the lease object's body.
type Record struct {
	Holder string `json:"holder"`
	// Server is the slum server the holder runs on, as its guard was told
	// (slum guard --server, or SLUM_SERVER in tenement's environment):
	// what lets slum revoke the lease of a copy on a dead server, or ask
	// a moved copy to hand over. Empty: slum never acts on this lease.
	Server       string `json:"server,omitempty"`
	Generation   int64  `json:"generation"`
	State        State  `json:"state"`
	DBGeneration int64  `json:"db_generation"`
	// TTLMillis is the holder's TTL: how long a taker must see the lease
	// unchanged. A taker waits the longer of it and its own.
	TTLMillis int64 `json:"ttl_ms"`
	// Renewal grows with every write, so that every write changes the ETag.
	Renewal int64 `json:"renewal"`
	// By and Reason say who revoked or released the lease on its holder's
	// behalf, and why; empty when the holder wrote it.
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// TTL is the holder's TTL.
func (r Record) TTL() time.Duration { return time.Duration(r.TTLMillis) * time.Millisecond }

// ErrBadRecord: the lease object is not a lease slum can read. Nothing
// takes such a lease; a person must look at it.
var ErrBadRecord = errors.New("the lease object is not a valid slum lease")

func decodeRecord(body []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(body, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	switch {
	case r.Holder == "":
		return Record{}, fmt.Errorf("%w: no holder", ErrBadRecord)
	case r.Generation < 1:
		return Record{}, fmt.Errorf("%w: generation %d", ErrBadRecord, r.Generation)
	case !r.State.valid():
		return Record{}, fmt.Errorf("%w: state %q", ErrBadRecord, r.State)
	case r.TTLMillis <= 0:
		return Record{}, fmt.Errorf("%w: ttl_ms %d", ErrBadRecord, r.TTLMillis)
	case r.DBGeneration < 0 || r.DBGeneration > r.Generation:
		return Record{}, fmt.Errorf("%w: db_generation %d of generation %d", ErrBadRecord, r.DBGeneration, r.Generation)
	}
	return r, nil
}

func (r Record) encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a struct of strings and numbers always encodes
	}
	return b
}

// Describe says what the record means, for logs and status.
func (r Record) Describe() string {
	s := fmt.Sprintf("%s by %s (generation %d)", r.State, r.Holder, r.Generation)
	if r.Server != "" {
		s = fmt.Sprintf("%s by %s on server %s (generation %d)", r.State, r.Holder, r.Server, r.Generation)
	}
	if r.By != "" {
		s += fmt.Sprintf(", written by %s", r.By)
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// Timing is a holder's lease timing.
type Timing struct {
	TTL           time.Duration // how long a taker waits for an unchanged lease
	RenewDeadline time.Duration // how long after its last renewal a holder stops writing
}

// DefaultTiming: a 2 s TTL renewed every 500 ms, writes stopped 1.2 s
// after the last renewal that succeeded (0.8 s before anyone may take it).
var DefaultTiming = Timing{TTL: 2 * time.Second, RenewDeadline: 1200 * time.Millisecond}

// RenewEvery is how often a holder renews: a quarter of the TTL.
func (t Timing) RenewEvery() time.Duration { return t.TTL / 4 }

// Validate checks RenewEvery < RenewDeadline < TTL, and sane bounds.
func (t Timing) Validate() error {
	bad := func(field string, v time.Duration, reason string) error {
		return &slum.FieldError{Field: field, Value: v.String(), Reason: reason}
	}
	switch {
	case t.TTL < 200*time.Millisecond || t.TTL > 10*time.Minute:
		return bad("lease TTL", t.TTL, "must be between 200ms and 10m")
	case t.RenewDeadline <= t.RenewEvery():
		return bad("renew deadline", t.RenewDeadline, fmt.Sprintf("must be longer than the renewal interval (TTL/4 = %s)", t.RenewEvery()))
	case t.RenewDeadline >= t.TTL:
		return bad("renew deadline", t.RenewDeadline, fmt.Sprintf("must be shorter than the TTL (%s): a holder must stop writing before anyone may take its lease", t.TTL))
	}
	return nil
}
