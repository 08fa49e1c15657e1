package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

type answer struct {
	status int
	tenant string
	server string
	retry  string
	err    error
}

// through asks slum's router for a tenant's app.
func through(router, host string) answer {
	req, _ := http.NewRequest("GET", "http://"+router+"/hello", nil)
	req.Host = host
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, retry: resp.Header.Get("Retry-After")}
	if resp.StatusCode == 200 {
		var out struct{ Tenant, Server string }
		a.err = json.Unmarshal(body, &out)
		a.tenant, a.server = out.Tenant, out.Server
	}
	return a
}

// load sends requests for host through the router until stop is closed,
// counting answers by the server that gave them (or the failure).
type load struct {
	mu     sync.Mutex
	by     map[string]int
	first  map[string]time.Time
	failed atomic.Int64
}

func startLoad(router, host string, stop <-chan struct{}) (*load, *sync.WaitGroup) {
	l := &load{by: map[string]int{}, first: map[string]time.Time{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			a := through(router, host)
			key := a.server
			if a.status != 200 || a.err != nil {
				key = fmt.Sprintf("failed %d %v", a.status, a.err)
				l.failed.Add(1)
			}
			l.mu.Lock()
			l.by[key]++
			if _, ok := l.first[key]; !ok {
				l.first[key] = time.Now()
			}
			l.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return l, &wg
}

func (l *load) firstFrom(server string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first[server]
}

// TestRouterThroughRealTenement routes tenants' traffic through 'slum run
// --route-addr' to real tenement servers, through a move and the death of
// the serving copy's server.
func TestRouterThroughRealTenement(t *testing.T) {
	e := newEnv(t)
	router := "127.0.0.1:" + freePort(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", `  - {id: alice, domain: alice.example.com, instances: [{id: prod, process: api, server: s1}, {id: backup, process: api, server: s2}]}
  - {id: bob, domain: bob.example.com, instances: [{id: prod, process: api, server: s2}]}
  - {id: carol, domain: carol.example.com, instances: [{id: prod, process: idle, mode: on-demand, server: s3}]}
  - {id: dave, domain: dave.example.com, instances: [{id: prod, process: api, server: s3, state: stopped}]}
`))
	e.startRun("--route-addr", router)
	e.converge(map[string][]string{"s1": {"api:alice--prod"}, "s2": {"api:alice--backup", "api:bob--prod"}, "s3": {}}, 60*time.Second)

	// converge reads tenement's lists; the router routes what the controller
	// has observed running, one poll later at most. Each tenant gets that time.
	for _, want := range []struct{ domain, tenant, server string }{
		{"alice.example.com", "alice--prod", "s1"},
		{"bob.example.com", "bob--prod", "s2"},
	} {
		var last answer
		defer func() {
			if t.Failed() {
				t.Logf("%s: the router's last answer: %+v", want.tenant, last)
			}
		}()
		eventually(t, 10*time.Second, want.tenant+" served through the router", func() bool {
			last = through(router, want.domain)
			return last.status == 200 && last.tenant == want.tenant && last.server == want.server
		})
	}
	// An on-demand tenant scaled to zero is woken by its first request.
	if a := through(router, "carol.example.com"); a.status != 200 || a.tenant != "carol--prod" || a.server != "s3" {
		t.Fatalf("carol (on-demand): %+v", a)
	}
	if a := through(router, "dave.example.com"); a.status != 503 || a.retry == "" {
		t.Fatalf("dave (stopped): %+v, want 503 with Retry-After", a)
	}
	if a := through(router, "nobody.example.com"); a.status != 404 {
		t.Fatalf("an unknown domain: %+v", a)
	}

	// A move: traffic follows the new copy without a failed request.
	stop := make(chan struct{})
	l, wg := startLoad(router, "alice.example.com", stop)
	e.slum("tenant", "move", "alice", "--instance", "prod", "--to", "s3")
	var running time.Time
	for running.IsZero() {
		if names, _ := e.running("s3"); slices.Contains(names, "api:alice--prod") {
			running = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "alice served by her new copy", func() bool { return !l.firstFrom("s3").IsZero() })
	follow := l.firstFrom("s3").Sub(running)
	figure(t, "router: served by the moved copy after tenement lists it", max(follow, 0))
	if follow > time.Second {
		t.Errorf("the router followed the move %v after the new copy ran", follow)
	}
	e.converge(map[string][]string{"s1": {}}, 30*time.Second)
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the move: %v", n, l.by)
	}

	// kill -9 of the serving copy's server: the warm spare serves.
	m := e.member("s3")
	killed := time.Now()
	m.Ten.Kill()
	defer m.Ten.Launch(t.Context())
	eventually(t, 10*time.Second, "alice served by her spare", func() bool { return !l.firstFrom("s2").IsZero() })
	figure(t, "router: kill -9 of the serving copy's server -> served by the warm spare", l.firstFrom("s2").Sub(killed))
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("answers during the test: %v", l.by)
	fmt.Printf("e2e figure: %-60s %6d\n", "router: requests failed during the kill -9 (of "+strconv.Itoa(sum(l.by))+")", l.failed.Load())
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
