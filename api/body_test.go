package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api/wire"
)

// Typed errors become statuses with a JSON body naming the kind and
// carrying the message the CLI prints locally.
func TestErrorsMapToStatuses(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	admin := a.tokens[slum.RoleAdmin]
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		kind, msg    string
	}{
		{"GET", "/v1/tenants/Bob", nil, 400, "invalid", `tenant id "Bob"`},
		{"GET", "/v1/tenants/-", nil, 400, "invalid", `tenant id "": must not be empty`},
		{"GET", "/v1/tenants/bob", nil, 404, "not_found", "tenant bob not found"},
		{"POST", "/v1/servers", map[string]any{"id": "s1", "url": "http://x:1", "capacity_mb": 1}, 409, "already_exists", "add server: server s1 already exists"},
		{"POST", "/v1/tenants", map[string]any{"id": "bob", "domain": "alice.example.com"}, 409, "conflict", "domain alice.example.com belongs to tenant alice"},
		{"DELETE", "/v1/servers/s1", nil, 409, "has_active_tenants", "server has active tenants"},
		{"POST", "/v1/instances", map[string]any{"tenant": "alice", "id": "big", "process": "api", "memory_mb": 5000}, 422, "no_capacity", "no capacity"},
		{"POST", "/v1/holds/7/approve", map[string]any{"by": "ann"}, 404, "not_found", "approve: hold 7 not found"},
		{"POST", "/v1/holds/x/approve", map[string]any{}, 400, "invalid", `hold id "x": must be a positive whole number`},
		{"GET", "/v1/events/recent?last=-1", nil, 400, "invalid", `last "-1": must be a whole number`},
		{"GET", "/v1/nothing", nil, 404, "not_found", "no such endpoint: GET /v1/nothing"},
		{"GET", "/v1/watch?kinds=servers", nil, 400, "invalid", `kinds "servers": is not a kind`},
	} {
		r := a.do(tc.method, tc.path, admin, tc.body)
		var e struct {
			Error struct{ Kind, Message string }
		}
		if err := json.Unmarshal([]byte(r.body), &e); err != nil || r.status != tc.status || e.Error.Kind != tc.kind || !strings.Contains(e.Error.Message, tc.msg) {
			t.Errorf("%s %s: %d %s; want %d %s %q", tc.method, tc.path, r.status, r.body, tc.status, tc.kind, tc.msg)
		}
		if r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: content type %q", tc.method, tc.path, r.header.Get("Content-Type"))
		}
	}
}

// No endpoint ever shows a server's token.
func TestServerTokensAreNeverShown(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	admin := a.tokens[slum.RoleAdmin]
	for _, e := range endpoints {
		if e.method != "GET" {
			continue
		}
		if r := a.do("GET", e.path, admin, nil); strings.Contains(r.body, "tok-s1") {
			t.Errorf("GET %s shows a server token: %s", e.path, r.body)
		}
	}
	r := a.do("GET", "/v1/servers/s1", admin, nil)
	if !strings.Contains(r.body, `"has_token":true`) {
		t.Fatalf("server: %s", r.body)
	}
}

