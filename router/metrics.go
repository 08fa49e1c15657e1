package router

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus metrics, on a registry of their own.
// Go and process collectors are not included: whoever serves the metrics
// registers those once for the whole process.
type Metrics struct {
	Registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	upstream    *prometheus.HistogramVec
	tenantUp    *prometheus.HistogramVec
	retries     prometheus.Counter
	unavailable *prometheus.CounterVec
	unknownHost prometheus.Counter
	upstreamErr *prometheus.CounterVec
	// inFlight counts requests being proxied; a plain atomic add per
	// request, read by a GaugeFunc (a Gauge's Inc is a compare-and-swap
	// loop on a float, contended between cores).
	inFlight atomic.Int64
	// The route source: up or down, failed checks, and the age of the
	// table in use (growing while the source is down).
	sourceUp       prometheus.Gauge
	sourceFailures prometheus.Counter
	deadEnded      prometheus.Counter
	handedOff      prometheus.Counter
}

// statusClasses are the values of the requests counter's class label,
// indexed by status/100.
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classIndex(status int) int {
	if c := status / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// upstreamErrorKinds label slum_router_upstream_errors_total.
type upstreamErrorKind string

const (
	errKindConnect  upstreamErrorKind = "connect"     // could not connect
	errKindTimeout  upstreamErrorKind = "timeout"     // no response headers in time
	errKindProtocol upstreamErrorKind = "protocol"    // broke off or answered nonsense
	errKindGone     upstreamErrorKind = "server_gone" // its server left the route table mid-exchange
)

// latencyBuckets are the upstream histograms' bounds, in seconds: the same
// by server and by tenant, so one traffic report carries both.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 14)

// NewMetrics creates the router's metrics on a new registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slum_router_requests_total",
			Help: "Requests for known tenants, by tenant and status class."}, []string{"tenant", "class"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "slum_router_upstream_duration_seconds",
			Help:    "Time from sending a request to a tenement server until its response headers arrived, by server.",
			Buckets: latencyBuckets}, []string{"server"}),
		tenantUp: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "slum_router_tenant_upstream_duration_seconds",
			Help:    "Time from sending a request to a tenement server until its response headers arrived, by tenant.",
			Buckets: latencyBuckets}, []string{"tenant"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_router_retries_total",
			Help: "Requests retried on another copy after the first could not be connected to."}),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slum_router_unavailable_total",
			Help: "503 answers for tenants with no serving copy, by the route's reason."}, []string{"reason"}),
		unknownHost: prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_router_unknown_host_total",
			Help: "404 answers for hosts that are no tenant's domain."}),
		upstreamErr: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slum_router_upstream_errors_total",
			Help: "Failed upstream attempts, by kind: connect, timeout, protocol or server_gone."}, []string{"kind"}),
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "slum_router_in_flight_requests",
		Help: "Requests being proxied now (upgraded connections included)."}, func() float64 { return float64(m.inFlight.Load()) })
	m.sourceUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "slum_router_source_up",
		Help: "1 while the route source (database, API, controller) answers, 0 while the router routes with its last good table."})
	m.sourceUp.Set(1)
	m.sourceFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_router_source_failures_total",
		Help: "Failed reads of the route source."})
	m.deadEnded = prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_router_dead_server_aborts_total",
		Help: "Upstream exchanges ended because their server left the route table (declared dead or removed)."})
	m.handedOff = prometheus.NewCounter(prometheus.CounterOpts{Name: "slum_router_fast_path_handoffs_total",
		Help: "Client connections the fast path handed to net/http's server (a request it does not handle: upgrades, Expect, chunked bodies, HTTP/1.0...)."})
	r.MustRegister(m.requests, m.upstream, m.tenantUp, m.retries, m.unavailable, m.unknownHost, m.upstreamErr, inFlight,
		m.sourceUp, m.sourceFailures, m.deadEnded, m.handedOff)
	return m
}

// watchTable registers the gauges that read p's table: its revision and
// age. A Metrics serves one proxy.
func (m *Metrics) watchTable(p *Proxy) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "slum_router_table_age_seconds",
			Help: "Seconds since the route source last confirmed the table in use."}, p.tableAgeSeconds),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "slum_router_table_revision",
			Help: "Revision of the route table in use."}, func() float64 { return float64(p.Table().Revision()) }),
	)
}

// tenantCounters are one tenant's request counters by class and its
// upstream latency, looked up once per table rather than per request.
type tenantCounters struct {
	byClass [len(statusClasses)]prometheus.Counter
	latency prometheus.Observer
}

func (m *Metrics) countersFor(tenant string) *tenantCounters {
	c := tenantCounters{latency: m.tenantUp.WithLabelValues(tenant)}
	for i, class := range statusClasses {
		c.byClass[i] = m.requests.WithLabelValues(tenant, class)
	}
	return &c
}

func (m *Metrics) forgetTenant(tenant string) {
	for _, class := range statusClasses {
		m.requests.DeleteLabelValues(tenant, class)
	}
	m.tenantUp.DeleteLabelValues(tenant)
}
