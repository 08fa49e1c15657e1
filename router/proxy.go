// Package router owns slum's HTTP reverse proxy: it sends each request for
// a tenant's domain to the copy that serves the tenant now, as the current
// routes.Table says, and runs that proxy as a server (TLS, HTTP/2,
// graceful shutdown) with an access log and Prometheus metrics.
//
// The route table is an immutable snapshot swapped atomically (Set); the
// request path takes no lock and does no I/O but the proxied exchange.
// Upstream connections are HTTP/1.1 to tenement servers, pooled per
// server; a request's goroutine does its upstream I/O itself, which keeps
// the per-request cost well below net/http's Transport.
package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/routes"
)

// Proxy is an http.Handler that routes by Host through the current route
// table. Create it with New and give it tables with Set; Close it when done.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	// dialTCP opens upstream TCP connections: a net.Dialer's, replaced by
	// in-memory connections in benchmarks.
	dialTCP    func(ctx context.Context, network, addr string) (net.Conn, error)
	retryAfter string
	idPrefix   string
	idSeq      atomic.Uint64

	snap  atomic.Pointer[snapshot]
	setMu sync.Mutex // serialises Set; never taken by requests
	clock clock.Clock
	src   sourceState

	// tunnels ends upgraded connections (WebSocket) on CloseTunnels.
	tunnels      context.Context
	closeTunnels context.CancelFunc

	stopJanitor chan struct{}
	janitorDone chan struct{}
	closeOnce   sync.Once
}

// New creates a proxy with an empty route table: every host gets 404 until
// Set installs a table. log receives the access log (Info, message
// "request") and a few warnings; nil discards them. metrics nil creates a
// fresh set, available from Metrics.
func New(cfg Config, log *slog.Logger, metrics *Metrics) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	var seed [4]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("router: request id seed: %w", err)
	}
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	p := &Proxy{
		clock:       clk,
		cfg:         cfg,
		log:         log,
		metrics:     metrics,
		dialTCP:     dialer.DialContext,
		retryAfter:  strconv.Itoa(int(cfg.RetryAfter / time.Second)),
		idPrefix:    hex.EncodeToString(seed[:]) + "-",
		stopJanitor: make(chan struct{}),
		janitorDone: make(chan struct{}),
	}
	p.tunnels, p.closeTunnels = context.WithCancel(context.Background())
	empty, err := p.compile(routes.New(0, nil), nil)
	if err != nil {
		return nil, err
	}
	p.snap.Store(empty)
	metrics.watchTable(p)
	go p.janitor()
	return p, nil
}

// Metrics returns the proxy's metrics.
func (p *Proxy) Metrics() *Metrics { return p.metrics }

// Table returns the table in use.
func (p *Proxy) Table() *routes.Table { return p.snap.Load().table }

// Set installs t for every request that starts after it returns. A table
// older than the one in use (by revision) is refused with ErrStaleTable,
// one naming an unusable backend with ErrInvalidRoute; either way nothing
// changes. Connections to servers no longer in the table are closed.
func (p *Proxy) Set(t *routes.Table) error {
	if t == nil {
		t = routes.New(0, nil)
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	prev := p.snap.Load()
	if t.Revision() < prev.table.Revision() {
		return fmt.Errorf("%w: revision %d, in use %d", ErrStaleTable, t.Revision(), prev.table.Revision())
	}
	next, err := p.compile(t, prev)
	if err != nil {
		return err
	}
	p.snap.Store(next)
	for key, pl := range prev.pools {
		if next.pools[key] != pl {
			if n := pl.retire(p.clock, p.cfg.RetireGrace); n > 0 {
				p.metrics.deadEnded.Add(float64(n))
				p.log.Warn("server left the route table: ending its exchanges in flight", "upstream", pl.addr, "connections", n)
			}
		}
	}
	for tenant := range prev.tenants {
		if _, ok := next.tenants[tenant]; !ok {
			p.metrics.forgetTenant(tenant)
		}
	}
	return nil
}

// CloseTunnels ends every upgraded connection (WebSocket) and any that
// are upgraded later. Server calls it when it starts shutting down, since
// http.Server.Shutdown does not wait for hijacked connections.
func (p *Proxy) CloseTunnels() { p.closeTunnels() }

// Close ends upgraded connections, closes idle upstream connections and
// stops the proxy's background work. Requests in flight are not waited
// for: shut the server down first.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.closeTunnels()
		close(p.stopJanitor)
		<-p.janitorDone
		for _, pl := range p.snap.Load().pools {
			pl.retired.Store(true)
			pl.drain()
		}

	})
	return nil
}

