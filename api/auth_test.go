package api

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/internal/fakeclock"
)

// Every endpoint, with what it needs of a role and a request that
// succeeds for an admin on the seeded fleet.
var endpoints = []struct {
	method, path string
	body         any
	need         wire.Access
}{
	{"GET", "/v1/whoami", nil, wire.AccessRouter},
	{"GET", "/v1/routes", nil, wire.AccessRouter},
	{"GET", "/v1/metrics?last=60", nil, wire.AccessRead},
	{"POST", "/v1/traffic", map[string]any{"source": "edge", "tenants": map[string]any{"alice": map[string]any{"requests": 1}}}, wire.AccessRouter},
	{"GET", "/v1/servers", nil, wire.AccessRead},
	{"GET", "/v1/regions/eu/servers", nil, wire.AccessRead},
	{"GET", "/v1/servers/s1", nil, wire.AccessRead},
	{"GET", "/v1/servers/s1/stats", nil, wire.AccessRead},
	{"GET", "/v1/servers/s1/status", nil, wire.AccessRead},
	{"GET", "/v1/servers/s1/tenants", nil, wire.AccessRead},
	{"GET", "/v1/servers/s1/instances", nil, wire.AccessRead},
	{"GET", "/v1/stats/servers", nil, wire.AccessRead},
	{"GET", "/v1/tenants", nil, wire.AccessRead},
	{"GET", "/v1/tenants/alice", nil, wire.AccessRead},
	{"GET", "/v1/domains/alice.example.com", nil, wire.AccessRead},
	{"GET", "/v1/tenants/alice/instances", nil, wire.AccessRead},
	{"GET", "/v1/tenants/alice/status", nil, wire.AccessRead},
	{"GET", "/v1/instances", nil, wire.AccessRead},
	{"GET", "/v1/instances/alice:prod", nil, wire.AccessRead},
	{"GET", "/v1/instances/alice:prod/status", nil, wire.AccessRead},
	{"GET", "/v1/status", nil, wire.AccessRead},
	{"GET", "/v1/status/servers", nil, wire.AccessRead},
	{"GET", "/v1/status/tenants", nil, wire.AccessRead},
	{"GET", "/v1/status/instances", nil, wire.AccessRead},
	{"GET", "/v1/events/recent?last=5", nil, wire.AccessRead},
	{"GET", "/v1/events?since=0&limit=5", nil, wire.AccessRead},
	{"GET", "/v1/holds", nil, wire.AccessRead},
	{"GET", "/v1/settings", nil, wire.AccessRead},
	{"GET", "/v1/tokens", nil, wire.AccessRead},
	{"POST", "/v1/diff", map[string]any{"file": map[string]any{"name": "f.yaml", "text": "version: 1\n"}}, wire.AccessRead},
	{"POST", "/v1/servers", map[string]any{"id": "s3", "url": "http://10.0.0.3:8080", "capacity_mb": 100}, wire.AccessAdmin},
	{"PATCH", "/v1/servers/s3", map[string]any{"region": "eu"}, wire.AccessAdmin},
	{"PUT", "/v1/servers/s3/state", map[string]any{"state": "cordoned"}, wire.AccessAdmin},
	{"POST", "/v1/servers/s3/drain", nil, wire.AccessAdmin},
	{"DELETE", "/v1/servers/s3", nil, wire.AccessAdmin},
	{"POST", "/v1/tenants", map[string]any{"id": "bob", "domain": "bob.example.com"}, wire.AccessAdmin},
	{"PATCH", "/v1/tenants/bob", map[string]any{"region": "eu"}, wire.AccessAdmin},
	{"POST", "/v1/instances", map[string]any{"tenant": "bob", "id": "prod", "process": "api"}, wire.AccessAdmin},
	{"POST", "/v1/instances/bob:prod/stop", nil, wire.AccessAdmin},
	{"POST", "/v1/instances/bob:prod/move", map[string]any{"to": ""}, wire.AccessAdmin},
	{"DELETE", "/v1/instances/bob:prod", nil, wire.AccessAdmin},
	{"DELETE", "/v1/tenants/bob", nil, wire.AccessAdmin},
	{"PUT", "/v1/settings", slum.DefaultSettings(), wire.AccessAdmin},
	{"POST", "/v1/apply", map[string]any{"file": map[string]any{"name": "f.yaml", "text": "version: 1\n"}}, wire.AccessAdmin},
	{"POST", "/v1/tokens", map[string]any{"role": "read"}, wire.AccessAdmin},
	{"POST", "/v1/holds/1/approve", map[string]any{"by": "ann"}, wire.AccessAdmin},
	{"DELETE", "/v1/tokens/5", nil, wire.AccessAdmin}, // the spare token TestRolesOnEveryEndpoint makes
	{"GET", "/v1/rollouts?last=5", nil, wire.AccessRead},
	{"GET", "/v1/rollouts/1", nil, wire.AccessRead},
	{"POST", "/v1/rollouts", map[string]any{"tenant": "alice"}, wire.AccessAdmin},
	{"POST", "/v1/rollouts/1/resume", nil, wire.AccessAdmin},
	{"POST", "/v1/rollouts/1/abandon", nil, wire.AccessAdmin},
}

