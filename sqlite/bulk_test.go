package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
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