// janitor closes upstream connections that stayed idle too long.
func (p *Proxy) janitor() {
	defer close(p.janitorDone)
	t := time.NewTicker(max(p.cfg.IdleConnTimeout/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-p.stopJanitor:
			return
		case now := <-t.C:
			for _, pl := range p.snap.Load().pools {
				pl.sweep(now, p.cfg.IdleConnTimeout)
			}
			p.reportSource(p.clock.Now())
		}
	}
}

// exchange is one request's state as it passes through the proxy.
type exchange struct {
	w       http.ResponseWriter
	r       *http.Request
	start   time.Time
	id      string
	newID   bool // id was generated here, not passed in
	target  *target
	backend *backend
	upgrade string // the Upgrade header asked for, if any
	// bodyStarted is set once the request body was read from: from then
	// on the request cannot be replayed.
	bodyStarted bool
	retried     bool
	status      int
	bytes       int64
	err         error // why the exchange failed, for the log
	stopWatch   func() bool
	// onWatch, when set (the fast path), is called whenever the exchange
	// waits on its upstream: the client's connection is then watched for
	// going away.
	onWatch func()
}

// ServeHTTP proxies one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.serve(w, r, nil) }

// serve proxies one request; onWatch is the fast path's (see exchange).
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, onWatch func()) {
	ex := &exchange{w: w, r: r, start: time.Now(), onWatch: onWatch}
	p.metrics.inFlight.Add(1)
	defer p.finish(ex)
	ex.id, ex.newID = p.requestID(r)
	if r.Method == http.MethodConnect {
		ex.plain(http.StatusMethodNotAllowed, "CONNECT is not supported: this is a reverse proxy\n")
		return
	}
	tg := p.snap.Load().lookup(r.Host)
	if tg == nil {
		p.metrics.unknownHost.Inc()
		ex.plain(http.StatusNotFound, "404 page not found: no tenant is served at this host\n")
		return
	}
	ex.target = tg
	if len(tg.backends) == 0 {
		p.metrics.unavailable.WithLabelValues(tg.reason).Inc()
		w.Header().Set("Retry-After", p.retryAfter)
		ex.plain(http.StatusServiceUnavailable, "503 service unavailable: no copy of tenant "+tg.route.Tenant+" serves now ("+tg.reason+")\n")
		return
	}
	if p.cfg.MaxBodyBytes >= 0 && r.ContentLength > p.cfg.MaxBodyBytes {
		ex.err = errBodyTooLarge
		ex.plain(http.StatusRequestEntityTooLarge, "413 request body too large\n")
		return
	}
	p.forward(ex)
}

// plain answers with a short text body.
func (ex *exchange) plain(status int, body string) {
	h := ex.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", ex.id)
	ex.status = status
	ex.w.WriteHeader(status)
	n, _ := io.WriteString(ex.w, body)
	ex.bytes = int64(n)
}