// The list above covers every operation the API serves.
func TestEndpointsCoverEveryOperation(t *testing.T) {
	mux := http.NewServeMux()
	covered := map[string]bool{}
	for _, op := range wire.Ops {
		mux.HandleFunc(op.Pattern(), func(http.ResponseWriter, *http.Request) {})
	}
	for _, e := range endpoints {
		r := httptest.NewRequest(e.method, e.path, nil)
		if _, pattern := mux.Handler(r); pattern != "" {
			covered[pattern] = true
		}
	}
	for _, op := range wire.Ops {
		if !covered[op.Pattern()] {
			t.Errorf("%s has no entry in endpoints", op.Pattern())
		}
	}
}

// Every role on every endpoint: what its role allows works, the rest is
// 403 and changes nothing; no token, a wrong one and a revoked one are
// 401 everywhere.
func TestRolesOnEveryEndpoint(t *testing.T) {
	a := newTestAPI(t, Config{AuthLimit: AuthLimit{Burst: 1000, Every: time.Millisecond}})
	a.seed()
	_, revoked, err := a.store.CreateAPIToken(a.ctx, slum.RoleAdmin, "gone")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := a.store.ListAPITokens(a.ctx)
	if _, err := a.store.RevokeAPIToken(a.ctx, list[len(list)-1].ID); err != nil {
		t.Fatal(err)
	}
	// What the approve and revoke endpoints act on: a held plan, a
	// spare token.
	if _, _, err := a.store.CreateAPIToken(a.ctx, slum.RoleRead, "spare"); err != nil {
		t.Fatal(err)
	}
	lease, err := a.store.AcquireLease(a.ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.SyncHolds(a.ctx, lease.Fence(), []slum.HoldSpec{{Kind: slum.HoldMassStop, Fingerprint: "f", Summary: "test"}}); err != nil {
		t.Fatal(err)
	}
	wrong := slum.APITokenPrefix + strings.Repeat("x", 43)
	for _, e := range endpoints {
		for _, role := range []slum.APIRole{slum.RoleRouter, slum.RoleRead} {
			before := dbState(t, a.store.Where())
			r := a.do(e.method, e.path, a.tokens[role], e.body)
			if e.need.Allows(role) {
				if r.status >= 300 {
					t.Errorf("%s %s as %s: %d %s", e.method, e.path, role, r.status, r.body)
				}
				continue
			}
			if r.status != http.StatusForbidden || r.errorKind() != "forbidden" || !strings.Contains(r.body, "needs") {
				t.Errorf("%s %s as %s: %d %s, want 403", e.method, e.path, role, r.status, r.body)
			}
			if dbState(t, a.store.Where()) != before {
				t.Errorf("%s %s as %s was refused but changed the database", e.method, e.path, role)
			}
		}
		for name, tok := range map[string]string{"no token": "", "wrong token": wrong, "revoked token": revoked, "not a slum token": "hunter2"} {
			r := a.do(e.method, e.path, tok, e.body)
			if r.status != http.StatusUnauthorized || r.errorKind() != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %s: %d %s, want 401", e.method, e.path, name, r.status, r.body)
			}
			if tok != "" && strings.Contains(r.body, tok) {
				t.Errorf("the answer shows the token: %s", r.body)
			}
		}
		r := a.do(e.method, e.path, a.tokens[slum.RoleAdmin], e.body)
		if r.status >= 300 {
			t.Errorf("%s %s as admin: %d %s", e.method, e.path, r.status, r.body)
		}
	}
	// The watch: router tokens see routes only.
	if r := a.do("GET", "/v1/watch?kinds=server", a.tokens[slum.RoleRouter], nil); r.status != http.StatusForbidden {
		t.Errorf("a router watching servers: %d %s", r.status, r.body)
	}
}

