package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// Benchmark sizes: the targets' sizes unless -short (CI runs each
// benchmark once, at full size). SLUM_BENCH_LOAD=10s lengthens the
// sustained-load run (default 2s).

func fleetSize(b *testing.B) (servers, instances int) {
	if testing.Short() {
		return 20, 1000
	}
	return 100, 10000
}

// benchFleet makes a fleet of servers and instances (one per tenant), with
// the status a controller would have written: every server online, every
// instance running and serving.
func benchFleet(b *testing.B, servers, instances int) *store.Store {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "slum.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var y strings.Builder
	y.WriteString("version: 1\nservers:\n")
	for i := 0; i < servers; i++ {
		fmt.Fprintf(&y, "  - {id: s%d, url: 'http://10.77.0.%d:8080', capacity_mb: %d, no_token: true}\n", i, i%250+1, instances*64/servers+1024)
	}
	y.WriteString("tenants:\n")
	for i := 0; i < instances; i++ {
		fmt.Fprintf(&y, "  - {id: t%d, domain: t%d.example.com, instances: [{id: prod, process: api, memory_mb: 64}]}\n", i, i)
	}
	f, err := desired.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Apply(ctx, fleettest.Source(b, f), slum.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	lease, err := st.AcquireLease(ctx, "controller", "bench", "", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ins, err := st.ListInstances(ctx)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var rep slum.Report
	for i := 0; i < servers; i++ {
		rep.Servers = append(rep.Servers, slum.ServerStatus{ServerID: fmt.Sprintf("s%d", i), Health: slum.HealthOnline,
			HealthSince: now, Listed: true, Instances: int64(instances / servers), LastSeenAt: now, UpdatedAt: now})
	}
	for _, in := range ins {
		rep.Instances = append(rep.Instances, slum.InstanceStatus{TenantID: in.TenantID, InstanceID: in.ID, ServerID: in.ServerID,
			Phase: slum.PhaseRunning, Health: "healthy", ObservedGeneration: in.Generation, UpdatedAt: now})
		rep.Tenants = append(rep.Tenants, slum.TenantStatus{TenantID: in.TenantID,
			Serving: []slum.CopyRef{{Instance: in.ID, Server: in.ServerID}}, ChangedAt: now, UpdatedAt: now})
	}
	if err := st.WriteReport(ctx, lease.Fence(), rep); err != nil {
		b.Fatal(err)
	}
	return st
}

type benchAPI struct {
	store *store.Store
	api   *Server
	url   string
	token string
}

func startBenchAPI(b *testing.B, st *store.Store, role slum.APIRole) *benchAPI {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	a := New(st, Config{})
	go a.Run(ctx)
	srv := httptest.NewServer(a.Handler())
	b.Cleanup(srv.Close)
	_, tok, err := st.CreateAPIToken(ctx, role, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return &benchAPI{store: st, api: a, url: srv.URL, token: tok}
}

func (a *benchAPI) get(b *testing.B, c *http.Client, path string) {
	req, _ := http.NewRequest("GET", a.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Errorf("GET %s: %d", path, resp.StatusCode)
	}
}

// GET /v1/status (what 'slum status' shows) of a 10,000-instance fleet.
// Target: under 50 ms.
func BenchmarkStatusOfALargeFleet(b *testing.B) {
	servers, instances := fleetSize(b)
	a := startBenchAPI(b, benchFleet(b, servers, instances), slum.RoleRead)
	c := &http.Client{}
	a.get(b, c, "/v1/status") // warm
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		a.get(b, c, "/v1/status")
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/status")
	b.ReportMetric(float64(instances), "instances")
}

// A change reaches 100 connected watchers: from the commit until the last
// of them has the batch with it. Target: within 100 ms. Every change
// rebuilds the fleet's objects, so the time grows with the fleet: it is
// measured on 1,000 instances and, unless -short, on 10,000.
func BenchmarkWatchFanOut(b *testing.B) {
	b.Run("instances=1000", func(b *testing.B) { benchWatchFanOut(b, 20, 1000) })
	if !testing.Short() {
		b.Run("instances=10000", func(b *testing.B) { benchWatchFanOut(b, 100, 10000) })
	}
}

func benchWatchFanOut(b *testing.B, servers, instances int) {
	const watchers = 100
	a := startBenchAPI(b, benchFleet(b, servers, instances), slum.RoleRead)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(a.url, a.token, client.Options{Transport: &http.Transport{MaxIdleConnsPerHost: watchers, MaxConnsPerHost: 0}})
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan time.Time, watchers*4)
	var want sync.Map // the region value the current change sets
	ready := make(chan struct{}, watchers)
	for w := 0; w < watchers; w++ {
		go func() {
			// Every kind, as the dashboard watches.
			_ = c.Watch(ctx, client.WatchOptions{}, func(m client.Message) error {
				if m.Reset != nil {
					ready <- struct{}{}
				}
				if m.Batch == nil {
					return nil
				}
				v, _ := want.Load("region")
				for _, ch := range m.Batch.Changes {
					if ch.Kind == wire.ObjTenant && ch.ID == "t0" && v != nil && strings.Contains(string(ch.Object), v.(string)) {
						got <- time.Now()
					}
				}
				return nil
			})
		}()
	}
	for w := 0; w < watchers; w++ {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			b.Fatal("the watchers did not connect")
		}
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		region := fmt.Sprintf("r%d", i)
		want.Store("region", region)
		start := time.Now()
		if _, err := a.store.UpdateTenant(ctx, "t0", slum.TenantUpdate{Region: &region}); err != nil {
			b.Fatal(err)
		}
		var last time.Time
		for w := 0; w < watchers; w++ {
			select {
			case t := <-got:
				last = t
			case <-time.After(10 * time.Second):
				b.Fatalf("only %d of %d watchers got change %d", w, watchers, i)
			}
		}
		lat = append(lat, last.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50-all-100")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "ms-max-all-100")
}

// 1,000 authenticated requests a second, sustained, on two cores: each a
// GET of one server with a read token (the digest looked up every time).
// Target: p99 under 20 ms.
func BenchmarkAuthenticatedRequestRate(b *testing.B) {
	prev := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	const rate = 1000
	dur := 2 * time.Second
	if v := os.Getenv("SLUM_BENCH_LOAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("SLUM_BENCH_LOAD: %v", err)
		}
		dur = d
	}
	a := startBenchAPI(b, benchFleet(b, 10, 100), slum.RoleRead)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	a.get(b, c, "/v1/servers/s1")
	b.ResetTimer()
	var p50, p99, achieved float64
	for i := 0; i < b.N; i++ {
		n := int(dur.Seconds() * rate)
		lat := make([]time.Duration, n)
		var wg sync.WaitGroup
		start := time.Now()
		for j := 0; j < n; j++ {
			// Open loop: request j leaves at its time, whatever the
			// earlier ones are doing.
			if d := time.Until(start.Add(time.Duration(j) * time.Second / rate)); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func(j int) {
				defer wg.Done()
				t := time.Now()
				a.get(b, c, "/v1/servers/s"+fmt.Sprint(j%10))
				lat[j] = time.Since(t)
			}(j)
		}
		wg.Wait()
		achieved = float64(n) / time.Since(start).Seconds()
		slices.Sort(lat)
		p50 = float64(lat[n/2].Microseconds()) / 1000
		p99 = float64(lat[n*99/100].Microseconds()) / 1000
	}
	b.ReportMetric(achieved, "req/s")
	b.ReportMetric(p50, "ms-p50")
	b.ReportMetric(p99, "ms-p99")
}
