package traffic

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
)

var start = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

func newHistory(t testing.TB) (*History, *fakeclock.Clock) {
	clk := fakeclock.New(start)
	return New(Config{Clock: clk}), clk
}

var bounds = []float64{0.01, 0.1, 1}

func report(src string, tenants map[string]Counts) Report {
	return Report{Source: src, Bounds: bounds, Tenants: tenants, Servers: map[string]Counts{}}
}

// Two routers' growth adds up per slot; a first report only sets the
// baseline, and a restart (counters back to low) counts from zero.
func TestRecordAddsWhatGrew(t *testing.T) {
	h, clk := newHistory(t)
	must := func(r Report) {
		t.Helper()
		if err := h.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	must(report("a", map[string]Counts{"alice": {Requests: 1000, Errors: 10}})) // baseline
	must(report("b", map[string]Counts{"alice": {Requests: 7}}))
	clk.Advance(5 * time.Second)
	must(report("a", map[string]Counts{"alice": {Requests: 1050, Errors: 15}}))
	must(report("b", map[string]Counts{"alice": {Requests: 57}}))
	clk.Advance(5 * time.Second)
	must(report("a", map[string]Counts{"alice": {Requests: 20}})) // restarted: 20 new
	clk.Advance(5 * time.Second)
	w := h.Window(Query{Last: 15 * time.Second})
	got := w.Tenants["alice"]
	if got == nil || w.Slots != 3 {
		t.Fatalf("window: %+v", w)
	}
	if want := []float64{0, 20, 4}; fmt.Sprint(got.RPS) != fmt.Sprint(want) {
		t.Errorf("rps %v, want %v", got.RPS, want)
	}
	if want := []float64{0, 0.05, 0}; fmt.Sprint(got.ErrorRate) != fmt.Sprint(want) {
		t.Errorf("error rate %v, want %v", got.ErrorRate, want)
	}
	if got.Now.RPS != round(120.0/30, 2) {
		t.Errorf("now: %+v", got.Now)
	}
}

// Latency percentiles come from every source's buckets of the slot.
func TestLatencyQuantiles(t *testing.T) {
	h, clk := newHistory(t)
	srv := func(src string, cum ...uint64) Report {
		return Report{Source: src, Bounds: bounds, Servers: map[string]Counts{"eu-1": {Requests: cum[len(cum)-1], Latency: cum}}}
	}
	_ = h.Record(srv("a", 0, 0, 0))
	_ = h.Record(srv("b", 0, 0, 0))
	clk.Advance(5 * time.Second)
	_ = h.Record(srv("a", 50, 90, 100)) // 50 under 10 ms, 40 under 100 ms, 10 under 1 s
	_ = h.Record(srv("b", 50, 90, 100))
	clk.Advance(5 * time.Second)
	s := h.Window(Query{Last: 5 * time.Second}).Servers["eu-1"]
	if s == nil || len(s.P50) != 1 {
		t.Fatalf("series %+v", s)
	}
	if s.P50[0] != 10 || s.P99[0] != 910 {
		t.Errorf("p50 %v ms p99 %v ms, want 10 and 910", s.P50, s.P99)
	}
	if s.Now.P99 != 910 {
		t.Errorf("now %+v", s.Now)
	}
}

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		cum  []uint64
		q    float64
		want float64
	}{
		{[]uint64{0, 0, 0}, 0.5, 0},
		{[]uint64{10, 10, 10}, 0.5, 0.005},
		{[]uint64{0, 10, 10}, 0.5, 0.055},
		{[]uint64{0, 0, 10}, 0.99, 0.991},
	} {
		if got := quantile(bounds, c.cum, c.q); round(got, 6) != c.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.cum, c.q, got, c.want)
		}
	}
}

// Since answers only the slots after a client's last answer.
func TestWindowSince(t *testing.T) {
	h, clk := newHistory(t)
	_ = h.Record(report("a", map[string]Counts{"alice": {}}))
	clk.Advance(time.Minute)
	w := h.Window(Query{Last: time.Hour})
	clk.Advance(10 * time.Second)
	next := h.Window(Query{Since: w.End})
	if next.Slots != 2 || !next.Start.Equal(w.End) {
		t.Fatalf("since %s: %d slots from %s", w.End, next.Slots, next.Start)
	}
	if only := h.Window(Query{Tenant: "alice"}); len(only.Servers) != 0 || len(only.Tenants) != 1 {
		t.Fatalf("tenant query: %+v", only)
	}
}

