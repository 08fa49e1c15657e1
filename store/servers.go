package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/desired"
)

// Desired is the fleet's desired state: servers, tenants, instance
// placements, fleet files and the fleet's settings. Every change bumps the
// desired revision, so a running controller sees it at once.
type Desired struct{ base }

// Revision counts committed changes to desired state.
func (s *Desired) Revision(ctx context.Context) (int64, error) {
	return s.eng.Read().GetRevision(ctx)
}

// ---- servers

// AddServer adds a server to the fleet.
func (s *Desired) AddServer(ctx context.Context, srv slum.Server) (slum.Server, error) {
	desired.NormalizeServer(&srv)
	if err := desired.ValidateServer(srv); err != nil {
		return slum.Server{}, fmt.Errorf("add server: %w", err)
	}
	err := s.write(ctx, func(q db.Querier, now int64) error {
		if _, err := q.GetServer(ctx, srv.ID); err == nil {
			return fmt.Errorf("add server: server %s %w", srv.ID, slum.ErrAlreadyExists)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("add server %s: %w", srv.ID, err)
		}
		srv.CreatedAt, srv.UpdatedAt = fromMS(now), fromMS(now)
		if err := q.InsertServer(ctx, serverParams(srv, now)); err != nil {
			return fmt.Errorf("add server %s: %w", srv.ID, err)
		}
		return event(ctx, q, now, slum.ServerRef(srv.ID), slum.ReasonAdded, "server added at "+srv.URL)
	})
	return srv, err
}

func serverParams(s slum.Server, now int64) db.InsertServerParams {
	return db.InsertServerParams{
		ID: s.ID, Url: s.URL, Region: s.Region, CapacityMb: s.CapacityMB, Domain: s.Domain,
		Token: s.Token, State: string(s.State), CreatedAt: now, UpdatedAt: now,
	}
}

func updateServerParams(s slum.Server, now int64) db.UpdateServerParams {
	return db.UpdateServerParams{
		ID: s.ID, Url: s.URL, Region: s.Region, CapacityMb: s.CapacityMB, Domain: s.Domain,
		Token: s.Token, State: string(s.State), UpdatedAt: now,
	}
}

func toServer(r db.Server) slum.Server {
	return slum.Server{
		ID: r.ID, URL: r.Url, Region: r.Region, CapacityMB: r.CapacityMb, Domain: r.Domain,
		Token: r.Token, State: slum.ServerState(r.State), CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt),
	}
}

