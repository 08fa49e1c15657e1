package router

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slum-fleet/slum/routes"
)

// ErrInvalidRoute is wrapped by Set's errors for a table that names a
// backend the router cannot use.
var ErrInvalidRoute = errors.New("invalid route")

// ErrStaleTable is wrapped by Set's error for a table older than the one
// in use.
var ErrStaleTable = errors.New("route table is older than the one in use")

// snapshot is a routes.Table prepared for the request path: backends
// parsed, each tied to its server's connection pool and its metrics. It is
// immutable once published.
type snapshot struct {
	table     *routes.Table
	byDomain  map[string]*target
	pools     map[string]*pool // by scheme://host:port
	tenants   map[string]*tenantCounters
	installed time.Time // when Set published it
}

// target is one route, ready to serve.
type target struct {
	route    *routes.Route
	backends []*backend
	spares   []*backend
	counters *tenantCounters
	reason   string // why nothing serves, for a 503
}

// backend is one copy with its pool and per-request settings.
type backend struct {
	routes.Backend
	pool          *pool
	headerTimeout time.Duration
	latency       prometheus.Observer
}

// next is where a request goes when backend i could not be connected to:
// the next serving copy, else the first warm spare.
func (t *target) next(i int) *backend {
	if i+1 < len(t.backends) {
		return t.backends[i+1]
	}
	if len(t.spares) > 0 {
		return t.spares[0]
	}
	return nil
}

func (s *snapshot) lookup(host string) *target {
	if s == nil {
		return nil
	}
	return s.byDomain[routes.Normalize(host)]
}

// compile prepares t, reusing prev's pools and counters where they still
// apply. It fails, changing nothing, when a backend is unusable.
func (p *Proxy) compile(t *routes.Table, prev *snapshot) (*snapshot, error) {
	rs := t.Routes()
	s := &snapshot{
		table:     t,
		byDomain:  make(map[string]*target, len(rs)),
		pools:     make(map[string]*pool),
		tenants:   make(map[string]*tenantCounters),
		installed: p.clock.Now(),
	}
	for i := range rs {
		r := &rs[i]
		tg := &target{route: r, reason: r.Reason}
		if tg.reason == "" {
			tg.reason = "unknown"
		}
		var err error
		if tg.backends, err = p.compileBackends(s, prev, r, r.Backends); err != nil {
			return nil, err
		}
		if tg.spares, err = p.compileBackends(s, prev, r, r.Spares); err != nil {
			return nil, err
		}
		if c, ok := s.tenants[r.Tenant]; ok {
			tg.counters = c
		} else if prev != nil && prev.tenants[r.Tenant] != nil {
			tg.counters = prev.tenants[r.Tenant]
		} else {
			tg.counters = p.metrics.countersFor(r.Tenant)
		}
		s.tenants[r.Tenant] = tg.counters
		s.byDomain[r.Domain] = tg
	}
	return s, nil
}

func (p *Proxy) compileBackends(s, prev *snapshot, r *routes.Route, bs []routes.Backend) ([]*backend, error) {
	if len(bs) == 0 {
		return nil, nil
	}
	out := make([]*backend, 0, len(bs))
	for _, b := range bs {
		key, u, err := parseBackend(b)
		if err != nil {
			return nil, fmt.Errorf("%w: tenant %s copy %s: %w", ErrInvalidRoute, r.Tenant, b.Instance, err)
		}
		pl := s.pools[key]
		if pl == nil && prev != nil {
			pl = prev.pools[key]
		}
		if pl == nil {
			pl = newPool(u, p.cfg.MaxIdleConnsPerBackend)
		}
		s.pools[key] = pl
		ht := p.cfg.ResponseHeaderTimeout
		if b.OnDemand {
			ht += p.cfg.ColdStartAllowance
		}
		out = append(out, &backend{Backend: b, pool: pl, headerTimeout: ht, latency: p.metrics.upstream.WithLabelValues(b.Server)})
	}
	return out, nil
}

// parseBackend checks a backend's URL (scheme://host[:port], http or
// https) and Host, and returns its pool key.
func parseBackend(b routes.Backend) (string, *url.URL, error) {
	u, err := url.Parse(b.URL)
	if err != nil {
		return "", nil, fmt.Errorf("url %q: %w", b.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", nil, fmt.Errorf("url %q: scheme must be http or https", b.URL)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", nil, fmt.Errorf("url %q must be scheme://host[:port] and nothing else", b.URL)
	}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if !validHost(b.Host) {
		return "", nil, fmt.Errorf("host %q is not a valid Host header", b.Host)
	}
	return u.Scheme + "://" + u.Host, u, nil
}

// validHost accepts what a Host header may carry here: a DNS name or IP
// address, optionally with a port.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}
