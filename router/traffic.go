package router

import (
	"github.com/slum-fleet/slum/traffic"
)

// Traffic is a snapshot of the counters the router's metrics keep, for
// the fleet's traffic history: requests and 5xx answers per tenant
// (slum_router_requests_total), and per server the upstream requests with
// their latency buckets (slum_router_upstream_duration_seconds; a server
// counts no errors here, as upstream errors are not counted by server).
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
				var tenant, class string
				for _, l := range mt.GetLabel() {
					switch l.GetName() {
					case "tenant":
						tenant = l.GetValue()
					case "class":
						class = l.GetValue()
					}
				}
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
				var server string
				for _, l := range mt.GetLabel() {
					if l.GetName() == "server" {
						server = l.GetValue()
					}
				}
				h := mt.GetHistogram()
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
				r.Servers[server] = c
			}
		}
	}
	return r
}
