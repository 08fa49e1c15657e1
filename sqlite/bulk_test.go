package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/store"
)

// The many-row inserts write what InsertInstance and InsertTenant write
// row by row: the same rows and the same change log, in the same order.
func TestBulkInsertsMatchSingleRows(t *testing.T) {
	ctx := context.Background()
	var tenants []db.InsertTenantParams
	var instances []db.InsertInstanceParams
	for i := 0; i < 5; i++ {
		tenants = append(tenants, db.InsertTenantParams{ID: fmt.Sprintf("t%d", i), Domain: fmt.Sprintf("t%d.example.com", i),
			Region: "r1", Failover: "move", Serving: "one", Data: "replicated", Replica: fmt.Sprintf("s3://b/t%d", i), CreatedAt: 10, UpdatedAt: 11})
		instances = append(instances, db.InsertInstanceParams{TenantID: fmt.Sprintf("t%d", i), ID: "prod", Process: "api",
			ServerID: "s1", HomeServerID: "s2", MemoryMb: int64(64 + i), DesiredState: "running", Mode: "always", Rank: int64(i), CreatedAt: 12, UpdatedAt: 13})
	}
	read := func(bulk bool) (any, any, any) {
		e, err := OpenEngine(ctx, filepath.Join(t.TempDir(), "slum.db"), true)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		err = e.InTx(ctx, func(q db.Querier) error {
			if err := q.InsertServer(ctx, db.InsertServerParams{ID: "s1", Url: "http://10.0.0.1:8080", Domain: "10.0.0.1", CapacityMb: 1000, State: "active"}); err != nil {
				return err
			}
			if err := q.InsertServer(ctx, db.InsertServerParams{ID: "s2", Url: "http://10.0.0.2:8080", Domain: "10.0.0.2", CapacityMb: 1000, State: "active"}); err != nil {
				return err
			}
			if bulk {
				bq := q.(store.BulkQuerier)
				if err := bq.InsertTenants(ctx, tenants); err != nil {
					return err
				}
				return bq.InsertInstances(ctx, instances)
			}
			for _, r := range tenants {
				if err := q.InsertTenant(ctx, r); err != nil {
					return err
				}
			}
			for _, r := range instances {
				if err := q.InsertInstance(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		q := e.Read()
		ts, err1 := q.ListTenants(ctx)
		is, err2 := q.ListInstances(ctx)
		cl, err3 := q.ListChangesSince(ctx, db.ListChangesSinceParams{Seq: 0, Limit: 1000})
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		return ts, is, cl
	}
	t1, i1, c1 := read(false)
	t2, i2, c2 := read(true)
	if !reflect.DeepEqual(t1, t2) || !reflect.DeepEqual(i1, i2) || !reflect.DeepEqual(c1, c2) {
		t.Fatalf("row by row:\n%+v\n%+v\n%+v\nmany to a statement:\n%+v\n%+v\n%+v", t1, i1, c1, t2, i2, c2)
	}
	if len(i2.([]db.Instance)) != len(instances) || len(t2.([]db.Tenant)) != len(tenants) {
		t.Fatalf("wrote %d instances, %d tenants", len(i2.([]db.Instance)), len(t2.([]db.Tenant)))
	}
}

// A many-row insert that fails writes none of its rows and leaves the
// transaction usable, as store.BulkQuerier requires.
func TestFailedBulkInsertChangesNothing(t *testing.T) {
	ctx := context.Background()
	e, err := OpenEngine(ctx, filepath.Join(t.TempDir(), "slum.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rows := []db.InsertTenantParams{
		{ID: "a", Domain: "a.example.com", Failover: "move", Serving: "one", Data: "local"},
		{ID: "b", Domain: "a.example.com", Failover: "move", Serving: "one", Data: "local"}, // the domain is taken
	}
	err = e.InTx(ctx, func(q db.Querier) error {
		if err := q.(store.BulkQuerier).InsertTenants(ctx, rows); err == nil {
			t.Error("inserting two tenants of one domain succeeded")
		}
		return q.InsertTenant(ctx, rows[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := e.Read().ListTenants(ctx)
	if err != nil || len(ts) != 1 || ts[0].ID != "b" {
		t.Fatalf("tenants %+v, %v; want only b", ts, err)
	}
}

// The many-row placement and status writes write what InsertPlacement,
// UpsertInstanceStatus and UpsertTenantStatus write row by row, updates of
// rows already there included, and a placement already recorded is left
// as it was.
func TestBulkStatusMatchesSingleRows(t *testing.T) {
	ctx := context.Background()
	var placements []db.InsertPlacementParams
	var first, second []db.UpsertInstanceStatusParams
	var tenants, tenants2 []db.UpsertTenantStatusParams
	for i := 0; i < 5; i++ {
		tenant := fmt.Sprintf("t%d", i)
		placements = append(placements, db.InsertPlacementParams{ServerID: "s1", Name: tenant + "-prod", TenantID: tenant, InstanceID: "prod", CreatedAt: int64(20 + i)})
		st := db.UpsertInstanceStatusParams{TenantID: tenant, InstanceID: "prod", ServerID: "s1", Phase: "pending", Health: "unknown", Attempts: 1, ObservedGeneration: 1, UpdatedAt: 30}
		first = append(first, st)
		st.Phase, st.Health, st.LastError, st.Message, st.Attempts, st.UpdatedAt = "running", "healthy", "e", "m", int64(i), 31
		second = append(second, st)
		ts := db.UpsertTenantStatusParams{TenantID: tenant, Serving: "s1/" + tenant + "-prod", ChangedAt: 40, UpdatedAt: 41}
		tenants = append(tenants, ts)
		ts.Spares, ts.Reason, ts.UpdatedAt = "s2/x", "r", 42
		tenants2 = append(tenants2, ts)
	}
	again := slices.Clone(placements)
	again[0].CreatedAt = 99 // already recorded: left as it was
	read := func(bulk bool) []any {
		e, err := OpenEngine(ctx, filepath.Join(t.TempDir(), "slum.db"), true)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		err = e.InTx(ctx, func(q db.Querier) error {
			if err := q.InsertServer(ctx, db.InsertServerParams{ID: "s1", Url: "http://10.0.0.1:8080", Domain: "10.0.0.1", CapacityMb: 1000, State: "active"}); err != nil {
				return err
			}
			for i := range placements {
				tenant := placements[i].TenantID
				if err := q.InsertTenant(ctx, db.InsertTenantParams{ID: tenant, Domain: tenant + ".example.com", Failover: "move", Serving: "one", Data: "local"}); err != nil {
					return err
				}
				if err := q.InsertInstance(ctx, db.InsertInstanceParams{TenantID: tenant, ID: "prod", Process: "api", ServerID: "s1", HomeServerID: "s1", MemoryMb: 64, DesiredState: "running", Mode: "always"}); err != nil {
					return err
				}
			}
			if bulk {
				bq := q.(store.BulkQuerier)
				return errors.Join(bq.InsertPlacements(ctx, placements), bq.InsertPlacements(ctx, again[:2]),
					bq.UpsertInstanceStatuses(ctx, first), bq.UpsertInstanceStatuses(ctx, second[1:]),
					bq.UpsertTenantStatuses(ctx, tenants), bq.UpsertTenantStatuses(ctx, tenants2[2:]))
			}
			var errs []error
			for _, r := range append(slices.Clone(placements), again[:2]...) {
				errs = append(errs, q.InsertPlacement(ctx, r))
			}
			for _, r := range append(slices.Clone(first), second[1:]...) {
				errs = append(errs, q.UpsertInstanceStatus(ctx, r))
			}
			for _, r := range append(slices.Clone(tenants), tenants2[2:]...) {
				errs = append(errs, q.UpsertTenantStatus(ctx, r))
			}
			return errors.Join(errs...)
		})
		if err != nil {
			t.Fatal(err)
		}
		q := e.Read()
		ps, err1 := q.ListPlacements(ctx)
		is, err2 := q.ListInstanceStatus(ctx)
		ts, err3 := q.ListTenantStatus(ctx)
		cl, err4 := q.ListChangesSince(ctx, db.ListChangesSinceParams{Seq: 0, Limit: 1000})
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		if len(ps) != 5 || ps[0].CreatedAt != 20 || len(is) != 5 || is[0].Phase != "pending" || is[1].Phase != "running" ||
			len(ts) != 5 || ts[1].Reason != "" || ts[2].Reason != "r" {
			t.Fatalf("bulk=%v: placements %+v\ninstance status %+v\ntenant status %+v", bulk, ps, is, ts)
		}
		return []any{ps, is, ts, cl}
	}
	single, bulk := read(false), read(true)
	if !reflect.DeepEqual(single, bulk) {
		t.Fatalf("row by row:\n%+v\nmany to a statement:\n%+v", single, bulk)
	}
}