// A series nobody reports for the span is forgotten; MaxSeries bounds
// how many are kept.
func TestBounded(t *testing.T) {
	h, clk := newHistory(t)
	_ = h.Record(report("a", map[string]Counts{"alice": {}}))
	clk.Advance(time.Hour + 10*time.Second)
	_ = h.Record(report("b", map[string]Counts{"bob": {}}))
	if w := h.Window(Query{}); w.Tenants["alice"] != nil || w.Tenants["bob"] == nil {
		t.Fatalf("tenants after an hour: %v", w.Tenants)
	}
	small := New(Config{Clock: clk, MaxSeries: 1})
	if err := small.Record(report("a", map[string]Counts{"alice": {}, "bob": {}})); !errors.Is(err, ErrFull) {
		t.Fatalf("over MaxSeries: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := report("r", map[string]Counts{"alice": {Requests: 2, Errors: 1, Latency: []uint64{1, 1, 2}}})
	for name, mut := range map[string]func(r *Report){
		"no source":        func(r *Report) { r.Source = "" },
		"long source":      func(r *Report) { r.Source = strings.Repeat("x", 300) },
		"bad id":           func(r *Report) { r.Tenants["Bad Id"] = Counts{} },
		"errors > req":     func(r *Report) { r.Tenants["alice"] = Counts{Requests: 1, Errors: 2} },
		"unsorted bounds":  func(r *Report) { r.Bounds = []float64{1, 0.1, 2} },
		"latency mismatch": func(r *Report) { r.Tenants["alice"] = Counts{Requests: 1, Latency: []uint64{1}} },
	} {
		r := ok
		r.Tenants = map[string]Counts{"alice": ok.Tenants["alice"]}
		mut(&r)
		if err := r.Validate(); !errors.Is(err, slum.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// fillHour is an hour of 5-second reports of tenants tenants and
// servers servers, all with latency (as the router reports), from one
// router.
func fillHour(h *History, clk *fakeclock.Clock, tenants, servers int) {
	lat := make([]float64, 14)
	for i := range lat {
		lat[i] = 0.0001 * float64(int(1)<<i)
	}
	r := Report{Source: "r", Bounds: lat, Tenants: make(map[string]Counts, tenants), Servers: make(map[string]Counts, servers)}
	for step := range 720 {
		for i := range tenants {
			id := fmt.Sprintf("tenant-%d", i)
			c := make([]uint64, len(lat))
			for j := range c {
				c[j] = uint64(step * (i%50 + 1) * (j + 1) / len(lat))
			}
			r.Tenants[id] = Counts{Requests: uint64(step * (i%50 + 1)), Errors: uint64(step), Latency: c}
		}
		for i := range servers {
			c := make([]uint64, len(lat))
			for j := range c {
				c[j] = uint64(step * (j + 1) * 10)
			}
			r.Servers[fmt.Sprintf("server-%d", i)] = Counts{Requests: c[len(c)-1], Latency: c}
		}
		_ = h.Record(r)
		clk.Advance(5 * time.Second)
	}
}

// The history of 1,000 tenants and 50 servers for an hour stays well
// under 50 MB.
func TestHourOfThousandTenantsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills an hour")
	}
	mb := heapOfHour(t)
	t.Logf("an hour of 1,000 tenants and 50 servers: %.1f MB", mb)
	if mb > 50 {
		t.Fatalf("%.1f MB, over 50", mb)
	}
}

func heapOfHour(t testing.TB) float64 {
	clk := fakeclock.New(start)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := New(Config{Clock: clk})
	fillHour(h, clk, 1000, 50)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(h)
	return float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
}

func BenchmarkHourOfThousandTenants(b *testing.B) {
	for range b.N {
		b.ReportMetric(heapOfHour(b), "MB")
	}
}

// Recording one router's report of 1,000 tenants, as the API does every
// 5 seconds per router.
func BenchmarkRecord(b *testing.B) {
	h, clk := newHistory(b)
	r := report("r", map[string]Counts{})
	for i := range 1000 {
		r.Tenants[fmt.Sprintf("tenant-%d", i)] = Counts{Requests: 1}
	}
	b.ResetTimer()
	for i := range b.N {
		for id, c := range r.Tenants {
			c.Requests = uint64(i)
			r.Tenants[id] = c
		}
		_ = h.Record(r)
		clk.Advance(time.Second)
	}
}

// Answering the dashboard's first question: ten minutes of every tenant.
func BenchmarkWindow(b *testing.B) {
	h, clk := newHistory(b)
	fillHour(h, clk, 1000, 50)
	b.ResetTimer()
	for range b.N {
		_ = h.Window(Query{Last: 10 * time.Minute})
	}
}
