// Package traffic owns the fleet's recent traffic: a bounded in-memory
// history (by default the last hour in 5-second slots) of requests per
// second, error rate and latency (p50, p99) per tenant and per server.
//
// Routers feed it Reports: their counters, cumulative since the router
// started (the ones its Prometheus metrics already keep). The history
// keeps each source's last report and adds what grew since into the slot
// of now, so any number of routers (in this process, or reporting
// through the API) add up, and a router that restarts (its counters go
// back) counts from zero again. Latency comes as cumulative histogram
// buckets; each slot keeps only its p50 and p99, computed from the
// buckets of every source once the slot is over. Memory is bounded: a
// series nobody reported for the whole span is forgotten, and at most
// Config.MaxSeries are kept.
package traffic

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/desired"
)

// Counts are one tenant's or one server's counters, cumulative.
type Counts struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"` // answered 5xx, or not at all
	// Latency counts the requests that took at most each of the report's
	// Bounds, cumulatively (a Prometheus histogram's buckets); empty when
	// the source does not measure it.
	Latency []uint64 `json:"latency,omitempty"`
}

// Report is what a source (one router) counted since it started.
type Report struct {
	// Source names the counters: one router process. A new name (a
	// restart) starts from the counters it reports.
	Source  string            `json:"source"`
	Bounds  []float64         `json:"bounds,omitempty"` // latency buckets' upper bounds, seconds, ascending
	Tenants map[string]Counts `json:"tenants"`
	Servers map[string]Counts `json:"servers"`
}

// Limits of a report, so a confused router cannot make the API hold more
// than the history is meant to.
const (
	maxSource  = 256
	maxBounds  = 64
	maxEntries = 100_000
)

// Validate says what is wrong with a report, if anything: a
// *slum.FieldError, which is an slum.ErrInvalid.
func (r Report) Validate() error {
	if r.Source == "" || len(r.Source) > maxSource || strings.ContainsFunc(r.Source, func(c rune) bool { return !unicode.IsPrint(c) }) {
		return &slum.FieldError{Field: "source", Value: r.Source, Reason: fmt.Sprintf("must be printable text of 1 to %d bytes", maxSource)}
	}
	if len(r.Bounds) > maxBounds || !slices.IsSorted(r.Bounds) || slices.ContainsFunc(r.Bounds, func(b float64) bool { return !(b > 0) || math.IsInf(b, 0) }) {
		return &slum.FieldError{Field: "bounds", Value: fmt.Sprint(r.Bounds), Reason: fmt.Sprintf("must be at most %d finite positive seconds, ascending", maxBounds)}
	}
	if len(r.Tenants)+len(r.Servers) > maxEntries {
		return &slum.FieldError{Field: "tenants", Value: fmt.Sprint(len(r.Tenants) + len(r.Servers)), Reason: fmt.Sprintf("a report names at most %d tenants and servers", maxEntries)}
	}
	for _, m := range []struct {
		field string
		by    map[string]Counts
	}{{"tenant", r.Tenants}, {"server", r.Servers}} {
		for id, c := range m.by {
			if err := desired.ValidateID(m.field, id); err != nil {
				return err
			}
			if c.Errors > c.Requests {
				return &slum.FieldError{Field: m.field + " " + id + " errors", Value: fmt.Sprint(c.Errors), Reason: "must not exceed its requests"}
			}
			if len(c.Latency) != 0 && (len(c.Latency) != len(r.Bounds) || !slices.IsSorted(c.Latency)) {
				return &slum.FieldError{Field: m.field + " " + id + " latency", Value: fmt.Sprint(len(c.Latency)), Reason: "must have one cumulative count per bound"}
			}
		}
	}
	return nil
}

// Config sizes a History.
type Config struct {
	Resolution time.Duration // one slot; default 5 s
	Span       time.Duration // how far back it remembers; default 1 h
	MaxSeries  int           // tenants and servers together; default 50,000
	Clock      clock.Clock
}

