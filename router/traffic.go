package router

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/slum-fleet/slum/traffic"
)

// Traffic is a snapshot of the counters the router's metrics keep, for
// the fleet's traffic history: requests and 5xx answers per tenant
// (slum_router_requests_total) with their upstream latency buckets
// (slum_router_tenant_upstream_duration_seconds), and per server the
// upstream requests with their latency buckets
// (slum_router_upstream_duration_seconds; a server counts no errors here,
// as upstream errors are not counted by server).
// The caller names the source.
func (m *Metrics) Traffic() traffic.Report {
	r := traffic.Report{Tenants: map[string]traffic.Counts{}, Servers: map[string]traffic.Counts{}}
	fams, err := m.Registry.Gather()
	if err != nil {
		return r
	}
	for _, f := range fams {
		switch f.GetName() {
		case "slum_router_requests_total":
			for _, mt := range f.GetMetric() {
				tenant, class := label(mt, "tenant"), label(mt, "class")
				n := uint64(mt.GetCounter().GetValue())
				c := r.Tenants[tenant]
				c.Requests += n
				if class == "5xx" || class == "other" {
					c.Errors += n
				}
				r.Tenants[tenant] = c
			}
		case "slum_router_upstream_duration_seconds":
			for _, mt := range f.GetMetric() {
				r.Servers[label(mt, "server")] = histogram(&r, mt.GetHistogram())
			}
		case "slum_router_tenant_upstream_duration_seconds":
			// The tenant's requests and errors come from the counter; a
			// tenant with no upstream answer yet sends no buckets.
			for _, mt := range f.GetMetric() {
				if mt.GetHistogram().GetSampleCount() == 0 {
					continue
				}
				tenant := label(mt, "tenant")
				c := r.Tenants[tenant]
				c.Latency = histogram(&r, mt.GetHistogram()).Latency
				r.Tenants[tenant] = c
			}
		}
	}
	return r
}

// histogram is h's sample count and cumulative buckets; the report's
// bounds are the first histogram's (every one here has the same).
func histogram(r *traffic.Report, h *dto.Histogram) traffic.Counts {
	c := traffic.Counts{Requests: h.GetSampleCount()}
	bs := h.GetBucket()
	if r.Bounds == nil {
		for _, b := range bs {
			r.Bounds = append(r.Bounds, b.GetUpperBound())
		}
	}
	if len(bs) == len(r.Bounds) {
		for _, b := range bs {
			c.Latency = append(c.Latency, b.GetCumulativeCount())
		}
	}
	return c
}

// label is the value of m's label name ("" if it has none).
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
