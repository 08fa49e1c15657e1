// Package leadmetrics exports the fleet's leadership as Prometheus
// metrics: who leads at which epoch, how long since the leader renewed
// its lease and how many stand by. They are read from the fleet database
// at each scrape, so every controller reports the same leadership, the
// fleet's (package leader's metrics say what this process does).
package leadmetrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slum-fleet/slum"
)

// Source is where the leadership is read.
type Source interface {
	Leadership(ctx context.Context, lease string) (slum.Leadership, error)
}

// readTimeout bounds one scrape's read: a scrape of a process whose
// database is away reports the failure, it does not hang.
const readTimeout = 2 * time.Second

var (
	leaderDesc = prometheus.NewDesc("slum_fleet_leader",
		"1 for the controller holding an unexpired controller lease, by holder.", []string{"holder"}, nil)
	epochDesc = prometheus.NewDesc("slum_fleet_lease_epoch",
		"The controller lease's epoch: it grows each time the lease changes hands.", nil, nil)
	renewedDesc = prometheus.NewDesc("slum_fleet_lease_renewed_seconds",
		"Seconds since the leader last renewed its lease, by the database's clock.", nil, nil)
	standbysDesc = prometheus.NewDesc("slum_fleet_standbys",
		"Controllers heard from lately that stand by.", nil, nil)
	upDesc = prometheus.NewDesc("slum_fleet_leadership_read",
		"1 when the leadership could be read from the database at this scrape, else 0.", nil, nil)
)

// Collector reads the leadership at each scrape.
type Collector struct{ src Source }

// New is a Collector reading src.
func New(src Source) *Collector { return &Collector{src: src} }

// Registry is a registry of its own holding c.
func (c *Collector) Registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(c)
	return r
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{leaderDesc, epochDesc, renewedDesc, standbysDesc, upDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	l, err := c.src.Leadership(ctx, slum.ControllerLease)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	leads := l.Leader != "" && l.Live
	if leads {
		ch <- prometheus.MustNewConstMetric(leaderDesc, prometheus.GaugeValue, 1, l.Leader)
	}
	if l.Leader != "" {
		ch <- prometheus.MustNewConstMetric(epochDesc, prometheus.GaugeValue, float64(l.Epoch))
	}
	if l.Leader != "" && !l.RenewedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(renewedDesc, prometheus.GaugeValue, l.Ago(l.RenewedAt).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(standbysDesc, prometheus.GaugeValue, float64(len(l.Standbys)))
}
