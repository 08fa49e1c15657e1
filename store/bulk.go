package store

import (
	"context"

	"github.com/slum-fleet/slum/db"
)

// BulkQuerier is what an engine's transaction may offer besides
// db.Querier: many rows in one statement, which a large fleet file's
// first apply, and a controller's first placements and status of a large
// fleet, spend most of their writing time on otherwise. A call that
// fails must change nothing and leave the transaction usable (SQLite
// undoes just the statement), so that the store can insert the same rows
// one by one to name the row at fault. Engines without it (Postgres,
// where a failed statement aborts the transaction, and whose pipeline
// batches anyway) get one statement per row.
type BulkQuerier interface {
	InsertInstances(ctx context.Context, rows []db.InsertInstanceParams) error
	InsertTenants(ctx context.Context, rows []db.InsertTenantParams) error
	InsertPlacements(ctx context.Context, rows []db.InsertPlacementParams) error
	UpsertInstanceStatuses(ctx context.Context, rows []db.UpsertInstanceStatusParams) error
	UpsertTenantStatuses(ctx context.Context, rows []db.UpsertTenantStatusParams) error
}

// bulkRows is how many rows the store hands a BulkQuerier at once.
const bulkRows = 256

// insertAll inserts rows through insertMany, bulkRows at a time when q is
// a BulkQuerier, else (or to find the row at fault when a batch fails)
// through insertOne. insertOne's error is the one returned.
func insertAll[R any](ctx context.Context, q db.Querier, rows []R,
	insertMany func(BulkQuerier, context.Context, []R) error, insertOne func(int) error) error {
	bq, bulk := q.(BulkQuerier)
	for start := 0; start < len(rows); start += bulkRows {
		end := min(start+bulkRows, len(rows))
		if bulk && end-start > 1 && insertMany(bq, ctx, rows[start:end]) == nil {
			continue
		}
		for i := start; i < end; i++ {
			if err := insertOne(i); err != nil {
				return err
			}
		}
	}
	return nil
}
