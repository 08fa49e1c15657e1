package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// testAPI is an API over a fresh fleet database, served over HTTP, with a
// token of each role.
type testAPI struct {
	t      testing.TB
	ctx    context.Context
	store  *store.Store
	api    *Server
	srv    *httptest.Server
	tokens map[slum.APIRole]string
}

func newTestAPI(t testing.TB, cfg Config) *testAPI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if cfg.Restarts == nil {
		cfg.Restarts = noRestarts{}
	}
	if cfg.WatchEvery == 0 {
		cfg.WatchEvery = 10 * time.Millisecond
	}
	a := &testAPI{t: t, ctx: ctx, store: st, api: New(st, cfg), tokens: map[slum.APIRole]string{}}
	done := make(chan struct{})
	go func() { a.api.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	a.srv = httptest.NewServer(a.api.Handler())
	t.Cleanup(a.srv.Close)
	for _, r := range slum.APIRoles {
		_, tok, err := st.CreateAPIToken(ctx, r, "test "+string(r))
		if err != nil {
			t.Fatal(err)
		}
		a.tokens[r] = tok
	}
	return a
}

// seed makes servers s1 and s2 and tenant alice with instance prod on s1.
func (a *testAPI) seed() {
	a.t.Helper()
	for _, id := range []string{"s1", "s2"} {
		if _, err := a.store.AddServer(a.ctx, slum.Server{ID: id, URL: "http://10.0.0.1:8080", CapacityMB: 1000, Token: "tok-" + id}); err != nil {
			a.t.Fatal(err)
		}
	}
	if _, _, err := a.store.AddTenant(a.ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"},
		slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s1"}); err != nil {
		a.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// errorKind is the kind of an error body ("" when there is none).
func (r response) errorKind() string {
	var e struct {
		Error struct{ Kind, Message string }
	}
	_ = json.Unmarshal([]byte(r.body), &e)
	return e.Error.Kind
}

// do sends a request with token ("" for none) and a JSON body (a string
// is sent as it is).
func (a *testAPI) do(method, path, token string, body any) response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(data)}
}

// dbState is every row of every table of the fleet database, to show a
// request changed nothing: all but change_log_readers, which the API's
// own watch renews while it runs.
func dbState(t testing.TB, path string) string {
	t.Helper()
	d, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'change_log_readers' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, tb := range tables {
		rows, err := d.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(vals)
			out.WriteString(tb + " " + string(b) + "\n")
		}
		rows.Close()
	}
	return out.String()
}

// noRestarts stands in for package rollout where a test is about the
// API's access rules, not restarts: every call answers rollout 1 and
// restarts nothing.
type noRestarts struct{}

func (noRestarts) Restart(context.Context, slum.RestartSpec) (slum.Rollout, error) {
	return slum.Rollout{ID: 1}, nil
}
func (noRestarts) ResumeRollout(context.Context, int64) (slum.Rollout, error) {
	return slum.Rollout{ID: 1}, nil
}
func (noRestarts) AbandonRollout(context.Context, int64) (slum.Rollout, error) {
	return slum.Rollout{ID: 1}, nil
}
func (noRestarts) GetRollout(context.Context, int64) (slum.Rollout, error) {
	return slum.Rollout{ID: 1}, nil
}
func (noRestarts) ListRollouts(context.Context, int64) ([]slum.Rollout, error) {
	return []slum.Rollout{{ID: 1}}, nil
}
