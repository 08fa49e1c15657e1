package e2e

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

// inFlight is one request sent through the router at a hung server.
type inFlight struct {
	tenant, method string
	status         int
	body           string
	err            error
	answered       time.Time
}

// SIGSTOP of a server with requests in flight through 'slum run
// --route-addr': once the server is declared dead, every request in
// flight to it is answered within a second (not at the 30 s response
// timeout); those of a tenant with a warm spare that can be replayed are
// retried there and succeed.
func TestRouterEndsRequestsOfADeadServer(t *testing.T) {
	e := newEnv(t)
	router := "127.0.0.1:" + freePort(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", failoverTenants))
	e.startRun("--route-addr", router)
	e.converge(map[string][]string{"s1": {"api:alice--prod", "api:bob--prod", "api:carol--prod"},
		"s2": {"api:alice--backup"}, "s3": {"api:dave--prod"}}, 60*time.Second)
	eventually(t, 10*time.Second, "alice served by s1 through the router", func() bool {
		a := through(router, "alice.example.com")
		return a.status == 200 && a.server == "s1"
	})

	s1 := e.member("s1")
	if err := s1.Ten.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer s1.Ten.Signal(syscall.SIGCONT)
	stopped := time.Now()
	var mu sync.Mutex
	var sent []*inFlight
	var wg sync.WaitGroup
	client := http.Client{Timeout: 60 * time.Second}
	for _, q := range []struct{ tenant, method string }{
		{"alice", "GET"}, {"alice", "GET"}, {"alice", "GET"}, {"alice", "POST"}, {"bob", "GET"}, {"bob", "GET"},
	} {
		f := &inFlight{tenant: q.tenant, method: q.method}
		sent = append(sent, f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(f.method, "http://"+router+"/hello", strings.NewReader(strings.Repeat("x", len(f.method)-3)))
			req.Host = f.tenant + ".example.com"
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			f.answered, f.err = time.Now(), err
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				f.status, f.body = resp.StatusCode, string(b)
			}
		}()
	}
	st := e.store()
	eventually(t, 30*time.Second, "s1 declared dead", func() bool { return serverStatus(t, st, "s1").Health == slum.HealthDead })
	declared := serverStatus(t, st, "s1").HealthSince
	wg.Wait()
	figure(t, "router: SIGSTOP -> s1 declared dead", declared.Sub(stopped))
	var worst time.Duration
	for _, f := range sent {
		after := f.answered.Sub(declared)
		worst = max(worst, after)
		t.Logf("%s %s: %d %v %q, %v after s1 was declared dead", f.method, f.tenant, f.status, f.err, strings.TrimSpace(f.body), after)
		if after > time.Second {
			t.Errorf("%s %s answered %v after s1 was declared dead, want within 1s", f.method, f.tenant, after)
		}
		switch {
		case f.err != nil:
			t.Errorf("%s %s: %v, want an answer", f.method, f.tenant, f.err)
		case f.tenant == "alice" && f.method == "GET":
			if f.status != 200 || !strings.Contains(f.body, `"server": "s2"`) && !strings.Contains(f.body, `"server":"s2"`) {
				t.Errorf("GET alice: %d %q, want it retried on her warm spare on s2", f.status, f.body)
			}
		case f.status != 502 && f.status != 503:
			t.Errorf("%s %s: %d %q, want 502 or 503", f.method, f.tenant, f.status, f.body)
		}
	}
	figure(t, "router: in-flight requests answered after s1 was declared dead (worst)", worst)
}
