// Package dataguard keeps one writer per replicated tenant from the
// controller's side. Each replicated tenant's guard holds a lease beside
// its replica (package replica/lease); this package watches those leases
// and acts on the ones whose holder is no longer where the tenant's
// instance is placed: it revokes the lease of a copy on a dead server (a
// copy that outlived its 'ten', or is hung, stops at its next renewal,
// and the new copy takes the lease once it has lapsed, without waiting a
// second TTL) and asks a copy on a live server that its instance moved
// away from to hand over (make before break: the old copy stops cleanly
// and sends the rest of its WAL, and the new one takes over at once with
// every write). It says which tenants wait for their writer, and why, in
// events, logs and metrics.
//
// It runs beside the controller, not inside its planner: it reads and
// writes objects on the replica store, which a pure planner must not, and
// it needs each lease's history (since when its ETag has stayed the same)
// on its own clock. The planner's part is the rule that a replicated copy
// serves only once it is healthy (reconcile.servesData).
package dataguard

import (
	"fmt"
	"strings"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/replica/lease"
)

// Step is what to do with one tenant's lease.
type Step string

const (
	StepNone     Step = ""         // leave it
	StepRevoke   Step = "revoke"   // its holder must stop at once
	StepHandover Step = "handover" // its holder is asked to stop cleanly and release
	StepRelease  Step = "release"  // a revoked lease has lapsed: free it for the new copy
)

// Input is one replicated tenant as the rules see it.
type Input struct {
	Tenant string
	// Placed is where each of the tenant's instances that should run is
	// placed now (instance id → server id).
	Placed map[string]string
	// Health is every server's health (a server missing here is no longer
	// in the fleet).
	Health map[string]slum.Health
	// DeadFor is how long each dead server has been dead.
	DeadFor map[string]time.Duration
	Lease   lease.Observation
	TTL     time.Duration // the new copy's TTL
}

// RevokeAfter is how long a dead server's copy is given to release its
// lease by itself before slum revokes it: a copy whose 'ten' died sees its
// parent go, stops its app, sends the rest of its WAL and releases within
// about half a second, losing nothing; a revoke in the middle of that
// would make the new copy wait for the lease to lapse.
const RevokeAfter = time.Second

// Decision is what the rules say of a tenant's lease.
type Decision struct {
	Step Step
	// Waiting: the tenant waits for its old writer (the lease is held, or
	// revoked and not yet lapsed, by a copy that is not where its instance
	// is placed).
	Waiting bool
	Why     string
}

// Decide is the single-writer rule: a lease is left alone while its holder
// is the copy where its instance is placed (a failover: none tenant on a
// dead server included: nothing replaces it); a holder whose instance is
// placed elsewhere, removed or stopped is revoked when its server has been
// dead for RevokeAfter (or is gone from the fleet), and asked to hand over
// when its server is up; a revoked lease, or a dead server's, is released
// once this observer has seen it unchanged for the TTL. A
// lease that names no server, or a holder that is not one of the tenant's
// instances, is never acted on: it lapses by itself when its copy dies or
// loses the store.
func Decide(in Input) Decision {
	o := in.Lease
	if !o.Present {
		return Decision{Why: "no lease: the tenant's first copy creates it"}
	}
	rec := o.Record
	if rec.State == lease.StateReleased {
		return Decision{Why: "released: the next copy takes it at once"}
	}
	inst, ok := holderInstance(in.Tenant, rec.Holder)
	if !ok {
		return Decision{Why: "held by " + rec.Holder + ", which is none of the tenant's instances: left to lapse by itself"}
	}
	if rec.Server == "" {
		return Decision{Why: "its holder names no server (slum guard --server, SLUM_SERVER): left to lapse by itself"}
	}
	placed, desired := in.Placed[inst]
	if desired && placed == rec.Server {
		return Decision{Why: fmt.Sprintf("%s by its copy on %s", rec.State, rec.Server)}
	}
	where := "is removed or stopped"
	if desired {
		where = "moved to " + placed
	}
	health, known := in.Health[rec.Server]
	gone := !known || health == slum.HealthDead
	switch {
	case o.Lapsed(in.TTL) && (gone || rec.State == lease.StateRevoked):
		return Decision{Step: StepRelease, Waiting: true,
			Why: fmt.Sprintf("the %s lease of %s on %s stayed unchanged for %s: released for its new copy", rec.State, inst, rec.Server, o.Unchanged().Round(time.Millisecond))}
	case rec.State == lease.StateRevoked:
		return Decision{Waiting: true, Why: fmt.Sprintf("waiting for the revoked lease of %s on %s to lapse (%s of %s)",
			inst, rec.Server, o.Unchanged().Round(time.Millisecond), o.Wait(in.TTL))}
	case gone && known && in.DeadFor[rec.Server] < RevokeAfter:
		return Decision{Waiting: true, Why: fmt.Sprintf("%s %s and its server %s is dead: giving its copy %s to release its lease by itself", inst, where, rec.Server, RevokeAfter)}
	case gone:
		state := "dead"
		if !known {
			state = "no longer in the fleet"
		}
		return Decision{Step: StepRevoke, Waiting: true, Why: fmt.Sprintf("%s %s and its server %s is %s: revoking its copy's lease", inst, where, rec.Server, state)}
	case rec.State == lease.StateHandover:
		return Decision{Waiting: true, Why: fmt.Sprintf("waiting for %s on %s to hand over (%s %s)", inst, rec.Server, inst, where)}
	default:
		return Decision{Step: StepHandover, Waiting: true, Why: fmt.Sprintf("%s %s: asking its copy on %s to hand over", inst, where, rec.Server)}
	}
}

// holderInstance is the instance of tenant a lease holder id names: the
// guard's holder id starts with the tenement id, TENANT--INSTANCE@...
func holderInstance(tenant, holder string) (string, bool) {
	id, _, ok := strings.Cut(holder, "@")
	if !ok {
		return "", false
	}
	t, inst, ok := strings.Cut(id, names.Sep)
	if !ok || t != tenant || inst == "" {
		return "", false
	}
	return inst, true
}
