package traffic

import (
	"math"
	"time"
)

// Query asks for part of the history. Only whole slots are answered: the
// one being filled now is not.
type Query struct {
	Last   time.Duration // how far back; 0 or beyond the span: all of it
	Since  time.Time     // only slots that start after this (a client's last answer's End)
	Tenant string        // only this tenant's series, and no server's ("" : all)
	Server string        // only this server's series, and no tenant's
}

// Window is part of the history: for each series one value per slot,
// the first starting at Start, StepMS apart, up to End.
type Window struct {
	Start   time.Time          `json:"start"`
	End     time.Time          `json:"end"`
	StepMS  int64              `json:"step_ms"`
	Slots   int                `json:"slots"`
	Tenants map[string]*Series `json:"tenants"`
	Servers map[string]*Series `json:"servers"`
}

// Series is one tenant's or server's traffic over a window. Arrays that
// would be all zeros are left out.
type Series struct {
	RPS       []float64 `json:"rps"`
	ErrorRate []float64 `json:"error_rate,omitempty"` // 0 to 1
	P50       []float64 `json:"p50_ms,omitempty"`     // 0: not measured
	P99       []float64 `json:"p99_ms,omitempty"`
	// Now is the latest: requests per second and error rate over the last
	// half minute, latency of the latest slot that measured any.
	Now Rate `json:"now"`
}

// Rate is traffic at one time.
type Rate struct {
	RPS       float64 `json:"rps"`
	ErrorRate float64 `json:"error_rate"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
}

// nowSlots is how many slots Series.Now averages over (30 s at 5 s).
func (h *History) nowSlots() int {
	return max(1, int(30*time.Second/h.cfg.Resolution))
}

// Window answers q.
func (h *History) Window(q Query) *Window {
	end := h.slotOf(h.cfg.Clock.Now()) // not included: still being filled
	n := h.slots
	if q.Last > 0 {
		n = min(n, max(1, int(q.Last/h.cfg.Resolution)))
	}
	first := end - uint32(n)
	if !q.Since.IsZero() {
		if s := h.slotOf(q.Since); s >= first {
			first = s
		}
	}
	if first > end {
		first = end
	}
	w := &Window{Start: h.startOf(first), End: h.startOf(end), StepMS: h.cfg.Resolution.Milliseconds(), Slots: int(end - first),
		Tenants: map[string]*Series{}, Servers: map[string]*Series{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	pick := func(by map[string]*series, only string, into map[string]*Series) {
		if only != "" {
			if s := by[only]; s != nil {
				into[only] = h.seriesOf(s, first, end)
			}
			return
		}
		for id, s := range by {
			into[id] = h.seriesOf(s, first, end)
		}
	}
	if q.Server == "" {
		pick(h.tenants, q.Tenant, w.Tenants)
	}
	if q.Tenant == "" {
		pick(h.servers, q.Server, w.Servers)
	}
	return w
}

// point is one slot as a Series shows it.
func (h *History) point(s *series, n uint32) (rps, errRate, p50, p99 float64) {
	sl := s.ring[int(n)%h.slots]
	if sl.n != n {
		return 0, 0, 0, 0
	}
	lo, hi := sl.p50, sl.p99
	if n == s.pendN && len(s.pend) > 0 {
		lo, hi = s.quantiles()
	}
	secs := h.cfg.Resolution.Seconds()
	rps = float64(sl.req) / secs
	if sl.req > 0 {
		errRate = float64(sl.err) / float64(sl.req)
	}
	return rps, errRate, float64(lo) * 1000, float64(hi) * 1000
}

func (h *History) seriesOf(s *series, first, end uint32) *Series {
	k := int(end - first)
	out := &Series{RPS: make([]float64, k), ErrorRate: make([]float64, k), P50: make([]float64, k), P99: make([]float64, k)}
	var anyErr, anyLat bool
	for i := range k {
		rps, e, p50, p99 := h.point(s, first+uint32(i))
		out.RPS[i], out.ErrorRate[i], out.P50[i], out.P99[i] = round(rps, 2), round(e, 4), round(p50, 2), round(p99, 2)
		anyErr, anyLat = anyErr || e > 0, anyLat || p99 > 0
	}
	if !anyErr {
		out.ErrorRate = nil
	}
	if !anyLat {
		out.P50, out.P99 = nil, nil
	}
	out.Now = h.now(s, end)
	return out
}

// now is the series' latest rate, from the whole slots before end.
func (h *History) now(s *series, end uint32) Rate {
	var req, errs uint64
	k := min(h.nowSlots(), h.slots-1)
	for i := 1; i <= k; i++ {
		n := end - uint32(i)
		if sl := s.ring[int(n)%h.slots]; sl.n == n {
			req += uint64(sl.req)
			errs += uint64(sl.err)
		}
	}
	r := Rate{RPS: round(float64(req)/(float64(k)*h.cfg.Resolution.Seconds()), 2)}
	if req > 0 {
		r.ErrorRate = round(float64(errs)/float64(req), 4)
	}
	for i := 1; i <= k; i++ {
		if _, _, p50, p99 := h.point(s, end-uint32(i)); p99 > 0 {
			r.P50, r.P99 = round(p50, 2), round(p99, 2)
			break
		}
	}
	return r
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}
