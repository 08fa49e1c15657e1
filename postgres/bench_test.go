package postgres

import (
	"testing"

	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/store"
)

// BenchmarkStore is the controller's writes and reads on Postgres; the
// same on SQLite is sqlite's BenchmarkStore.
func BenchmarkStore(b *testing.B) {
	fleettest.Bench(b, 10000, func(t testing.TB) *store.Store { return openStoreWithClock(t, nil) })
}