func (c Config) withDefaults() Config {
	if c.Resolution <= 0 {
		c.Resolution = 5 * time.Second
	}
	if c.Span < c.Resolution {
		c.Span = time.Hour
	}
	if c.MaxSeries <= 0 {
		c.MaxSeries = 50_000
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	return c
}

// slot is one interval of one series: 20 bytes, so an hour of 5-second
// slots is 14 KB a series.
type slot struct {
	n        uint32 // the slot's number (time / resolution); 0: empty
	req, err uint32
	p50, p99 float32 // seconds; 0: not measured
}

// series is one tenant's or server's history, a ring of slots, with the
// latency buckets of the slot still being filled.
type series struct {
	ring     []slot
	bounds   []float64
	pend     []uint64 // cumulative bucket counts of slot pendN, all sources'
	pendN    uint32
	lastSeen uint32 // the last slot a report named it in
}

// source is the last report of one router.
type source struct {
	seen             uint32
	tenants, servers map[string]Counts
}

// History is the traffic of the last Span. Safe for concurrent use.
type History struct {
	cfg     Config
	slots   int
	mu      sync.Mutex
	sources map[string]*source
	tenants map[string]*series
	servers map[string]*series
	dropped int // series refused for MaxSeries
}

// New makes an empty history.
func New(cfg Config) *History {
	cfg = cfg.withDefaults()
	return &History{cfg: cfg, slots: int(cfg.Span / cfg.Resolution), sources: map[string]*source{},
		tenants: map[string]*series{}, servers: map[string]*series{}}
}

// Resolution is the length of one slot.
func (h *History) Resolution() time.Duration { return h.cfg.Resolution }

func (h *History) slotOf(t time.Time) uint32 { return uint32(t.UnixNano() / int64(h.cfg.Resolution)) }

func (h *History) startOf(n uint32) time.Time {
	return time.Unix(0, int64(n)*int64(h.cfg.Resolution))
}

// ErrFull: the history keeps MaxSeries series already. It is an
// slum.ErrNoCapacity.
var ErrFull = fmt.Errorf("%w: traffic history is full", slum.ErrNoCapacity)

// Record adds what grew since the source's previous report to the slot
// of now. A source's first report only sets where it counts from.
func (h *History) Record(r Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	now := h.slotOf(h.cfg.Clock.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	src, known := h.sources[r.Source]
	if !known {
		src = &source{}
		h.sources[r.Source] = src
	}
	var full bool
	full = h.add(h.tenants, known, src.tenants, r.Tenants, r.Bounds, now) || full
	full = h.add(h.servers, known, src.servers, r.Servers, r.Bounds, now) || full
	src.seen, src.tenants, src.servers = now, r.Tenants, r.Servers
	h.forget(now)
	if full {
		return fmt.Errorf("%w: %d series kept; the rest of this report was not", ErrFull, h.cfg.MaxSeries)
	}
	return nil
}

// add adds the growth from prev to cur to the series of by; it reports
// whether a new series was refused.
func (h *History) add(by map[string]*series, known bool, prev, cur map[string]Counts, bounds []float64, now uint32) (full bool) {
	for id, c := range cur {
		s := by[id]
		if s == nil {
			if len(h.tenants)+len(h.servers) >= h.cfg.MaxSeries {
				h.dropped++
				full = true
				continue
			}
			s = &series{ring: make([]slot, h.slots)}
			by[id] = s
		}
		s.lastSeen = now
		if !known {
			continue
		}
		p, had := prev[id]
		if !had || c.Requests < p.Requests || c.Errors < p.Errors {
			p = Counts{} // new here, or the counters went back: a restart
		}
		s.grow(h, now, c.Requests-p.Requests, c.Errors-p.Errors, bounds, p.Latency, c.Latency)
	}
	return full
}

// grow adds to the slot now; latency buckets wait in pend until it is over.
func (s *series) grow(h *History, now uint32, req, errs uint64, bounds []float64, was, is []uint64) {
	if s.pendN != now {
		s.finish(h)
		s.pendN, s.pend = now, s.pend[:0]
	}
	sl := s.at(h, now)
	sl.req = sat(uint64(sl.req) + req)
	sl.err = sat(uint64(sl.err) + errs)
	if len(is) == 0 {
		return
	}
	if s.bounds == nil || !slices.Equal(s.bounds, bounds) {
		s.bounds, s.pend = slices.Clone(bounds), s.pend[:0]
	}
	if len(s.pend) == 0 {
		s.pend = make([]uint64, len(bounds))
	}
	for i := range is {
		d := is[i]
		if len(was) == len(is) && was[i] <= is[i] {
			d -= was[i]
		}
		s.pend[i] += d
	}
}

// at is the slot numbered n, emptied first if it held an older one.
func (s *series) at(h *History, n uint32) *slot {
	sl := &s.ring[int(n)%h.slots]
	if sl.n != n {
		*sl = slot{n: n}
	}
	return sl
}

// finish writes the pending slot's percentiles.
func (s *series) finish(h *History) {
	if s.pendN == 0 || len(s.pend) == 0 {
		return
	}
	sl := &s.ring[int(s.pendN)%h.slots]
	if sl.n == s.pendN {
		sl.p50, sl.p99 = s.quantiles()
	}
}

func (s *series) quantiles() (p50, p99 float32) {
	return float32(quantile(s.bounds, s.pend, 0.5)), float32(quantile(s.bounds, s.pend, 0.99))
}

// quantile estimates the q-quantile of cumulative bucket counts: linear
// within the bucket it falls in, as Prometheus' histogram_quantile does.
func quantile(bounds []float64, cum []uint64, q float64) float64 {
	if len(cum) == 0 || cum[len(cum)-1] == 0 {
		return 0
	}
	total := float64(cum[len(cum)-1])
	rank := q * total
	lo, below := 0.0, 0.0
	for i, b := range bounds {
		c := float64(cum[i])
		if c >= rank {
			if c == below {
				return b
			}
			return lo + (b-lo)*(rank-below)/(c-below)
		}
		lo, below = b, c
	}
	return bounds[len(bounds)-1]
}

func sat(v uint64) uint32 { return uint32(min(v, math.MaxUint32)) }

// forget drops sources and series nobody reported for the whole span.
func (h *History) forget(now uint32) {
	old := func(seen uint32) bool { return now-seen > uint32(h.slots) }
	for id, s := range h.sources {
		if old(s.seen) {
			delete(h.sources, id)
		}
	}
	for _, by := range []map[string]*series{h.tenants, h.servers} {
		for id, s := range by {
			if old(s.lastSeen) {
				delete(by, id)
			}
		}
	}
}
