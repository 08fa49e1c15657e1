package api

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

// A write while the fleet database's file is deleted is answered 503 and
// changes nothing (SQLite would commit it to the unlinked file, lost when
// the file is put back); reads still answer from the file open, and the
// file put back takes writes again.
func TestWriteToADeletedDatabaseIs503AndChangesNothing(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	admin := a.tokens[slum.RoleAdmin]
	path := a.store.Where()
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	r := a.do("POST", "/v1/tenants", admin, map[string]any{"id": "bob", "domain": "bob.example.com"})
	if r.status != http.StatusServiceUnavailable || r.errorKind() != "unavailable" || !strings.Contains(r.body, "was deleted") {
		t.Fatalf("a write with the file deleted: %d %s", r.status, r.body)
	}
	if r := a.do("GET", "/v1/tenants/alice", a.tokens[slum.RoleRead], nil); r.status != http.StatusOK {
		t.Fatalf("a read with the file deleted: %d %s", r.status, r.body)
	}
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	if r := a.do("GET", "/v1/tenants/bob", admin, nil); r.status != http.StatusNotFound {
		t.Fatalf("the refused write left bob: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/v1/tenants", admin, map[string]any{"id": "bob", "domain": "bob.example.com"}); r.status != http.StatusCreated {
		t.Fatalf("a write once the file is back: %d %s", r.status, r.body)
	}
}