// Bad bodies are refused before anything is written.
func TestBadBodiesChangeNothing(t *testing.T) {
	a := newTestAPI(t, Config{MaxBody: 256})
	a.seed()
	admin := a.tokens[slum.RoleAdmin]
	before := dbState(t, a.store.Where())
	for _, tc := range []struct {
		body        string
		contentType string
		status      int
		msg         string
	}{
		{`{"id": "bob", "domain": "bob.example.com", "domian": "x"}`, "application/json", 400, `unknown field "domian"`},
		{`{"id": "bob", "domain": "bob.example.com"} {"id": "eve"}`, "application/json", 400, "more than one JSON value"},
		{`{"id": "bob", "domain": `, "application/json", 400, "not valid JSON"},
		{``, "application/json", 400, "the request body is empty"},
		{`{"id": 5}`, "application/json", 400, `field "id" must be string`},
		{`{"id": "bob", "domain": "bob.example.com", "region": "` + strings.Repeat("x", 300) + `"}`, "application/json", 413, "larger than 256 bytes"},
		{`id=bob&domain=bob.example.com`, "application/x-www-form-urlencoded", 415, "must be JSON"},
		{`{"id": "bob", "domain": "bob.example.com"}`, "text/plain", 415, "must be JSON"},
	} {
		req, _ := http.NewRequest("POST", a.srv.URL+"/v1/tenants", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", tc.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Kind, Message string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(e.Error.Message, tc.msg) {
			t.Errorf("%.40q: %d %+v, want %d %s", tc.body, resp.StatusCode, e, tc.status, tc.msg)
		}
	}
	if dbState(t, a.store.Where()) != before {
		t.Fatal("a refused body changed the database")
	}
}

// A request cancelled while it waits for its transaction leaves nothing
// behind: the Store's transaction rolls back.
func TestCancelledRequestWritesNothing(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	// Hold the database's write lock, as another writer would.
	d, err := sql.Open("sqlite3", "file:"+a.store.Where()+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tx, err := d.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE revision SET value = value WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	before := dbState(t, a.store.Where())
	ctx, cancel := context.WithCancel(context.Background())
	text := "version: 1\ntenants:\n"
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5"} {
		text += "  - {id: " + id + ", domain: " + id + ".example.com, instances: [{id: prod, process: api}]}\n"
	}
	body, _ := json.Marshal(map[string]any{"file": map[string]any{"name": "f.yaml", "text": text}})
	req, _ := http.NewRequestWithContext(ctx, "POST", a.srv.URL+"/v1/apply", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.tokens[slum.RoleAdmin])
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the apply waits for the lock
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the request was not cancelled: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the server sees the cancel
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if dbState(t, a.store.Where()) != before {
		t.Fatal("a cancelled apply wrote something")
	}
	if ts, _ := a.store.ListTenants(context.Background()); len(ts) != 1 {
		t.Fatalf("tenants: %+v", ts)
	}
}

// Fuzzed bodies sent to every write endpoint: whatever is refused leaves
// the database exactly as it was.
func FuzzRequestBodies(f *testing.F) {
	for _, e := range endpoints {
		if e.body != nil {
			b, _ := json.Marshal(e.body)
			f.Add(b)
		}
	}
	f.Add([]byte(`{"file": {"name": "f", "text": "version: 1\nservers: [{id: a, url: 'http://a:1', capacity_mb: 1, token_env: X}]\n", "tokens": {"a": "t"}}, "prune": true}`))
	f.Add([]byte(`{"id": "s9", "url": "http://a:1", "capacity_mb": -1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	a := newTestAPI(f, Config{MaxBody: 4096, MaxFileBody: 8192})
	a.seed()
	admin := a.tokens[slum.RoleAdmin]
	var writes []struct{ method, path string }
	for _, e := range endpoints {
		if e.need == wire.AccessAdmin {
			writes = append(writes, struct{ method, path string }{e.method, strings.Replace(e.path, "s3", "s1", 1)})
		}
	}
	writes = append(writes, struct{ method, path string }{"POST", "/v1/holds/1/approve"})
	f.Fuzz(func(t *testing.T, body []byte) {
		a := *a
		a.t = t
		for _, w := range writes {
			before := dbState(t, a.store.Where())
			r := a.do(w.method, w.path, admin, string(body))
			if r.status < 300 {
				continue // a valid request: it may change things
			}
			if r.status >= 500 {
				t.Fatalf("%s %s %q: %d %s", w.method, w.path, body, r.status, r.body)
			}
			if after := dbState(t, a.store.Where()); after != before {
				t.Fatalf("%s %s %q was refused (%d %s) but changed the database", w.method, w.path, body, r.status, r.body)
			}
		}
	})
}
