package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the controller's Prometheus metrics, on a registry of its
// own (no global state).
type Metrics struct {
	Registry        *prometheus.Registry
	passDuration    prometheus.Histogram
	queueDepth      prometheus.Gauge
	actions         *prometheus.CounterVec
	servers         *prometheus.GaugeVec
	instances       *prometheus.GaugeVec
	unmanaged       prometheus.Gauge
	held            *prometheus.GaugeVec
	unplaceable     prometheus.Gauge
	failovers       prometheus.Counter
	moved           prometheus.Counter
	failoverSeconds prometheus.Histogram
	desiredLoaded   prometheus.Gauge
}

// NewMetrics registers the controller's metrics with Go and process
// collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slum_plan_duration_seconds",
			Help: "Time to make and carry out one plan.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_queue_depth", Help: "Actions queued or in flight."}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slum_actions_total",
			Help: "Spawn and stop calls by result: ok, retry (retried with backoff), permanent (parked) or skipped (no longer wanted when its turn came)."}, []string{"kind", "result"}),
		servers:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slum_servers", Help: "Servers by health."}, []string{"health"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slum_instances", Help: "Desired instances by observed phase."}, []string{"phase"}),
		unmanaged: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_unmanaged_instances", Help: "Running instances slum did not place (never touched)."}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slum_held_plans",
			Help: "Plans a safety rule holds back until the operator approves them (slum approve): mass-stop, partition."}, []string{"kind"}),
		unplaceable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_unplaceable_instances", Help: "Instances of dead servers that no healthy server can take now."}),
		failovers:   prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_failovers_total", Help: "Dead servers whose instances were placed elsewhere."}),
		moved:       prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_instances_moved_total", Help: "Instances placed elsewhere by failover or fail-back."}),
		failoverSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slum_failover_seconds",
			Help:    "From a server being declared dead to each of its instances running elsewhere.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120}}),
		desiredLoaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_desired_revision", Help: "The desired-state revision the controller works from."}),
	}
	r.MustRegister(m.passDuration, m.queueDepth, m.actions, m.servers, m.instances, m.unmanaged, m.held, m.unplaceable,
		m.failovers, m.moved, m.failoverSeconds, m.desiredLoaded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
