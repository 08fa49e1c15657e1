package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/logs"
	"github.com/slum-fleet/slum/observed/sim"
)

// withLogs gives the API's fleet server s1, a simulated tenement server,
// and tenant alice with prod on it, printing a line.
func (a *testAPI) withLogs() *sim.Server {
	a.t.Helper()
	s := sim.New(sim.Config{Token: "server-secret", Processes: map[string]sim.Process{"api": {}}})
	u, err := s.Start("127.0.0.1:0")
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(s.Close)
	if _, err := a.store.AddServer(a.ctx, slum.Server{ID: "s1", URL: u, CapacityMB: 1000, Token: "server-secret"}); err != nil {
		a.t.Fatal(err)
	}
	if _, _, err := a.store.AddTenant(a.ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"},
		slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s1"}); err != nil {
		a.t.Fatal(err)
	}
	s.Log("api", "alice--prod", "stdout", "hello")
	return s
}

func TestLogsEndpoint(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.withLogs()
	r := a.do("GET", "/v1/tenants/alice/logs", a.tokens[slum.RoleRead], nil)
	var res logs.Result
	if err := json.Unmarshal([]byte(r.body), &res); r.status != 200 || err != nil || len(res.Lines) != 1 ||
		res.Lines[0].Copy != "prod@s1" || res.Lines[0].Message != "hello" || len(res.Notices) != 0 {
		t.Fatalf("a read token's logs: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, "server-secret") {
		t.Fatal("the answer shows the server's token")
	}
	for _, tc := range []struct {
		method, path, token string
		body                any
		status              int
		kind, msg           string
	}{
		{"GET", "/v1/tenants/alice/logs", a.tokens[slum.RoleRouter], nil, 403, "forbidden", "needs a read or admin token"},
		{"GET", "/v1/tenants/alice/logs", "", nil, 401, "unauthorized", "no API token"},
		{"GET", "/v1/tenants/alice/logs", a.tokens[slum.RoleAdmin], `{"x":1}`, 413, "too_large", "this request takes no body"},
		{"GET", "/v1/tenants/zed/logs", a.tokens[slum.RoleRead], nil, 404, "not_found", "tenant zed not found"},
		{"GET", "/v1/tenants/alice/logs?instance=nope", a.tokens[slum.RoleRead], nil, 404, "not_found", "instance alice:nope not found"},
		{"GET", "/v1/tenants/alice/logs?level=info", a.tokens[slum.RoleRead], nil, 400, "invalid", "must be stdout or stderr"},
		{"GET", "/v1/tenants/alice/logs?tail=3", a.tokens[slum.RoleRead], nil, 400, "invalid", "is not one of"},
		{"GET", "/v1/tenants/alice/logs?follow=true", a.tokens[slum.RoleAdmin], `{}`, 413, "too_large", "this request takes no body"},
		{"GET", "/v1/tenants/zed/logs?follow=true", a.tokens[slum.RoleRead], nil, 404, "not_found", "tenant zed not found"},
		{"POST", "/v1/tenants/alice/logs", a.tokens[slum.RoleAdmin], nil, 404, "not_found", "no such endpoint"},
	} {
		r := a.do(tc.method, tc.path, tc.token, tc.body)
		if r.status != tc.status || r.errorKind() != tc.kind || !strings.Contains(r.body, tc.msg) {
			t.Errorf("%s %s: %d %s, want %d %s %q", tc.method, tc.path, r.status, r.body, tc.status, tc.kind, tc.msg)
		}
	}
}

// A followed read streams lines as they come, and ends when its token is
// revoked.
func TestLogsStreamEndsWhenTheTokenIsRevoked(t *testing.T) {
	a := newTestAPI(t, Config{})
	s := a.withLogs()
	ctx, cancel := context.WithTimeout(a.ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.srv.URL+"/v1/tenants/alice/logs?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+a.tokens[slum.RoleRead])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("follow: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var ev string
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- ev + " " + strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()
	want := func(what string) {
		t.Helper()
		select {
		case e := <-events:
			if !strings.Contains(e, what) || strings.Contains(e, "server-secret") {
				t.Fatalf("event %q, want %q", e, what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %q", what)
		}
	}
	want(`line {"time":`)
	s.Log("api", "alice--prod", "stderr", "later")
	want(`"message":"later"`)

	list, _ := a.store.ListAPITokens(a.ctx)
	for _, tk := range list {
		if tk.Role == slum.RoleRead {
			if _, err := a.store.RevokeAPIToken(a.ctx, tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.api.sweep(a.ctx)
	s.Log("api", "alice--prod", "stderr", "after the revocation")
	// The stream ends; what was already on its way may arrive first (a
	// loaded machine), but no line written after the revocation.
	limit := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return
			}
			if strings.Contains(e, "after the revocation") {
				t.Fatalf("a line written after the revocation reached the revoked token: %q", e)
			}
		case <-limit:
			t.Fatal("the revoked token's log stream is still open")
		}
	}
}
