package desired

import (
	"fmt"
	"sort"
	"strings"

	"github.com/slum-fleet/slum"
)

// Placer decides where instances go. It holds every server's capacity and
// use, and which servers already run each tenant's process, so one Placer
// can place a whole fleet file, or every instance of a dead server, without
// going back to the database. It does no I/O.
type Placer struct {
	slots []*slot
	byID  map[string]*slot
	// affinity lists, per tenant and process, the servers already running
	// one of its instances: a handful, so place scans it, not a map.
	affinity map[tenantProcess][]string
}

type slot struct {
	id       string
	region   string
	state    slum.ServerState
	capacity int64
	used     int64
	// unfit says why the server takes nothing new although it is active
	// (dead, suspect, unauthorized), or "".
	unfit string
	// wary: the server takes new instances only where no other can (it
	// came back lately from an outage that made slum move instances).
	wary bool
}

type tenantProcess struct{ tenant, process string }

// NewPlacer returns an empty Placer.
func NewPlacer() *Placer {
	return &Placer{byID: map[string]*slot{}, affinity: map[tenantProcess][]string{}}
}

// runs reports whether server already runs an instance of tenant's process.
func (p *Placer) runs(tenant, process, server string) bool {
	for _, s := range p.affinity[tenantProcess{tenant, process}] {
		if s == server {
			return true
		}
	}
	return false
}

// AddServer adds a server. unfit, when not empty, says why it takes nothing
// new although it may be active (it is dead, say): it still counts for
// capacity and anti-affinity.
func (p *Placer) AddServer(s slum.Server, unfit string) {
	if sl, ok := p.byID[s.ID]; ok {
		sl.region, sl.state, sl.capacity, sl.unfit = s.Region, s.State, s.CapacityMB, unfit
		return
	}
	sl := &slot{id: s.ID, region: s.Region, state: s.State, capacity: s.CapacityMB, unfit: unfit}
	p.slots = append(p.slots, sl)
	p.byID[s.ID] = sl
}

// SetWary makes a server the last choice: Place picks it only when no
// server that is not wary can take the instance (in the tenant's region
// first, as always).
func (p *Placer) SetWary(server string) {
	if sl, ok := p.byID[server]; ok {
		sl.wary = true
	}
}

// Take records that an instance occupies its server.
func (p *Placer) Take(i slum.Instance) {
	if sl, ok := p.byID[i.ServerID]; ok {
		sl.used += i.MemoryMB
	}
	k := tenantProcess{i.TenantID, i.Process}
	p.affinity[k] = append(p.affinity[k], i.ServerID)
}

// Release undoes Take.
func (p *Placer) Release(i slum.Instance) {
	if sl, ok := p.byID[i.ServerID]; ok {
		sl.used -= i.MemoryMB
	}
	k := tenantProcess{i.TenantID, i.Process}
	servers := p.affinity[k]
	for j, s := range servers {
		if s == i.ServerID {
			p.affinity[k] = append(servers[:j:j], servers[j+1:]...)
			break
		}
	}
	if len(p.affinity[k]) == 0 {
		delete(p.affinity, k)
	}
}

// Place picks a server for an instance of tenant's process: an active,
// fit server with room that runs none of the tenant's instances of that
// process, in the tenant's region when one there fits, then one not wary
// (see SetWary), least used (by share of its capacity) first. avoid names a server not to use (the one
// being drained or failed over from). The error wraps ErrNoCapacity and
// counts what ruled each server out.
func (p *Placer) Place(tenant, region, process string, memoryMB int64, avoid string) (string, error) {
	var best *slot
	bestInRegion := false
	var notActive, unfit, sameProcess, full int
	taken := p.affinity[tenantProcess{tenant, process}]
	for _, sl := range p.slots {
		if sl.id == avoid {
			continue
		}
		if sl.state != slum.ServerActive {
			notActive++
			continue
		}
		if sl.unfit != "" {
			unfit++
			continue
		}
		if len(taken) > 0 && contains(taken, sl.id) {
			sameProcess++
			continue
		}
		if sl.capacity-sl.used < memoryMB {
			full++
			continue
		}
		inRegion := region != "" && sl.region == region
		switch {
		case best == nil,
			inRegion && !bestInRegion,
			inRegion == bestInRegion && !sl.wary && best.wary,
			inRegion == bestInRegion && sl.wary == best.wary && less(sl, best):
			best, bestInRegion = sl, inRegion
		}
	}
	if best == nil {
		var why []string
		if notActive > 0 {
			why = append(why, fmt.Sprintf("%d cordoned or draining", notActive))
		}
		if unfit > 0 {
			why = append(why, fmt.Sprintf("%d dead or unreachable", unfit))
		}
		if sameProcess > 0 {
			why = append(why, fmt.Sprintf("%d already run an instance of %s's %s (anti-affinity)", sameProcess, tenant, process))
		}
		if full > 0 {
			why = append(why, fmt.Sprintf("%d without %d MB free", full, memoryMB))
		}
		if len(why) == 0 {
			why = append(why, "there are no servers")
		}
		return "", fmt.Errorf("%w: no server can take %d MB for tenant %s process %s: %s",
			slum.ErrNoCapacity, memoryMB, tenant, process, strings.Join(why, ", "))
	}
	return best.id, nil
}

// Fits says why server cannot take an instance of tenant's process, or
// returns nil when it can.
func (p *Placer) Fits(server, tenant, process string, memoryMB int64) error {
	sl, ok := p.byID[server]
	switch {
	case !ok:
		return fmt.Errorf("%w: server %s is not in the fleet", slum.ErrNoCapacity, server)
	case sl.state != slum.ServerActive:
		return fmt.Errorf("%w: server %s is %s", slum.ErrNoCapacity, server, sl.state)
	case sl.unfit != "":
		return fmt.Errorf("%w: server %s is %s", slum.ErrNoCapacity, server, sl.unfit)
	case p.runs(tenant, process, server):
		return fmt.Errorf("%w: server %s already runs an instance of %s's %s", slum.ErrNoCapacity, server, tenant, process)
	case sl.capacity-sl.used < memoryMB:
		return fmt.Errorf("%w: server %s has %d MB free, %d MB needed", slum.ErrNoCapacity, server, sl.capacity-sl.used, memoryMB)
	}
	return nil
}

// less orders servers by used share of capacity, then by id for
// determinism.
func less(a, b *slot) bool {
	// a.used/a.capacity < b.used/b.capacity without floating point.
	l, r := a.used*b.capacity, b.used*a.capacity
	if l != r {
		return l < r
	}
	return a.id < b.id
}

// overCommitted lists servers whose use exceeds their capacity.
func (p *Placer) overCommitted() []string {
	var out []string
	for _, sl := range p.slots {
		if sl.used > sl.capacity {
			out = append(out, fmt.Sprintf("%s (%d MB of %d MB)", sl.id, sl.used, sl.capacity))
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