func getServer(ctx context.Context, q db.Querier, id string) (slum.Server, error) {
	r, err := q.GetServer(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Server{}, fmt.Errorf("server %s %w", id, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Server{}, fmt.Errorf("get server %s: %w", id, err)
	}
	return toServer(r), nil
}

// GetServer returns one server.
func (s *Desired) GetServer(ctx context.Context, id string) (slum.Server, error) {
	if err := desired.ValidateID("server id", id); err != nil {
		return slum.Server{}, err
	}
	return getServer(ctx, s.eng.Read(), id)
}

// ListServers returns every server, by id.
func (s *Desired) ListServers(ctx context.Context) ([]slum.Server, error) {
	rows, err := s.eng.Read().ListServers(ctx)
	return convert(rows, err, "list servers", toServer)
}

// ServersInRegion returns the servers of one region.
func (s *Desired) ServersInRegion(ctx context.Context, region string) ([]slum.Server, error) {
	if err := desired.ValidateRegion("region", region); err != nil {
		return nil, err
	}
	rows, err := s.eng.Read().ListServersInRegion(ctx, region)
	return convert(rows, err, "list servers in region "+region, toServer)
}

// UpdateServer changes a server's settings. Capacity cannot drop below what
// its instances use.
func (s *Desired) UpdateServer(ctx context.Context, id string, u slum.ServerUpdate) (slum.Server, error) {
	var out slum.Server
	err := s.write(ctx, func(q db.Querier, now int64) error {
		srv, err := getServer(ctx, q, id)
		if err != nil {
			return fmt.Errorf("update server: %w", err)
		}
		oldHost := desired.DefaultDomain(srv.URL)
		if u.URL != nil {
			srv.URL = strings.TrimSuffix(*u.URL, "/")
			if u.Domain == nil && srv.Domain == oldHost {
				srv.Domain = desired.DefaultDomain(srv.URL)
			}
		}
		if u.Region != nil {
			srv.Region = *u.Region
		}
		if u.CapacityMB != nil {
			srv.CapacityMB = *u.CapacityMB
		}
		if u.Domain != nil {
			srv.Domain = *u.Domain
		}
		if u.Token != nil {
			srv.Token = *u.Token
		}
		if err := desired.ValidateServer(srv); err != nil {
			return fmt.Errorf("update server %s: %w", id, err)
		}
		use, err := q.ServerUsageOne(ctx, id)
		if err != nil {
			return fmt.Errorf("update server %s: %w", id, err)
		}
		if use.UsedMb > srv.CapacityMB {
			return fmt.Errorf("update server %s: %w: its instances use %d MB, more than capacity_mb %d",
				id, slum.ErrNoCapacity, use.UsedMb, srv.CapacityMB)
		}
		if _, err := q.UpdateServer(ctx, updateServerParams(srv, now)); err != nil {
			return fmt.Errorf("update server %s: %w", id, err)
		}
		srv.UpdatedAt = fromMS(now)
		out = srv
		return event(ctx, q, now, slum.ServerRef(id), slum.ReasonUpdated, "server settings changed")
	})
	return out, err
}

// ServerStats returns one server's capacity use.
func (s *Desired) ServerStats(ctx context.Context, id string) (slum.ServerStats, error) {
	srv, err := s.GetServer(ctx, id)
	if err != nil {
		return slum.ServerStats{}, err
	}
	use, err := s.eng.Read().ServerUsageOne(ctx, id)
	if err != nil {
		return slum.ServerStats{}, fmt.Errorf("server stats %s: %w", id, err)
	}
	return slum.ServerStats{ServerID: id, CapacityMB: srv.CapacityMB, UsedMB: use.UsedMb,
		FreeMB: srv.CapacityMB - use.UsedMb, Tenants: use.Tenants, Instances: use.Instances}, nil
}

// AllServerStats returns every server's capacity use, by id.
func (s *Desired) AllServerStats(ctx context.Context) ([]slum.ServerStats, error) {
	rows, err := s.eng.Read().ServerUsage(ctx)
	return convert(rows, err, "server stats", func(r db.ServerUsageRow) slum.ServerStats {
		return slum.ServerStats{ServerID: r.ID, CapacityMB: r.CapacityMb, UsedMB: r.UsedMb,
			FreeMB: r.CapacityMb - r.UsedMb, Tenants: r.Tenants, Instances: r.Instances}
	})
}

// RemoveServer deletes a server that has no instances. Unless force is set
// it also refuses while the controller has yet to stop copies it placed
// there, which would otherwise be left running unwatched.
func (s *Desired) RemoveServer(ctx context.Context, id string, force bool) error {
	if err := desired.ValidateID("server id", id); err != nil {
		return fmt.Errorf("remove server: %w", err)
	}
	return s.write(ctx, func(q db.Querier, now int64) error {
		if _, err := getServer(ctx, q, id); err != nil {
			return fmt.Errorf("remove server: %w", err)
		}
		use, err := q.ServerUsageOne(ctx, id)
		if err != nil {
			return fmt.Errorf("remove server %s: %w", id, err)
		}
		if use.Instances > 0 {
			return fmt.Errorf("remove server %s: %w: %d tenants with %d instances are placed there; move or remove them first (or drain the server)",
				id, slum.ErrHasActiveTenants, use.Tenants, use.Instances)
		}
		if !force {
			n, err := q.CountPlacementsOnServer(ctx, id)
			if err != nil {
				return fmt.Errorf("remove server %s: %w", id, err)
			}
			if n > 0 {
				return fmt.Errorf("remove server %s: %w: the controller has yet to stop %d instances it placed there; wait for it, or force",
					id, slum.ErrConflict, n)
			}
		}
		if err := q.ClearHomeServer(ctx, id); err != nil {
			return fmt.Errorf("remove server %s: %w", id, err)
		}
		if _, err := q.DeleteServer(ctx, id); err != nil {
			return fmt.Errorf("remove server %s: %w", id, err)
		}
		return event(ctx, q, now, slum.ServerRef(id), slum.ReasonRemoved, "server removed")
	})
}

// SetServerState cordons (ServerCordoned) or uncordons (ServerActive) a
// server. Use Drain to drain one.
func (s *Desired) SetServerState(ctx context.Context, id string, state slum.ServerState) (slum.Server, error) {
	if state != slum.ServerActive && state != slum.ServerCordoned {
		return slum.Server{}, invalid("state", string(state), "must be active or cordoned; drain with Drain")
	}
	var out slum.Server
	err := s.write(ctx, func(q db.Querier, now int64) error {
		srv, err := getServer(ctx, q, id)
		if err != nil {
			return err
		}
		if srv.State == state {
			out = srv
			return nil
		}
		srv.State = state
		if _, err := q.UpdateServer(ctx, updateServerParams(srv, now)); err != nil {
			return fmt.Errorf("set server %s %s: %w", id, state, err)
		}
		srv.UpdatedAt = fromMS(now)
		out = srv
		reason := map[slum.ServerState]slum.EventReason{slum.ServerActive: slum.ReasonUncordoned, slum.ServerCordoned: slum.ReasonCordoned}[state]
		return event(ctx, q, now, slum.ServerRef(id), reason, "server is now "+string(state))
	})
	return out, err
}

// Drain marks a server draining and places each of its instances on another
// server, all in one transaction: when some instance fits nowhere nothing
// changes. The controller then starts the new copies and stops the old ones.
func (s *Desired) Drain(ctx context.Context, id string) ([]slum.Move, error) {
	var moves []slum.Move
	err := s.write(ctx, func(q db.Querier, now int64) error {
		moves = nil
		srv, err := getServer(ctx, q, id)
		if err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		p, err := loadPlacer(ctx, q)
		if err != nil {
			return fmt.Errorf("drain %s: %w", id, err)
		}
		rows, err := q.ListInstancesOnServer(ctx, id)
		if err != nil {
			return fmt.Errorf("drain %s: %w", id, err)
		}
		tenantRegion := map[string]string{}
		for _, r := range rows {
			in := toInstance(r)
			region, ok := tenantRegion[in.TenantID]
			if !ok {
				t, err := q.GetTenant(ctx, in.TenantID)
				if err != nil {
					return fmt.Errorf("drain %s: %w", id, err)
				}
				region = t.Region
				tenantRegion[in.TenantID] = region
			}
			to, err := p.Place(in.TenantID, region, in.Process, in.MemoryMB, id)
			if err != nil {
				return fmt.Errorf("drain %s: instance %s: %w", id, in.Key(), err)
			}
			p.Release(in)
			in.ServerID, in.HomeServerID = to, to
			p.Take(in)
			if _, err := q.UpdateInstance(ctx, updateInstanceParams(in, now)); err != nil {
				return fmt.Errorf("drain %s: move %s: %w", id, in.Key(), err)
			}
			moves = append(moves, slum.Move{Instance: in.Key(), From: id, To: to})
			if err := event(ctx, q, now, slum.InstanceRef(in.Key()), slum.ReasonMoved, "drain of "+id+": placed on "+to); err != nil {
				return err
			}
		}
		srv.State = slum.ServerDraining
		if _, err := q.UpdateServer(ctx, updateServerParams(srv, now)); err != nil {
			return fmt.Errorf("drain %s: %w", id, err)
		}
		return event(ctx, q, now, slum.ServerRef(id), slum.ReasonDraining, fmt.Sprintf("server draining: %d instances placed elsewhere", len(moves)))
	})
	return moves, err
}

// loadPlacer reads every server and instance into a Placer. Servers the
// controller last saw dead, suspect or rejecting its token take nothing new.
func loadPlacer(ctx context.Context, q db.Querier) (*desired.Placer, error) {
	p := desired.NewPlacer()
	servers, err := q.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := q.ListServerStatus(ctx)
	if err != nil {
		return nil, err
	}
	health := make(map[string]slum.Health, len(statuses))
	for _, st := range statuses {
		health[st.ServerID] = slum.Health(st.Health)
	}
	for _, r := range servers {
		unfit := ""
		switch h := health[r.ID]; h {
		case slum.HealthDead, slum.HealthSuspect, slum.HealthUnauthorized:
			unfit = "the controller last saw it " + string(h)
		}
		p.AddServer(toServer(r), unfit)
	}
	insts, err := q.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range insts {
		p.Take(toInstance(r))
	}
	return p, nil
}