// Revoking a token stops it at once: the next request is refused.
func TestRevokedTokenStopsAtOnce(t *testing.T) {
	a := newTestAPI(t, Config{})
	rec, tok, err := a.store.CreateAPIToken(a.ctx, slum.RoleAdmin, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if r := a.do("GET", "/v1/whoami", tok, nil); r.status != 200 || !strings.Contains(r.body, `"name":"laptop"`) {
		t.Fatalf("whoami: %d %s", r.status, r.body)
	}
	if r := a.do("DELETE", "/v1/tokens/"+itoa(rec.ID), a.tokens[slum.RoleAdmin], nil); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := a.do("GET", "/v1/whoami", tok, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %d %s", r.status, r.body)
	}
}

// Failed authentications are limited per address: one address that
// guesses is shut out for a while, any other is not, and a right token
// from the shut-out address waits like a wrong one.
func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	clk := fakeclock.New(time.Now())
	a := newTestAPI(t, Config{Clock: clk, AuthLimit: AuthLimit{Burst: 3, Every: 10 * time.Second}})
	good := a.tokens[slum.RoleRead]
	call := func(addr, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/whoami", nil)
		req.RemoteAddr = addr
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		a.api.Handler().ServeHTTP(w, req)
		return w
	}
	bad := slum.APITokenPrefix + strings.Repeat("A", 43)
	for i := 0; i < 3; i++ {
		if w := call("192.0.2.1:5000", bad); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	w := call("192.0.2.1:5001", good)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" || !strings.Contains(w.Body.String(), "too many failed authentications") {
		t.Fatalf("after 3 guesses: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// Other addresses are unaffected; a missing token is not a guess.
	if w := call("192.0.2.2:5000", good); w.Code != http.StatusOK {
		t.Fatalf("another address: %d %s", w.Code, w.Body)
	}
	if w := call("[2001:db8::1]:1", good); w.Code != http.StatusOK {
		t.Fatalf("an IPv6 address: %d", w.Code)
	}
	// The bucket refills: one attempt every 10 s.
	clk.Advance(10 * time.Second)
	if w := call("192.0.2.1:5000", good); w.Code != http.StatusOK {
		t.Fatalf("after 10s: %d %s", w.Code, w.Body)
	}
	if w := call("192.0.2.1:5000", bad); w.Code != http.StatusUnauthorized {
		t.Fatalf("a guess after 10s: %d", w.Code)
	}
	if w := call("192.0.2.1:5000", good); w.Code != http.StatusTooManyRequests {
		t.Fatalf("right after: %d", w.Code)
	}
	// An IPv6 host is one /64: its other addresses share its bucket.
	for i := 0; i < 3; i++ {
		call("[2001:db8:1:2::1]:1", bad)
	}
	if w := call("[2001:db8:1:2::ffff]:1", good); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the same /64: %d", w.Code)
	}
	if w := call("[2001:db8:1:3::1]:1", good); w.Code != http.StatusOK {
		t.Fatalf("another /64: %d", w.Code)
	}
}

func TestNoAuthIsAdminAndSaysSo(t *testing.T) {
	a := newTestAPI(t, Config{NoAuth: true})
	if r := a.do("GET", "/v1/whoami", "", nil); r.status != 200 || !strings.Contains(r.body, `"no_auth":true`) || !strings.Contains(r.body, `"role":"admin"`) {
		t.Fatalf("whoami without auth: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/v1/tenants", "", map[string]any{"id": "bob", "domain": "bob.example.com"}); r.status != http.StatusCreated {
		t.Fatalf("a write without auth: %d %s", r.status, r.body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
