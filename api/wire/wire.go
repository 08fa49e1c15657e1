// Package wire is the language of slum's fleet HTTP API: the JSON bodies
// its server (package api) and its Go client (api/client) exchange, how an
// error travels (its kind, HTTP status and the desired.Err* sentinel it
// stands for), how ids go into paths, and the watch stream's messages.
// Values are desired's own types wherever they can be, so the API shows
// what 'slum -o json' shows.
package wire

import (
	"encoding/json"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/routes"
)

// Prefix starts every API path.
const Prefix = "/v1"

// PathSegment puts an id (a server, tenant, instance key or domain) into a
// URL path as one segment, so that any string the user gave, even an empty
// one, reaches the server as given and meets the same validation as
// locally. A segment starting with "-" carries an escape: "" is "-", and
// an id that starts with "-" gets one more. Valid ids never start with
// "-", so their paths read as the plain ids. The result still needs
// url.PathEscape.
func PathSegment(id string) string {
	if id == "" || strings.HasPrefix(id, "-") {
		return "-" + id
	}
	return id
}

// FromPathSegment reverses PathSegment.
func FromPathSegment(seg string) string {
	return strings.TrimPrefix(seg, "-")
}

// Server is a server as the API shows it: desired.Server, whose token is
// never shown, and whether it has one.
type Server struct {
	slum.Server
	HasToken bool `json:"has_token"`
}

// NewServer shows s.
func NewServer(s slum.Server) Server { return Server{Server: s, HasToken: s.HasToken()} }

// AddServerReq is the body of POST /v1/servers.
type AddServerReq struct {
	ID         string `json:"id"`
	URL        string `json:"url"`
	Region     string `json:"region,omitempty"`
	CapacityMB int64  `json:"capacity_mb"`
	Domain     string `json:"domain,omitempty"`
	// Token is the server's tenement admin token; empty: none.
	Token string `json:"token,omitempty"`
}

// ServerUpdate is the body of PATCH /v1/servers/{id}: the fields given
// change. A token of "" removes the stored one.
type ServerUpdate struct {
	URL        *string `json:"url,omitempty"`
	Region     *string `json:"region,omitempty"`
	CapacityMB *int64  `json:"capacity_mb,omitempty"`
	Domain     *string `json:"domain,omitempty"`
	Token      *string `json:"token,omitempty"`
}

// SetState is the body of PUT /v1/servers/{id}/state.
type SetState struct {
	State slum.ServerState `json:"state"`
}

// Removed answers a DELETE, as 'slum ... remove -o json' does.
type Removed struct {
	Removed string `json:"removed"`
}

// InstanceSpec asks for an instance (desired.InstanceSpec).
type InstanceSpec struct {
	Tenant   string    `json:"tenant"`
	ID       string    `json:"id"`
	Process  string    `json:"process"`
	Server   string    `json:"server,omitempty"`
	MemoryMB int64     `json:"memory_mb,omitempty"`
	Mode     slum.Mode `json:"mode,omitempty"`
}

// Spec converts the wire form.
func (s InstanceSpec) Spec() slum.InstanceSpec {
	return slum.InstanceSpec{TenantID: s.Tenant, ID: s.ID, Process: s.Process, ServerID: s.Server, MemoryMB: s.MemoryMB, Mode: s.Mode}
}

// FromSpec is the wire form of s.
func FromSpec(s slum.InstanceSpec) InstanceSpec {
	return InstanceSpec{Tenant: s.TenantID, ID: s.ID, Process: s.Process, Server: s.ServerID, MemoryMB: s.MemoryMB, Mode: s.Mode}
}

// AddTenantReq is the body of POST /v1/tenants: a tenant and, optionally,
// its first instances.
type AddTenantReq struct {
	ID        string              `json:"id"`
	Domain    string              `json:"domain"`
	Region    string              `json:"region,omitempty"`
	Failover  slum.FailoverPolicy `json:"failover,omitempty"`
	Serving   slum.ServingPolicy  `json:"serving,omitempty"`
	Data      slum.DataPolicy     `json:"data,omitempty"`
	Replica   string              `json:"replica,omitempty"`
	Instances []InstanceSpec      `json:"instances,omitempty"`
}

// AddedTenant answers POST /v1/tenants.
type AddedTenant struct {
	Tenant    slum.Tenant     `json:"tenant"`
	Instances []slum.Instance `json:"instances"`
}

// TenantUpdate is the body of PATCH /v1/tenants/{id}.
type TenantUpdate struct {
	Domain   *string              `json:"domain,omitempty"`
	Region   *string              `json:"region,omitempty"`
	Failover *slum.FailoverPolicy `json:"failover,omitempty"`
	Serving  *slum.ServingPolicy  `json:"serving,omitempty"`
	Data     *slum.DataPolicy     `json:"data,omitempty"`
	Replica  *string              `json:"replica,omitempty"`
}

// MoveTo is the body of POST /v1/instances/{key}/move; "" lets slum choose.
type MoveTo struct {
	To string `json:"to"`
}

// ApplyReq is the body of POST /v1/apply and /v1/diff. The answer is the
// change set.
type ApplyReq struct {
	File           slum.FileSource `json:"file"`
	Prune          bool            `json:"prune,omitempty"`
	AllowMassPrune bool            `json:"allow_mass_prune,omitempty"`
	DryRun         bool            `json:"dry_run,omitempty"`
}

// Approve is the body of POST /v1/holds/{id}/approve: who approves, for
// the record (the API adds the token that made the call).
type Approve struct {
	By string `json:"by"`
}

// CreateToken is the body of POST /v1/tokens.
type CreateToken struct {
	Role slum.APIRole `json:"role"`
	Name string       `json:"name,omitempty"`
}

// CreatedToken answers POST /v1/tokens: the only time the token is shown.
type CreatedToken struct {
	slum.APIToken
	Token string `json:"token"`
}

// Whoami answers GET /v1/whoami: the token the request came with.
type Whoami struct {
	ID   int64        `json:"id"`
	Name string       `json:"name"`
	Role slum.APIRole `json:"role"`
	// NoAuth: the API runs without authentication (loopback only), and
	// every request may do everything.
	NoAuth bool `json:"no_auth,omitempty"`
}

// Routes answers GET /v1/routes: the route table.
type Routes struct {
	Revision int64          `json:"revision"`
	Routes   []routes.Route `json:"routes"`
}

// Table is the routes.Table r describes.
func (r Routes) Table() *routes.Table { return routes.New(r.Revision, r.Routes) }

// RoutesOf describes t.
func RoutesOf(t *routes.Table) Routes {
	return Routes{Revision: t.Revision(), Routes: append([]routes.Route{}, t.Routes()...)}
}

// Raw is a JSON value passed along as it is.
type Raw = json.RawMessage
