package desired

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

func validateTenant(t slum.Tenant) error {
	if err := ValidateID("tenant id", t.ID); err != nil {
		return err
	}
	if err := ValidateDomain("domain", t.Domain); err != nil {
		return err
	}
	if err := ValidateRegion("region", t.Region); err != nil {
		return err
	}
	switch t.Failover {
	case slum.FailoverMove, slum.FailoverNone:
	default:
		return invalid("failover", string(t.Failover), "must be move or none")
	}
	switch t.Serving {
	case slum.ServingOne, slum.ServingAll:
	default:
		return invalid("serving", string(t.Serving), "must be one or all")
	}
	return nil
}

// normalizeTenant fills in the default policies.
func normalizeTenant(t *slum.Tenant) {
	if t.Failover == "" {
		t.Failover = slum.FailoverMove
	}
	if t.Serving == "" {
		t.Serving = slum.ServingOne
	}
}

func insertTenantParams(t slum.Tenant, now int64) db.InsertTenantParams {
	return db.InsertTenantParams{ID: t.ID, Domain: t.Domain, Region: t.Region, Failover: string(t.Failover),
		Serving: string(t.Serving), CreatedAt: now, UpdatedAt: now}
}

func updateTenantParams(t slum.Tenant, now int64) db.UpdateTenantParams {
	return db.UpdateTenantParams{ID: t.ID, Domain: t.Domain, Region: t.Region, Failover: string(t.Failover),
		Serving: string(t.Serving), UpdatedAt: now}
}

func toTenant(r db.Tenant) slum.Tenant {
	return slum.Tenant{ID: r.ID, Domain: r.Domain, Region: r.Region, Failover: slum.FailoverPolicy(r.Failover),
		Serving: slum.ServingPolicy(r.Serving), CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}
}

func getTenant(ctx context.Context, q *db.Queries, id string) (slum.Tenant, error) {
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
func checkDomainFree(ctx context.Context, q *db.Queries, domain, self string) error {
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
func (s *Store) AddTenant(ctx context.Context, t slum.Tenant, first ...slum.InstanceSpec) (slum.Tenant, []slum.Instance, error) {
	normalizeTenant(&t)
	if err := validateTenant(t); err != nil {
		return slum.Tenant{}, nil, fmt.Errorf("add tenant: %w", err)
	}
	insts := make([]slum.Instance, len(first))
	for i, spec := range first {
		spec.TenantID = t.ID
		in, err := specInstance(spec)
		if err != nil {
			return slum.Tenant{}, nil, fmt.Errorf("add tenant %s: %w", t.ID, err)
		}
		insts[i] = in
	}
	err := s.write(ctx, func(q *db.Queries, now int64) error {
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
func (s *Store) GetTenant(ctx context.Context, id string) (slum.Tenant, error) {
	if err := ValidateID("tenant id", id); err != nil {
		return slum.Tenant{}, err
	}
	return getTenant(ctx, s.db.Queries(), id)
}

// GetTenantByDomain returns the tenant that owns a domain.
func (s *Store) GetTenantByDomain(ctx context.Context, domain string) (slum.Tenant, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := ValidateDomain("domain", domain); err != nil {
		return slum.Tenant{}, err
	}
	r, err := s.db.Queries().GetTenantByDomain(ctx, domain)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Tenant{}, fmt.Errorf("tenant with domain %s %w", domain, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Tenant{}, fmt.Errorf("get tenant by domain %s: %w", domain, err)
	}
	return toTenant(r), nil
}

// ListTenants returns every tenant, by id.
func (s *Store) ListTenants(ctx context.Context) ([]slum.Tenant, error) {
	rows, err := s.db.Queries().ListTenants(ctx)
	return convert(rows, err, "list tenants", toTenant)
}

// ListTenantsOnServer returns the tenants with an instance placed on a server.
func (s *Store) ListTenantsOnServer(ctx context.Context, serverID string) ([]slum.Tenant, error) {
	if _, err := s.GetServer(ctx, serverID); err != nil {
		return nil, err
	}
	rows, err := s.db.Queries().ListTenantsOnServer(ctx, serverID)
	return convert(rows, err, "list tenants on "+serverID, toTenant)
}

// UpdateTenant changes a tenant's domain or region.
func (s *Store) UpdateTenant(ctx context.Context, id string, u slum.TenantUpdate) (slum.Tenant, error) {
	var out slum.Tenant
	err := s.write(ctx, func(q *db.Queries, now int64) error {
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
		if err := validateTenant(t); err != nil {
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
func (s *Store) RemoveTenant(ctx context.Context, id string) error {
	if err := ValidateID("tenant id", id); err != nil {
		return fmt.Errorf("remove tenant: %w", err)
	}
	return s.write(ctx, func(q *db.Queries, now int64) error {
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
