// Package routes owns the route table: for each tenant domain, the copies
// that serve it now, and whether a controller's decision (Decision: each
// server's health, who serves each tenant) changes it. The table is an
// immutable value: whoever computes a new one (the controller's loop from
// each plan that changes it, a router following the database or the API)
// builds a fresh Table and swaps it in, so readers on the request path
// never lock and never touch the database.
package routes

import (
	"sort"
	"strings"

	"github.com/slum-fleet/slum"
)

// Backend is one copy a request for a tenant can go to: an instance on a
// tenement server, reached through that server's subdomain routing.
type Backend struct {
	Instance slum.InstanceKey `json:"instance"`
	Server   string           `json:"server"` // server id
	URL      string           `json:"url"`    // the server's tenement base URL, scheme://host[:port]
	// Host is the Host header tenement routes on:
	// {tenant}--{instance}.{process}.{server domain}.
	Host string `json:"host"`
	// OnDemand copies may be scaled to zero; the first request wakes them,
	// so it deserves a cold-start allowance.
	OnDemand bool `json:"on_demand,omitempty"`
}

// Route is where one tenant's traffic goes.
type Route struct {
	Tenant string `json:"tenant"`
	Domain string `json:"domain"`
	// Backends are the serving copies, preferred first. Empty when nothing
	// serves the tenant now; Reason then says why.
	Backends []Backend `json:"backends"`
	// Spares are running copies on healthy servers that do not serve now
	// (warm spares). A router may try one when no serving copy can be
	// connected to.
	Spares []Backend `json:"spares,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Table maps domains to routes. The zero value and nil are empty tables.
type Table struct {
	revision int64
	byDomain map[string]*Route
	routes   []Route
}

// New builds a table. revision orders tables: a reader keeps the newer of
// two. Domains are matched case-insensitively; a later route for a domain
// already seen is ignored.
func New(revision int64, rs []Route) *Table {
	t := &Table{revision: revision, byDomain: make(map[string]*Route, len(rs))}
	t.routes = make([]Route, 0, len(rs))
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		r.Domain = Normalize(r.Domain)
		if seen[r.Domain] || r.Domain == "" {
			continue
		}
		seen[r.Domain] = true
		t.routes = append(t.routes, r)
	}
	sort.Slice(t.routes, func(i, j int) bool { return t.routes[i].Domain < t.routes[j].Domain })
	for i := range t.routes {
		t.byDomain[t.routes[i].Domain] = &t.routes[i]
	}
	return t
}

// Revision is the revision the table was built at.
func (t *Table) Revision() int64 {
	if t == nil {
		return 0
	}
	return t.revision
}

// Len is the number of routes.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.routes)
}

// Lookup finds the route for a request's Host header (any port and
// trailing dot are ignored). The returned route must not be modified.
func (t *Table) Lookup(host string) (*Route, bool) {
	if t == nil {
		return nil, false
	}
	r, ok := t.byDomain[Normalize(host)]
	return r, ok
}

// Routes returns every route, by domain. The slice must not be modified.
func (t *Table) Routes() []Route {
	if t == nil {
		return nil
	}
	return t.routes
}

// Normalize turns a Host header into the domain it names: lower case,
// without a port or a trailing dot. Only a port after a host name or a
// bracketed IPv6 address is cut: a bare "::1" has no port, and cutting at
// its last colon would make Normalize change its own result.
func Normalize(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		bracketed := strings.HasPrefix(host, "[") && strings.IndexByte(host, ']') == i-1
		if bracketed || strings.IndexByte(host, ':') == i && !strings.HasPrefix(host, "[") {
			host = host[:i]
		}
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}
