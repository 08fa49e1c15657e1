// Package rebalance plans moves that even out a fleet: placed memory and
// instance count per server, relative to each server's capacity, keeping
// to the placement rules (the tenant's region first, never two copies of
// a tenant's process on one server, never onto a server that is cordoned,
// draining, not online or back from the dead for less than stable_after,
// never beyond a server's capacity). Plan is a pure function; the moves
// are made by the caller, make-before-break, through the controller.
package rebalance

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/slum-fleet/slum"
)

// Server is a server as a plan sees it.
type Server struct {
	ID         string `json:"id"`
	Region     string `json:"region"`
	CapacityMB int64  `json:"capacity_mb"`
	// Takes: new copies may be placed on it; otherwise Why says why not.
	Takes bool   `json:"takes"`
	Why   string `json:"why,omitempty"`
	// Online: its copies may be moved off (make-before-break needs the
	// old copy to run until the new one does).
	Online bool `json:"online"`
}

// Copy is an instance as a plan sees it.
type Copy struct {
	Key      slum.InstanceKey `json:"instance"`
	Process  string           `json:"process"`
	Server   string           `json:"server"`
	MemoryMB int64            `json:"memory_mb"`
	Region   string           `json:"region"` // its tenant's
	// Serving: it serves its tenant now, so it is moved only when no
	// spare does as well.
	Serving bool `json:"serving"`
}

// Input is the fleet a plan evens out.
type Input struct {
	Servers []Server
	Copies  []Copy // instances that should run
}

// Move is one copy placed on another server.
type Move struct {
	Instance slum.InstanceKey `json:"instance"`
	From     string           `json:"from"`
	To       string           `json:"to"`
	MemoryMB int64            `json:"memory_mb"`
}

// Servers builds the plan's servers from the fleet's, with whether each
// takes copies now.
func Servers(ss []slum.Server, status []slum.ServerStatus, now time.Time, stableAfter time.Duration) []Server {
	byID := map[string]slum.ServerStatus{}
	for _, st := range status {
		byID[st.ServerID] = st
	}
	out := make([]Server, 0, len(ss))
	for _, s := range ss {
		st := byID[s.ID]
		srv := Server{ID: s.ID, Region: s.Region, CapacityMB: s.CapacityMB, Online: st.Health == slum.HealthOnline}
		switch {
		case s.State != slum.ServerActive:
			srv.Why = "it is " + string(s.State)
		case st.Health != slum.HealthOnline:
			srv.Why = "it is " + cmp.Or(string(st.Health), "not probed yet")
		case st.Failover == slum.FailoverFencing || st.Failover == slum.FailoverHeld:
			// (failed-over: its own copies run elsewhere; it is back.)
			srv.Why = "it is " + string(st.Failover)
		case now.Sub(st.HealthSince) < stableAfter:
			srv.Why = fmt.Sprintf("it has been online for less than stable_after (%s)", stableAfter)
		default:
			srv.Takes = true
		}
		out = append(out, srv)
	}
	return out
}

// state is the fleet while a plan is made: each server's load.
type state struct {
	servers []Server
	index   map[string]int
	count   []int64
	usedMB  []int64
	// slotMB is the mean copy's memory: a server's capacity in copies.
	slotMB float64
	// has: tenant process copies per server, "server/tenant/process".
	has map[string]int
}

func newState(in Input) *state {
	st := &state{servers: in.Servers, index: map[string]int{}, count: make([]int64, len(in.Servers)),
		usedMB: make([]int64, len(in.Servers)), has: map[string]int{}}
	for i, s := range in.Servers {
		st.index[s.ID] = i
	}
	var mem int64
	for _, c := range in.Copies {
		mem += c.MemoryMB
		if i, ok := st.index[c.Server]; ok {
			st.count[i]++
			st.usedMB[i] += c.MemoryMB
			st.has[hasKey(c.Server, c)]++
		}
	}
	st.slotMB = float64(slum.DefaultMemoryMB)
	if len(in.Copies) > 0 && mem > 0 {
		st.slotMB = float64(mem) / float64(len(in.Copies))
	}
	return st
}

