package desired

import (
	"fmt"
	"sort"
	"strings"
)

// placer decides where new instances go. It holds every server's capacity
// and use, and which servers already run each tenant's process, so one
// placer can place a whole fleet file without going back to the database.
type placer struct {
	slots []*slot
	byID  map[string]*slot
	// affinity lists, per tenant and process, the servers already running
	// one of its instances: a handful, so place scans it, not a map.
	affinity map[tenantProcess][]string
}

type slot struct {
	id       string
	region   string
	state    ServerState
	capacity int64
	used     int64
}

type tenantProcess struct{ tenant, process string }

func newPlacer() *placer {
	return &placer{byID: map[string]*slot{}, affinity: map[tenantProcess][]string{}}
}

// runs reports whether server already runs an instance of tenant's process.
func (p *placer) runs(tenant, process, server string) bool {
	for _, s := range p.affinity[tenantProcess{tenant, process}] {
		if s == server {
			return true
		}
	}
	return false
}

func (p *placer) addServer(s Server) {
	if sl, ok := p.byID[s.ID]; ok {
		sl.region, sl.state, sl.capacity = s.Region, s.State, s.CapacityMB
		return
	}
	sl := &slot{id: s.ID, region: s.Region, state: s.State, capacity: s.CapacityMB}
	p.slots = append(p.slots, sl)
	p.byID[s.ID] = sl
}

// take records that an instance occupies a server.
func (p *placer) take(i Instance) {
	if sl, ok := p.byID[i.ServerID]; ok {
		sl.used += i.MemoryMB
	}
	k := tenantProcess{i.TenantID, i.Process}
	p.affinity[k] = append(p.affinity[k], i.ServerID)
}

// release undoes take.
func (p *placer) release(i Instance) {
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

// place picks a server for a new instance of tenant's process: an active
// server with room that runs none of the tenant's instances of that process,
// in the tenant's region when one there fits, least used (by share of its
// capacity) first. avoid names a server not to use (the one being drained).
func (p *placer) place(tenant, region, process string, memoryMB int64, avoid string) (string, error) {
	var best *slot
	bestInRegion := false
	var notActive, sameProcess, full int
	taken := p.affinity[tenantProcess{tenant, process}]
	for _, sl := range p.slots {
		if sl.id == avoid {
			continue
		}
		if sl.state != ServerActive {
			notActive++
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
			inRegion == bestInRegion && less(sl, best):
			best, bestInRegion = sl, inRegion
		}
	}
	if best == nil {
		var why []string
		if notActive > 0 {
			why = append(why, fmt.Sprintf("%d cordoned or draining", notActive))
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
			ErrNoCapacity, memoryMB, tenant, process, strings.Join(why, ", "))
	}
	return best.id, nil
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
func (p *placer) overCommitted() []string {
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
