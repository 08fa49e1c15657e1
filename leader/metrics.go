package leader

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the elector's, on a registry of their own.
type Metrics struct {
	Registry      *prometheus.Registry
	leading       prometheus.Gauge
	databaseOK    prometheus.Gauge
	epoch         prometheus.Gauge
	terms         prometheus.Counter
	renewFailures prometheus.Counter
}

// NewMetrics registers the elector's metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_controller_leader",
			Help: "1 while this controller leads (holds the lease and acts on the fleet), 0 while it stands by."}),
		databaseOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_controller_database_ok",
			Help: "0 while the fleet database cannot be used (deleted, replaced, read-only, full, failing)."}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_controller_lease_epoch",
			Help: "The epoch of the lease this controller holds, or last saw held."}),
		terms: prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_controller_terms_total",
			Help: "Terms this controller has led (takeovers, including the first)."}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_controller_lease_renewal_failures_total",
			Help: "Lease renewals that failed and were retried before the renew deadline."}),
	}
	m.databaseOK.Set(1)
	m.Registry.MustRegister(m.leading, m.databaseOK, m.epoch, m.terms, m.renewFailures)
	return m
}

func (m *Metrics) set(st *Status) {
	m.leading.Set(b2f(st.Leading))
	m.databaseOK.Set(b2f(st.DatabaseOK))
	if st.Lease.Epoch > 0 {
		m.epoch.Set(float64(st.Lease.Epoch))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