func hasKey(server string, c Copy) string {
	return server + "/" + c.Key.Tenant() + "/" + c.Process
}

// cost is server i's load with dCount copies and dMB more: the squares
// of its memory and count as shares of its capacity. The fleet's cost is
// their sum; evening out lowers it.
func (st *state) cost(i int, dCount, dMB int64) float64 {
	capMB := float64(max(st.servers[i].CapacityMB, 1))
	mem := float64(st.usedMB[i]+dMB) / capMB
	n := float64(st.count[i]+dCount) * st.slotMB / capMB
	return mem*mem + n*n
}

// Cost is the fleet's imbalance: lower is more even.
func Cost(in Input) float64 {
	st := newState(in)
	var sum float64
	for i := range st.servers {
		sum += st.cost(i, 0, 0)
	}
	return sum
}

// gain is how much moving c from server f to t lowers the fleet's cost.
func (st *state) gain(c Copy, f, t int) float64 {
	before := st.cost(f, 0, 0) + st.cost(t, 0, 0)
	after := st.cost(f, -1, -c.MemoryMB) + st.cost(t, 1, c.MemoryMB)
	return before - after
}

// fits reports whether c may be moved to server t, by the rules.
func (st *state) fits(c Copy, t int) bool {
	s := st.servers[t]
	return s.Takes && s.ID != c.Server && st.usedMB[t]+c.MemoryMB <= s.CapacityMB && st.has[hasKey(s.ID, c)] == 0 &&
		(c.Region == "" || s.Region == c.Region || st.servers[st.index[c.Server]].Region != c.Region)
}

// minGain is the least improvement a move must bring: moves that change
// nothing worth saying are not made.
const minGain = 1e-9

// Plan returns at most maxMoves moves that even out the fleet, best
// first; each lowers the fleet's cost, so a plan never makes it less
// even. A copy is moved at most once. A copy that serves its tenant is
// moved only when moving a spare would not do as well.
func Plan(in Input, maxMoves int) []Move {
	st := newState(in)
	copies := slices.Clone(in.Copies)
	moved := make([]bool, len(copies))
	var out []Move
	for len(out) < maxMoves {
		best, bestTo, bestGain := -1, -1, minGain
		for ci, c := range copies {
			f, ok := st.index[c.Server]
			if moved[ci] || !ok || !st.servers[f].Online {
				continue
			}
			for t := range st.servers {
				if !st.fits(c, t) {
					continue
				}
				g := st.gain(c, f, t)
				if c.Serving {
					g -= minGain // a spare that does as well goes first
				}
				if g > bestGain || g == bestGain && best >= 0 && better(c, t, copies[best], bestTo, st) {
					best, bestTo, bestGain = ci, t, g
				}
			}
		}
		if best < 0 {
			break
		}
		c := copies[best]
		f := st.index[c.Server]
		st.count[f]--
		st.usedMB[f] -= c.MemoryMB
		st.has[hasKey(c.Server, c)]--
		st.count[bestTo]++
		st.usedMB[bestTo] += c.MemoryMB
		to := st.servers[bestTo].ID
		st.has[hasKey(to, c)]++
		moved[best] = true
		out = append(out, Move{Instance: c.Key, From: c.Server, To: to, MemoryMB: c.MemoryMB})
		copies[best].Server = to
	}
	return out
}

// better breaks ties between equal moves, so plans are the same every
// time: into the copy's region, then by instance and server.
func better(c Copy, t int, b Copy, bt int, st *state) bool {
	inRegion := func(c Copy, t int) bool { return c.Region != "" && st.servers[t].Region == c.Region }
	if a, bb := inRegion(c, t), inRegion(b, bt); a != bb {
		return a
	}
	if c.Key != b.Key {
		return c.Key < b.Key
	}
	return st.servers[t].ID < st.servers[bt].ID
}

// Apply returns in with the moves made: what the fleet will be.
func Apply(in Input, moves []Move) Input {
	out := Input{Servers: in.Servers, Copies: slices.Clone(in.Copies)}
	for _, m := range moves {
		for i := range out.Copies {
			if out.Copies[i].Key == m.Instance {
				out.Copies[i].Server = m.To
			}
		}
	}
	return out
}
