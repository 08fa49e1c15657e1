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

// The columns and values of db's InsertInstance and InsertTenant (queries/),
// which TestBulkInsertsMatchSingleRows holds these to.
const (
	instanceColumns = "INSERT INTO instances (tenant_id, id, process, server_id, home_server_id, memory_mb, desired_state, mode, rank, generation, created_at, updated_at) VALUES "
	instanceValues  = "(?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
	tenantColumns   = "INSERT INTO tenants (id, domain, region, failover, serving, data, replica, created_at, updated_at) VALUES "
	tenantValues    = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

func (q *txQueries) stmt(ctx context.Context, table, head, values string, rows int) (*sql.Stmt, error) {
	k := bulkKey{table, rows}
	if s, ok := q.stmts[k]; ok {
		return s, nil
	}
	text := head + strings.Repeat(values+", ", rows-1) + values
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
	s, err := q.stmt(ctx, "instances", instanceColumns, instanceValues, len(rows))
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
	s, err := q.stmt(ctx, "tenants", tenantColumns, tenantValues, len(rows))
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