// forward sends the request to the route's first copy and, when that copy
// cannot be connected to and the request can be replayed, once to the next
// copy or the first warm spare.
func (p *Proxy) forward(ex *exchange) {
	tg := ex.target
	ex.upgrade = upgradeRequested(ex.r.Header)
	b := tg.backends[0]
	resp, uc, err := p.roundTrip(ex, b)
	// One retry after a failure to connect; a few more when the copy's
	// server left the table mid-request, each for a newer table.
	for tries := 0; err != nil && tries < maxRetries && retryElsewhere(ex, err); tries++ {
		if tries > 0 && !errors.Is(err, errServerGone) {
			break
		}
		alt := p.alternative(ex, b, err)
		if alt == nil {
			break
		}
		ex.retried = true
		p.metrics.retries.Inc()
		p.log.LogAttrs(ex.r.Context(), slog.LevelWarn, "copy unreachable, retrying on another",
			slog.String("id", ex.id), slog.String("tenant", tg.route.Tenant), slog.String("copy", string(b.Instance)),
			slog.String("server", b.Server), slog.String("next", string(alt.Instance)), slog.Any("err", err))
		b = alt
		resp, uc, err = p.roundTrip(ex, b)
	}
	ex.backend = b
	if err != nil {
		p.fail(ex, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.tunnel(ex, resp, uc)
		return
	}
	p.relay(ex, resp, uc)
}

// maxRetries bounds the copies one request is sent to after the first.
const maxRetries = 3

// alternative is the copy a failed exchange on b is retried on: the
// next copy or a warm spare; when b's server left the route table, the
// first live copy of the table in use now.
func (p *Proxy) alternative(ex *exchange, b *backend, err error) *backend {
	if !errors.Is(err, errServerGone) {
		if alt := ex.target.next(0); alt != nil && !alt.pool.retired.Load() {
			return alt
		}
		return nil
	}
	tg := p.snap.Load().lookup(ex.r.Host)
	if tg == nil {
		return nil
	}
	for _, c := range append(tg.backends[:len(tg.backends):len(tg.backends)], tg.spares...) {
		if c.pool != b.pool {
			return c
		}
	}
	return nil
}

func isConnectError(err error) bool {
	var ce *connectError
	return errors.As(err, &ce)
}

// retryElsewhere reports whether a failed exchange may be tried on another
// copy: it could not connect, before the request body was read; or the
// copy broke off without answering a request that can be replayed (GET,
// HEAD, OPTIONS), as when its server dies with the request in flight or
// is declared dead meanwhile. A timeout is not retried: the copy may still
// be doing the work.
func retryElsewhere(ex *exchange, err error) bool {
	if ex.bodyStarted || ex.r.Context().Err() != nil {
		return false
	}
	if isConnectError(err) {
		return true
	}
	var ue *upstreamError
	return errors.As(err, &ue) && (ue.kind == errKindProtocol || ue.kind == errKindGone) && ue.noResponse && replayable(ex.r.Method)
}

// fail answers for an exchange that got no response headers.
func (p *Proxy) fail(ex *exchange, err error) {
	ex.err = err
	var ue *upstreamError
	var ce *connectError
	switch {
	case ex.r.Context().Err() != nil:
		ex.status = 499 // the client is gone: nobody to answer
	case errors.Is(err, errBodyTooLarge):
		ex.plain(http.StatusRequestEntityTooLarge, "413 request body too large\n")
	case errors.Is(err, errClientBody):
		ex.plain(http.StatusBadRequest, "400 bad request: the request body could not be read\n")
	case errors.Is(err, errServerGone) && !ex.bodyStarted && replayable(ex.r.Method):
		// Safe to retry, but nothing else serves the tenant now.
		ex.w.Header().Set("Retry-After", p.retryAfter)
		ex.plain(http.StatusServiceUnavailable, "503 service unavailable: the tenant's server was declared dead and no other copy serves now\n")
	case errors.Is(err, errServerGone):
		ex.plain(http.StatusBadGateway, "502 bad gateway: the tenant's server was declared dead with the request in flight\n")
	case errors.As(err, &ce):
		ex.plain(http.StatusBadGateway, "502 bad gateway: the tenant's server could not be reached\n")
	case errors.As(err, &ue) && ue.kind == errKindTimeout:
		ex.plain(http.StatusGatewayTimeout, "504 gateway timeout: the tenant did not answer in time\n")
	default:
		ex.plain(http.StatusBadGateway, "502 bad gateway: the tenant's server broke off the exchange\n")
	}
}

// finish counts and logs the exchange.
func (p *Proxy) finish(ex *exchange) {
	p.metrics.inFlight.Add(-1)
	if ex.stopWatch != nil {
		ex.stopWatch()
	}
	if ex.status == 0 { // a panic before anything was written
		ex.status = http.StatusInternalServerError
	}
	if ex.target != nil {
		ex.target.counters.byClass[classIndex(ex.status)].Inc()
	}
	ctx := ex.r.Context()
	if !p.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("id", ex.id),
		slog.String("method", ex.r.Method),
		slog.String("host", ex.r.Host),
		slog.String("path", ex.r.URL.Path), // never the query: it may carry tokens
		slog.Int("status", ex.status),
		slog.Int64("bytes", ex.bytes),
		slog.Duration("duration", time.Since(ex.start)),
	)
	if ex.target != nil {
		attrs = append(attrs, slog.String("tenant", ex.target.route.Tenant))
	}
	if b := ex.backend; b != nil {
		attrs = append(attrs, slog.String("copy", string(b.Instance)), slog.String("server", b.Server), slog.String("upstream", b.pool.addr))
	}
	if ex.retried {
		attrs = append(attrs, slog.Bool("retried", true))
	}
	if ex.err != nil {
		attrs = append(attrs, slog.String("err", ex.err.Error()))
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// requestID passes a well-formed X-Request-Id through or makes one.
func (p *Proxy) requestID(r *http.Request) (string, bool) {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) {
		return v[0], false
	}
	var b [32]byte
	id := append(b[:0], p.idPrefix...)
	id = strconv.AppendUint(id, p.idSeq.Add(1), 36)
	return string(id), true
}

// validRequestID accepts ids that are safe to log and forward: up to 128
// visible ASCII characters without quotes or backslashes.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
