package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/internal/pgtest"
	"github.com/slum-fleet/slum/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fleetURL is a new database on the test server with an empty fleet: a
// copy of one migrated once.
func fleetURL(t testing.TB) string {
	t.Helper()
	return pgtest.URLFrom(t, "fleet", func(url string) error {
		e, err := OpenEngine(context.Background(), url, true)
		if err == nil {
			err = e.Close()
		}
		return err
	})
}

// openEngine opens a new, empty fleet database on the test server.
func openEngine(t testing.TB) (*Engine, string) {
	t.Helper()
	url := fleetURL(t)
	e, err := OpenEngine(context.Background(), url, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, url
}

func openStoreWithClock(t testing.TB, now func() time.Time) *store.Store {
	t.Helper()
	e, _ := openEngine(t)
	if now == nil {
		return store.New(e)
	}
	return store.NewWithClock(e, now)
}

// The Postgres store keeps the Fleet contract.
func TestFleetContract(t *testing.T) {
	fleettest.Run(t, func(t testing.TB) fleettest.Subject {
		e, url := openEngine(t)
		s := store.New(e)
		return fleettest.Subject{Fleet: s, Store: s, Stored: func(t testing.TB) []byte { return pgtest.Files(t, url) }}
	})
}

// The Postgres store keeps the store's contract with the controller.
func TestStoreContract(t *testing.T) {
	fleettest.RunStore(t, openStoreWithClock)
}
