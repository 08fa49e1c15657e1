package experiment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/routes"
)

// The load paces each tenant's requests by its clock, checks that the
// tenant's own app answered, and names every failure.
func TestLoadPacesAndClassifies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Host {
		case "a.test":
			fmt.Fprint(w, `{"tenant":"a--prod","hits":1}`)
		case "b.test":
			http.Error(w, "nothing serves b", http.StatusServiceUnavailable)
		case "d.test":
			http.Error(w, "502 bad gateway: the tenant's server could not be reached", http.StatusBadGateway)
		case "e.test":
			http.Error(w, "Bad Gateway", http.StatusBadGateway)
		default:
			fmt.Fprint(w, `{"tenant":"x--prod","hits":1}`)
		}
	}))
	defer srv.Close()
	clk := fakeclock.New(t0)
	l := StartLoad(context.Background(), LoadOptions{RouterAddr: strings.TrimPrefix(srv.URL, "http://"), Rate: 10, Timeout: 2 * time.Second,
		Targets: []Target{{"a", "a.test"}, {"b", "b.test"}, {"c", "c.test"}, {"d", "d.test"}, {"e", "e.test"}}, Clock: clk})
	for i := 0; i < 50; i++ {
		if !clk.WaitForWaiters(5, 5*time.Second) {
			t.Fatal("the load's tenants did not wait for their next request")
		}
		clk.Advance(10 * time.Millisecond)
	}
	samples := l.Stop()
	sent := map[string][]time.Time{}
	for _, s := range samples {
		sent[s.Tenant] = append(sent[s.Tenant], s.Sent)
		want := map[string]string{"a": OutcomeOK, "b": "503", "c": OutcomeWrongTenant, "d": "502", "e": OutcomeUpstream502}[s.Tenant]
		if s.Outcome != want {
			t.Errorf("%s: outcome %q, want %q", s.Tenant, s.Outcome, want)
		}
		if s.Tenant == "a" && s.Copy != "a--prod" {
			t.Errorf("a answered by %q", s.Copy)
		}
	}
	for _, tenant := range []string{"a", "b", "c", "d", "e"} {
		times := sent[tenant]
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		if len(times) < 4 {
			t.Fatalf("%s sent %d requests in 500ms at 10/s", tenant, len(times))
		}
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap != 100*time.Millisecond {
				t.Errorf("%s: requests %v apart, want 100ms", tenant, gap)
			}
		}
	}
	if st := l.Status(); st.Sent != len(samples) || st.Failed != len(samples)-len(sent["a"]) {
		t.Errorf("status %+v for %d samples", st, len(samples))
	}
}

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: &net.OpError{Err: syscall.ECONNREFUSED}}
	cases := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, OutcomeTimeout},
		{fmt.Errorf("get: %w", refused), OutcomeRefused},
		{io.ErrUnexpectedEOF, OutcomeReset},
		{syscall.ECONNRESET, OutcomeReset},
		{errors.New("something else"), OutcomeError},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestAnsweredBy(t *testing.T) {
	cases := []struct {
		tenant, body, outcome, copy string
	}{
		{"t01", `{"tenant":"t01--prod","hits":3}`, OutcomeOK, "t01--prod"},
		{"t01", `{"tenant":"t01--backup"}`, OutcomeOK, "t01--backup"},
		{"t01", `{"tenant":"t02--prod"}`, OutcomeWrongTenant, "t02--prod"},
		{"t01", `{"tenant":"t01"}`, OutcomeWrongTenant, "t01"},
		{"t01", `not json`, OutcomeWrongTenant, ""},
	}
	for _, c := range cases {
		o, cp := answeredBy(c.tenant, []byte(c.body))
		if o != c.outcome || cp != c.copy {
			t.Errorf("answeredBy(%s, %s) = %q, %q; want %q, %q", c.tenant, c.body, o, cp, c.outcome, c.copy)
		}
	}
}

// The load tells the router's own 502s from a tenement server's by the
// router's words: this holds it to them.
func TestRouterBadGatewayWords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, err := router.New(router.DefaultConfig(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Set(routes.New(1, []routes.Route{{Tenant: "a", Domain: "a.test",
		Backends: []routes.Backend{{Instance: "a:prod", Server: "s1", URL: "http://" + dead, Host: "a--prod.api.s1.test"}}}})); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "a.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !bytes.HasPrefix(body, routerBadGateway) {
		t.Fatalf("the router answered %d %q for an unreachable copy; the load expects 502 starting %q", resp.StatusCode, body, routerBadGateway)
	}
}
