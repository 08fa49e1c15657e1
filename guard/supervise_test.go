package guard

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/litestream"
)

// A stop that comes before the database was made the newest (during a
// restore, say) must not send the local file: it may be the stale one.
func TestNoLastSyncOfADatabaseNotMadeTheNewest(t *testing.T) {
	db := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(db, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &supervisor{
		cfg:        Config{DB: db, Clock: clock.Real{}, Grace: time.Second, Litestream: litestream.Runner{Bin: "/bin/true", DB: db}},
		spawn:      newSpawner(io.Discard),
		logw:       &lineWriter{w: io.Discard},
		validUntil: time.Now().Add(time.Hour),
	}
	s.lastSync()
	if s.ls != nil {
		t.Fatal("a last sync ran for a database the guard had not made the newest")
	}
	s.ready = true
	s.lastSync()
	if s.ls == nil {
		t.Fatal("no last sync for a ready database with a valid lease")
	}
	<-s.ls.done
}
