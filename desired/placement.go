package desired

import (
	"fmt"
	"slices"
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

	// ranked holds the servers that can take new instances (active and
	// fit) in the order Place prefers them, byRegion the same per region,
	// so Place looks at a few servers, not all (changes are put in order
	// when Place next looks, see changed). odd counts servers without
	// a positive capacity, whose shares do not order: while there are any,
	// Place scans every server.
	ranked   []*slot
	byRegion map[string][]*slot
	odd      int
	// moved are servers changed since Place last looked, to put back in
	// order; resort says too many changed, so the lists are sorted anew.
	moved  []*slot
	resort bool
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
	// ranked: the slot is in Placer.ranked; odd: it is counted in
	// Placer.odd; moved: it is in Placer.moved.
	ranked, odd, moved bool
}

type tenantProcess struct{ tenant, process string }

// NewPlacer returns an empty Placer.
func NewPlacer() *Placer {
	return &Placer{byID: map[string]*slot{}, affinity: map[tenantProcess][]string{}, byRegion: map[string][]*slot{}}
}

// before is the order Place prefers servers in within a region (or
// without one): not wary first, then least used share, then id.
func before(a, b *slot) bool {
	if a.wary != b.wary {
		return !a.wary
	}
	return less(a, b)
}

// maxMoved is how many changed servers Place moves to their places in
// the ranked lists one by one; past that it sorts the lists anew (taking
// every instance of a fleet into a new Placer changes every server).
const maxMoved = 16

// changed notes that sl's state, capacity, use or wariness changed: Place
// puts it back in order before it looks at the lists.
func (p *Placer) changed(sl *slot) {
	switch {
	case p.resort || sl.moved:
	case len(p.moved) < maxMoved:
		sl.moved = true
		p.moved = append(p.moved, sl)
	default:
		p.resort = true
	}
}

// order brings the ranked lists and odd up to date with the changes
// since Place last looked.
func (p *Placer) order() {
	if p.resort {
		p.ranked, p.odd = p.ranked[:0], 0
		clear(p.byRegion)
		for _, sl := range p.slots {
			sl.ranked, sl.odd, sl.moved = false, false, false
			p.rank(sl, false)
		}
		slices.SortFunc(p.ranked, compareSlots)
		for _, l := range p.byRegion {
			slices.SortFunc(l, compareSlots)
		}
		p.resort, p.moved = false, p.moved[:0]
		return
	}
	// All out first: the lists are in order only without changed servers.
	for _, sl := range p.moved {
		sl.moved = false
		p.unrank(sl)
	}
	for _, sl := range p.moved {
		p.rank(sl, true)
	}
	p.moved = p.moved[:0]
}

func compareSlots(a, b *slot) int {
	switch {
	case a == b:
		return 0
	case before(a, b):
		return -1
	}
	return 1
}

// rank puts sl in the ranked lists when it can take new instances: in its
// place when inOrder, else at the end, for the caller to sort.
func (p *Placer) rank(sl *slot, inOrder bool) {
	if sl.state != slum.ServerActive || sl.unfit != "" {
		return
	}
	if sl.capacity <= 0 {
		sl.odd = true
		p.odd++
		return
	}
	sl.ranked = true
	add := func(list []*slot) []*slot {
		if !inOrder {
			return append(list, sl)
		}
		return insertSlot(list, sl)
	}
	p.ranked = add(p.ranked)
	if sl.region != "" {
		p.byRegion[sl.region] = add(p.byRegion[sl.region])
	}
}

// unrank takes sl out of the ranked lists, wherever its change put it.
func (p *Placer) unrank(sl *slot) {
	if sl.odd {
		sl.odd = false
		p.odd--
	}
	if !sl.ranked {
		return
	}
	sl.ranked = false
	p.ranked = removeSlot(p.ranked, sl)
	if sl.region != "" {
		if l := removeSlot(p.byRegion[sl.region], sl); len(l) > 0 {
			p.byRegion[sl.region] = l
		} else {
			delete(p.byRegion, sl.region)
		}
	}
}

func insertSlot(list []*slot, sl *slot) []*slot {
	i := sort.Search(len(list), func(i int) bool { return before(sl, list[i]) })
	return slices.Insert(list, i, sl)
}

func removeSlot(list []*slot, sl *slot) []*slot {
	if i := slices.Index(list, sl); i >= 0 {
		return slices.Delete(list, i, i+1)
	}
	return list
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
		// Out of its region's list before its region changes.
		p.unrank(sl)
		sl.region, sl.state, sl.capacity, sl.unfit = s.Region, s.State, s.CapacityMB, unfit
		p.changed(sl)
		return
	}
	sl := &slot{id: s.ID, region: s.Region, state: s.State, capacity: s.CapacityMB, unfit: unfit}
	p.slots = append(p.slots, sl)
	p.byID[s.ID] = sl
	p.changed(sl)
}

// SetWary makes a server the last choice: Place picks it only when no
// server that is not wary can take the instance (in the tenant's region
// first, as always).
func (p *Placer) SetWary(server string) {
	if sl, ok := p.byID[server]; ok && !sl.wary {
		sl.wary = true
		p.changed(sl)
	}
}

// Take records that an instance occupies its server.
func (p *Placer) Take(i slum.Instance) {
	if sl, ok := p.byID[i.ServerID]; ok {
		sl.used += i.MemoryMB
		p.changed(sl)
	}
	k := tenantProcess{i.TenantID, i.Process}
	p.affinity[k] = append(p.affinity[k], i.ServerID)
}

// Release undoes Take.
func (p *Placer) Release(i slum.Instance) {
	if sl, ok := p.byID[i.ServerID]; ok {
		sl.used -= i.MemoryMB
		p.changed(sl)
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
	p.order()
	if p.odd == 0 {
		taken := p.affinity[tenantProcess{tenant, process}]
		if region != "" {
			if sl := firstFit(p.byRegion[region], taken, memoryMB, avoid); sl != nil {
				return sl.id, nil
			}
		}
		// The region's servers were all ruled out above, so the first that
		// fits here is the best of the others.
		if sl := firstFit(p.ranked, taken, memoryMB, avoid); sl != nil {
			return sl.id, nil
		}
	}
	return p.scan(tenant, region, process, memoryMB, avoid)
}

// firstFit is the first server of list, in its order, with room that is
// neither avoid nor one of taken.
func firstFit(list []*slot, taken []string, memoryMB int64, avoid string) *slot {
	for _, sl := range list {
		if sl.id == avoid || sl.capacity-sl.used < memoryMB || len(taken) > 0 && contains(taken, sl.id) {
			continue
		}
		return sl
	}
	return nil
}

// scan is Place looking at every server, counting what rules each out for
// the error when none fits.
func (p *Placer) scan(tenant, region, process string, memoryMB int64, avoid string) (string, error) {
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
