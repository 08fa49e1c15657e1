package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the controller's Prometheus metrics, on a registry of its
// own (no global state).
type Metrics struct {
	Registry      *prometheus.Registry
	passDuration  prometheus.Histogram
	queueDepth    prometheus.Gauge
	actions       *prometheus.CounterVec
	servers       *prometheus.GaugeVec
	instances     *prometheus.GaugeVec
	unmanaged     prometheus.Gauge
	stopRefusals  prometheus.Counter
	pollDuration  prometheus.Histogram
	desiredLoaded prometheus.Gauge
}

// NewMetrics registers the controller's metrics with Go and process
// collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slum_pass_duration_seconds",
			Help: "Time from a pass's start until every server it observed was diffed.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_queue_depth", Help: "Actions queued or in flight."}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slum_actions_total",
			Help: "Spawn and stop calls by result: ok, retry (will be retried with backoff) or permanent (parked)."}, []string{"kind", "result"}),
		servers:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slum_servers", Help: "Servers by health."}, []string{"health"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slum_instances", Help: "Desired instances by observed phase."}, []string{"phase"}),
		unmanaged: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_unmanaged_instances", Help: "Running instances slum did not place (never touched)."}),
		stopRefusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_mass_stop_refusals_total",
			Help: "Passes whose stops were refused because they would stop too much of the fleet."}),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slum_poll_duration_seconds",
			Help: "Duration of one server's instance list call.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		desiredLoaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_desired_revision", Help: "The desired-state revision the controller works from."}),
	}
	r.MustRegister(m.passDuration, m.queueDepth, m.actions, m.servers, m.instances, m.unmanaged, m.stopRefusals,
		m.pollDuration, m.desiredLoaded, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
