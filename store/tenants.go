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

func insertTenantParams(t slum.Tenant, now int64) db.InsertTenantParams {
	return db.InsertTenantParams{ID: t.ID, Domain: t.Domain, Region: t.Region, Failover: string(t.Failover),
		Serving: string(t.Serving), Data: string(t.Data), Replica: t.Replica, CreatedAt: now, UpdatedAt: now}
}

func updateTenantParams(t slum.Tenant, now int64) db.UpdateTenantParams {
	return db.UpdateTenantParams{ID: t.ID, Domain: t.Domain, Region: t.Region, Failover: string(t.Failover),
		Serving: string(t.Serving), Data: string(t.Data), Replica: t.Replica, UpdatedAt: now}
}

func toTenant(r db.Tenant) slum.Tenant {
	return slum.Tenant{ID: r.ID, Domain: r.Domain, Region: r.Region, Failover: slum.FailoverPolicy(r.Failover),
		Serving: slum.ServingPolicy(r.Serving), Data: slum.DataPolicy(r.Data), Replica: r.Replica, CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}
}

func getTenant(ctx context.Context, q db.Querier, id string) (slum.Tenant, error) {
	r, err := q.GetTenant(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Tenant{}, fmt.Errorf("tenant %s %w", id, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return toTenant(r), nil
}

// checkDomainFree fails when another tenant has the domain.
func checkDomainFree(ctx context.Context, q db.Querier, domain, self string) error {
	r, err := q.GetTenantByDomain(ctx, domain)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.ID != self {
		return fmt.Errorf("%w: domain %s belongs to tenant %s", slum.ErrConflict, domain, r.ID)
	}
	return nil
}

// AddTenant adds a tenant, and with it, in the same transaction, the
// instances of first (whose TenantID it fills in). More instances are added
// with SpawnInstance.
func (s *Desired) AddTenant(ctx context.Context, t slum.Tenant, first ...slum.InstanceSpec) (slum.Tenant, []slum.Instance, error) {
	desired.NormalizeTenant(&t)
	if err := desired.ValidateTenant(t); err != nil {
		return slum.Tenant{}, nil, fmt.Errorf("add tenant: %w", err)
	}
	insts := make([]slum.Instance, len(first))
	for i, spec := range first {
		spec.TenantID = t.ID
		in, err := desired.NewInstance(spec)
		if err != nil {
			return slum.Tenant{}, nil, fmt.Errorf("add tenant %s: %w", t.ID, err)
		}
		insts[i] = in
	}
	err := s.write(ctx, func(q db.Querier, now int64) error {
		if _, err := q.GetTenant(ctx, t.ID); err == nil {
			return fmt.Errorf("add tenant: tenant %s %w", t.ID, slum.ErrAlreadyExists)
		}
		if err := checkDomainFree(ctx, q, t.Domain, t.ID); err != nil {
			return fmt.Errorf("add tenant %s: %w", t.ID, err)
		}
		t.CreatedAt, t.UpdatedAt = fromMS(now), fromMS(now)
		if err := q.InsertTenant(ctx, insertTenantParams(t, now)); err != nil {
			return fmt.Errorf("add tenant %s: %w", t.ID, err)
		}
		if err := event(ctx, q, now, slum.TenantRef(t.ID), slum.ReasonAdded, "tenant added for "+t.Domain); err != nil {
			return err
		}
		for i := range insts {
			var err error
			if insts[i], err = spawn(ctx, q, now, insts[i], first[i]); err != nil {
				return fmt.Errorf("add tenant %s: %w", t.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return slum.Tenant{}, nil, err
	}
	return t, insts, nil
}

// GetTenant returns one tenant.
func (s *Desired) GetTenant(ctx context.Context, id string) (slum.Tenant, error) {
	if err := desired.ValidateID("tenant id", id); err != nil {
		return slum.Tenant{}, err
	}
	return getTenant(ctx, s.eng.Read(), id)
}

// GetTenantByDomain returns the tenant that owns a domain.
func (s *Desired) GetTenantByDomain(ctx context.Context, domain string) (slum.Tenant, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := desired.ValidateDomain("domain", domain); err != nil {
		return slum.Tenant{}, err
	}
	r, err := s.eng.Read().GetTenantByDomain(ctx, domain)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Tenant{}, fmt.Errorf("tenant with domain %s %w", domain, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Tenant{}, fmt.Errorf("get tenant by domain %s: %w", domain, err)
	}
	return toTenant(r), nil
}

// ListTenants returns every tenant, by id.
func (s *Desired) ListTenants(ctx context.Context) ([]slum.Tenant, error) {
	rows, err := s.eng.Read().ListTenants(ctx)
	return convert(rows, err, "list tenants", toTenant)
}

// ListTenantsOnServer returns the tenants with an instance placed on a server.
func (s *Desired) ListTenantsOnServer(ctx context.Context, serverID string) ([]slum.Tenant, error) {
	if _, err := s.GetServer(ctx, serverID); err != nil {
		return nil, err
	}
	rows, err := s.eng.Read().ListTenantsOnServer(ctx, serverID)
	return convert(rows, err, "list tenants on "+serverID, toTenant)
}

// UpdateTenant changes a tenant's domain, region or policies.
func (s *Desired) UpdateTenant(ctx context.Context, id string, u slum.TenantUpdate) (slum.Tenant, error) {
	var out slum.Tenant
	err := s.write(ctx, func(q db.Querier, now int64) error {
		t, err := getTenant(ctx, q, id)
		if err != nil {
			return fmt.Errorf("update tenant: %w", err)
		}
		if u.Domain != nil {
			t.Domain = *u.Domain
		}
		if u.Region != nil {
			t.Region = *u.Region
		}
		if u.Failover != nil {
			t.Failover = *u.Failover
		}
		if u.Serving != nil {
			t.Serving = *u.Serving
		}
		if u.Data != nil {
			t.Data = *u.Data
			if t.Data == slum.DataLocal && u.Replica == nil {
				t.Replica = "" // a tenant made local keeps no replica
			}
		}
		if u.Replica != nil {
			t.Replica = *u.Replica
		}
		if err := desired.ValidateTenant(t); err != nil {
			return fmt.Errorf("update tenant %s: %w", id, err)
		}
		if err := checkDomainFree(ctx, q, t.Domain, id); err != nil {
			return fmt.Errorf("update tenant %s: %w", id, err)
		}
		if _, err := q.UpdateTenant(ctx, updateTenantParams(t, now)); err != nil {
			return fmt.Errorf("update tenant %s: %w", id, err)
		}
		t.UpdatedAt = fromMS(now)
		out = t
		return event(ctx, q, now, slum.TenantRef(id), slum.ReasonUpdated, "tenant settings changed")
	})
	return out, err
}

// RemoveTenant deletes a tenant and all its instances. The controller stops
// the copies it placed.
func (s *Desired) RemoveTenant(ctx context.Context, id string) error {
	if err := desired.ValidateID("tenant id", id); err != nil {
		return fmt.Errorf("remove tenant: %w", err)
	}
	return s.write(ctx, func(q db.Querier, now int64) error {
		if _, err := getTenant(ctx, q, id); err != nil {
			return fmt.Errorf("remove tenant: %w", err)
		}
		if err := q.InsertRemovalsOfTenant(ctx, db.InsertRemovalsOfTenantParams{TenantID: id, RemovedAt: now}); err != nil {
			return fmt.Errorf("remove tenant %s: %w", id, err)
		}
		n, err := q.DeleteInstancesOfTenant(ctx, id)
		if err != nil {
			return fmt.Errorf("remove tenant %s: %w", id, err)
		}
		if _, err := q.DeleteTenant(ctx, id); err != nil {
			return fmt.Errorf("remove tenant %s: %w", id, err)
		}
		return event(ctx, q, now, slum.TenantRef(id), slum.ReasonRemoved, fmt.Sprintf("tenant removed with %d instances", n))
	})
}
