package postgres

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// A fleet copied from SQLite to Postgres and back, and the other way
// round, is the fleet it was.
func TestCopyBetweenEngines(t *testing.T) {
	fleettest.Copies(t, map[string]func(testing.TB) *store.Store{
		"sqlite": func(t testing.TB) *store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "slum.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(t testing.TB) *store.Store { return openStoreWithClock(t, nil) },
	})
}
