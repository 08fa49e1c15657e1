package logs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed"
)

// copyKey names a copy: an instance on a server.
type copyKey struct{ instance, server string }

func (k copyKey) String() string {
	return slum.CopyRef{Instance: k.instance, Server: k.server}.String()
}

// copySpec is one copy to read and how to reach it: the instance's
// tenement name on a server of the fleet.
type copySpec struct {
	key        copyKey
	process    string
	tenementID string
	url, token string
	// gone says why its lines are marked ("" when the copy is where it
	// should be, on a server that answers).
	gone string
}

func (c copySpec) filter(level observed.LogLevel) observed.LogFilter {
	return observed.LogFilter{Process: c.process, ID: c.tenementID, Level: level}
}

// fleetView is what one read of the fleet says of the copies.
type fleetView struct {
	copies []copySpec        // sorted by key
	placed map[string]string // instance id → the server it is placed on
}

// readFleet reads where q's copies are.
func readFleet(ctx context.Context, f Fleet, q Query) (fleetView, error) {
	insts, err := f.ListInstancesOfTenant(ctx, q.Tenant)
	if err != nil {
		return fleetView{}, err
	}
	if q.Instance != "" {
		insts = slices.DeleteFunc(insts, func(in slum.Instance) bool { return in.ID != q.Instance })
		if len(insts) == 0 {
			return fleetView{}, fmt.Errorf("instance %s %w", slum.KeyOf(q.Tenant, q.Instance), slum.ErrNotFound)
		}
	}
	st, err := f.TenantStatus(ctx, q.Tenant)
	if err != nil {
		return fleetView{}, err
	}
	servers, err := f.ListServers(ctx)
	if err != nil {
		return fleetView{}, err
	}
	health, err := f.ListServerStatus(ctx)
	if err != nil {
		return fleetView{}, err
	}
	placed := map[string]string{}
	for _, in := range insts {
		placed[in.ID] = in.ServerID
	}
	return fleetView{copies: copiesOf(insts, st, servers, health), placed: placed}, nil
}

// copiesOf lists the copies worth reading: of each instance, the one on
// the server it is placed on, any other the controller reports running
// (the old copy of a move, until the new one serves), and the one on its
// home server after a failover, whose lines that server may still keep.
// Copies on servers the fleet no longer has cannot be reached and are
// left out.
func copiesOf(insts []slum.Instance, st slum.TenantStatus, servers []slum.Server, health []slum.ServerStatus) []copySpec {
	byID := map[string]slum.Server{}
	for _, s := range servers {
		byID[s.ID] = s
	}
	healthOf := map[string]slum.Health{}
	for _, h := range health {
		healthOf[h.ServerID] = h.Health
	}
	running := map[copyKey]bool{}
	for _, c := range append(slices.Clone(st.Serving), st.Spares...) {
		running[copyKey{c.Instance, c.Server}] = true
	}
	var out []copySpec
	seen := map[copyKey]bool{}
	for _, in := range insts {
		where := []string{in.ServerID}
		for k := range running {
			if k.instance == in.ID {
				where = append(where, k.server)
			}
		}
		if in.HomeServerID != "" {
			where = append(where, in.HomeServerID)
		}
		for _, server := range where {
			key := copyKey{in.ID, server}
			s, ok := byID[server]
			if seen[key] || !ok || server == "" {
				continue
			}
			seen[key] = true
			c := copySpec{key: key, process: in.Process, tenementID: names.TenementID(in.TenantID, in.ID), url: s.URL, token: s.Token}
			switch h := healthOf[server]; {
			case h == slum.HealthDead:
				c.gone = "server " + server + " is dead"
			case h == slum.HealthSuspect:
				c.gone = "server " + server + " is not answering"
			case server != in.ServerID && !running[key]:
				c.gone = "an old copy: " + in.ID + " runs on " + in.ServerID
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b copySpec) int {
		return strings.Compare(a.key.String(), b.key.String())
	})
	return out
}
