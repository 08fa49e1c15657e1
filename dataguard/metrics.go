package dataguard

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the data guard's Prometheus metrics, on a registry of its
// own.
type Metrics struct {
	Registry *prometheus.Registry
	waiting  prometheus.Gauge
	actions  *prometheus.CounterVec
	waits    prometheus.Histogram
	errors   prometheus.Counter
}

// NewMetrics makes the data guard's metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_replicated_waiting_for_writer",
			Help: "Replicated tenants whose lease is held, or revoked and not yet lapsed, by a copy that is not where their instance is placed."}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slum_replica_lease_actions_total",
			Help: "Writes to replicated tenants' leases by the data guard: revoke, handover, release."}, []string{"step"}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slum_replica_writer_wait_seconds",
			Help:    "How long a replicated tenant waited for its old writer, from the wait's first sight to its new copy holding the lease.",
			Buckets: []float64{0.25, 0.5, 1, 2, 3, 4, 6, 10, 30, 60}}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_replica_lease_errors_total",
			Help: "Lease reads and writes that failed (the store unreachable, no credentials, a lease changed under a write)."}),
	}
	m.Registry.MustRegister(m.waiting, m.actions, m.waits, m.errors)
	return m
}
