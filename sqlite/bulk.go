package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/store"
)

// txQueries are the queries of one transaction, with the many-row inserts
// store.BulkQuerier describes. A multi-row INSERT that fails is undone by
// SQLite as a whole statement, leaving the transaction usable.
type txQueries struct {
	*db.Queries
	tx *sql.Tx
	// stmts are the transaction's many-row statements, by table and rows.
	stmts map[bulkKey]*sql.Stmt
}

var _ store.BulkQuerier = (*txQueries)(nil)

type bulkKey struct {
	table string
	rows  int
}

// The columns, values and conflict clauses of db's InsertInstance,
// InsertTenant, InsertPlacement, UpsertInstanceStatus and
// UpsertTenantStatus (queries/), which TestBulkInsertsMatchSingleRows and
// TestBulkStatusMatchesSingleRows hold these to.
const (
	instanceColumns  = "INSERT INTO instances (tenant_id, id, process, server_id, home_server_id, memory_mb, desired_state, mode, rank, generation, created_at, updated_at) VALUES "
	instanceValues   = "(?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
	tenantColumns    = "INSERT INTO tenants (id, domain, region, failover, serving, data, replica, created_at, updated_at) VALUES "
	tenantValues     = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
	placementColumns = "INSERT INTO placements (server_id, name, tenant_id, instance_id, created_at) VALUES "
	placementValues  = "(?, ?, ?, ?, ?)"
	placementTail    = " ON CONFLICT (server_id, name) DO NOTHING"

	instanceStatusColumns = "INSERT INTO instance_status (tenant_id, instance_id, server_id, phase, health, last_error, message, attempts, observed_generation, updated_at) VALUES "
	instanceStatusValues  = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	instanceStatusTail    = ` ON CONFLICT (tenant_id, instance_id) DO UPDATE SET server_id = excluded.server_id, phase = excluded.phase,
health = excluded.health, last_error = excluded.last_error, message = excluded.message, attempts = excluded.attempts,
observed_generation = excluded.observed_generation, updated_at = excluded.updated_at`
	tenantStatusColumns = "INSERT INTO tenant_status (tenant_id, serving, spares, reason, changed_at, updated_at) VALUES "
	tenantStatusValues  = "(?, ?, ?, ?, ?, ?)"
	tenantStatusTail    = ` ON CONFLICT (tenant_id) DO UPDATE SET serving = excluded.serving, spares = excluded.spares,
reason = excluded.reason, changed_at = excluded.changed_at, updated_at = excluded.updated_at`
)

func (q *txQueries) stmt(ctx context.Context, table, head, values, tail string, rows int) (*sql.Stmt, error) {
	k := bulkKey{table, rows}
	if s, ok := q.stmts[k]; ok {
		return s, nil
	}
	text := head + strings.Repeat(values+", ", rows-1) + values + tail
	s, err := q.tx.PrepareContext(ctx, text) // closed with the transaction
	if err != nil {
		return nil, fmt.Errorf("prepare insert of %d %s: %w", rows, table, err)
	}
	if q.stmts == nil {
		q.stmts = map[bulkKey]*sql.Stmt{}
	}
	q.stmts[k] = s
	return s, nil
}

// InsertInstances inserts rows as InsertInstance does each, in one statement.
func (q *txQueries) InsertInstances(ctx context.Context, rows []db.InsertInstanceParams) error {
	s, err := q.stmt(ctx, "instances", instanceColumns, instanceValues, "", len(rows))
	if err != nil {
		return err
	}
	args := make([]any, 0, 11*len(rows))
	for _, r := range rows {
		args = append(args, r.TenantID, r.ID, r.Process, r.ServerID, r.HomeServerID, r.MemoryMb, r.DesiredState, r.Mode, r.Rank, r.CreatedAt, r.UpdatedAt)
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

// InsertTenants inserts rows as InsertTenant does each, in one statement.
func (q *txQueries) InsertTenants(ctx context.Context, rows []db.InsertTenantParams) error {
	s, err := q.stmt(ctx, "tenants", tenantColumns, tenantValues, "", len(rows))
	if err != nil {
		return err
	}
	args := make([]any, 0, 9*len(rows))
	for _, r := range rows {
		args = append(args, r.ID, r.Domain, r.Region, r.Failover, r.Serving, r.Data, r.Replica, r.CreatedAt, r.UpdatedAt)
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

// InsertPlacements inserts rows as InsertPlacement does each, in one
// statement.
func (q *txQueries) InsertPlacements(ctx context.Context, rows []db.InsertPlacementParams) error {
	s, err := q.stmt(ctx, "placements", placementColumns, placementValues, placementTail, len(rows))
	if err != nil {
		return err
	}
	args := make([]any, 0, 5*len(rows))
	for _, r := range rows {
		args = append(args, r.ServerID, r.Name, r.TenantID, r.InstanceID, r.CreatedAt)
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

// UpsertInstanceStatuses writes rows as UpsertInstanceStatus does each, in
// one statement.
func (q *txQueries) UpsertInstanceStatuses(ctx context.Context, rows []db.UpsertInstanceStatusParams) error {
	s, err := q.stmt(ctx, "instance_status", instanceStatusColumns, instanceStatusValues, instanceStatusTail, len(rows))
	if err != nil {
		return err
	}
	args := make([]any, 0, 10*len(rows))
	for _, r := range rows {
		args = append(args, r.TenantID, r.InstanceID, r.ServerID, r.Phase, r.Health, r.LastError, r.Message, r.Attempts, r.ObservedGeneration, r.UpdatedAt)
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

// UpsertTenantStatuses writes rows as UpsertTenantStatus does each, in one
// statement.
func (q *txQueries) UpsertTenantStatuses(ctx context.Context, rows []db.UpsertTenantStatusParams) error {
	s, err := q.stmt(ctx, "tenant_status", tenantStatusColumns, tenantStatusValues, tenantStatusTail, len(rows))
	if err != nil {
		return err
	}
	args := make([]any, 0, 6*len(rows))
	for _, r := range rows {
		args = append(args, r.TenantID, r.Serving, r.Spares, r.Reason, r.ChangedAt, r.UpdatedAt)
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}
