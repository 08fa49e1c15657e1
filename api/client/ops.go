package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/routes"
)

// Each method below is the store.Store method of the same name, over
// the API.

func fromWire(s wire.Server) slum.Server {
	out := s.Server
	if s.HasToken {
		out.Token = HiddenToken
	}
	return out
}

func fromWireList(ss []wire.Server) []slum.Server {
	if ss == nil {
		return nil
	}
	out := make([]slum.Server, len(ss))
	for i, s := range ss {
		out[i] = fromWire(s)
	}
	return out
}

// errHiddenToken: a server read from the API was sent back with its
// hidden token.
var errHiddenToken = &slum.FieldError{Field: "token", Value: HiddenToken, Reason: "is what the API shows for a token it hides; give the server's real token"}

// ---- servers

func (c *Client) AddServer(ctx context.Context, s slum.Server) (slum.Server, error) {
	if s.Token == HiddenToken {
		return slum.Server{}, errHiddenToken
	}
	var out wire.Server
	err := c.do(ctx, http.MethodPost, path("servers"), nil, wire.AddServer{ID: s.ID, URL: s.URL, Region: s.Region,
		CapacityMB: s.CapacityMB, Domain: s.Domain, Token: s.Token}, &out)
	return fromWire(out), err
}

func (c *Client) ListServers(ctx context.Context) ([]slum.Server, error) {
	var out []wire.Server
	err := c.do(ctx, http.MethodGet, path("servers"), nil, nil, &out)
	return fromWireList(out), err
}

func (c *Client) ServersInRegion(ctx context.Context, region string) ([]slum.Server, error) {
	var out []wire.Server
	err := c.do(ctx, http.MethodGet, path("servers"), url.Values{"region": {region}}, nil, &out)
	return fromWireList(out), err
}

func (c *Client) GetServer(ctx context.Context, serverID string) (slum.Server, error) {
	var out wire.Server
	err := c.do(ctx, http.MethodGet, path("servers", id(serverID)), nil, nil, &out)
	return fromWire(out), err
}

func (c *Client) UpdateServer(ctx context.Context, serverID string, u slum.ServerUpdate) (slum.Server, error) {
	if u.Token != nil && *u.Token == HiddenToken {
		return slum.Server{}, errHiddenToken
	}
	var out wire.Server
	err := c.do(ctx, http.MethodPatch, path("servers", id(serverID)), nil, wire.ServerUpdate{URL: u.URL, Region: u.Region,
		CapacityMB: u.CapacityMB, Domain: u.Domain, Token: u.Token}, &out)
	return fromWire(out), err
}

func (c *Client) RemoveServer(ctx context.Context, serverID string, force bool) error {
	return c.do(ctx, http.MethodDelete, path("servers", id(serverID)), url.Values{"force": {strconv.FormatBool(force)}}, nil, nil)
}

func (c *Client) SetServerState(ctx context.Context, serverID string, state slum.ServerState) (slum.Server, error) {
	var out wire.Server
	err := c.do(ctx, http.MethodPut, path("servers", id(serverID), "state"), nil, wire.SetState{State: state}, &out)
	return fromWire(out), err
}

func (c *Client) Drain(ctx context.Context, serverID string) ([]slum.Move, error) {
	var out []slum.Move
	err := c.do(ctx, http.MethodPost, path("servers", id(serverID), "drain"), nil, nil, &out)
	return out, err
}

func (c *Client) ServerStats(ctx context.Context, serverID string) (slum.ServerStats, error) {
	var out slum.ServerStats
	err := c.do(ctx, http.MethodGet, path("servers", id(serverID), "stats"), nil, nil, &out)
	return out, err
}

func (c *Client) AllServerStats(ctx context.Context) ([]slum.ServerStats, error) {
	var out []slum.ServerStats
	err := c.do(ctx, http.MethodGet, path("stats", "servers"), nil, nil, &out)
	return out, err
}

func (c *Client) ServerStatus(ctx context.Context, serverID string) (slum.ServerStatus, error) {
	var out slum.ServerStatus
	err := c.do(ctx, http.MethodGet, path("servers", id(serverID), "status"), nil, nil, &out)
	return out, err
}

func (c *Client) ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error) {
	var out []slum.ServerStatus
	err := c.do(ctx, http.MethodGet, path("status", "servers"), nil, nil, &out)
	return out, err
}

func (c *Client) ListTenantsOnServer(ctx context.Context, serverID string) ([]slum.Tenant, error) {
	var out []slum.Tenant
	err := c.do(ctx, http.MethodGet, path("servers", id(serverID), "tenants"), nil, nil, &out)
	return out, err
}

func (c *Client) ListInstancesOnServer(ctx context.Context, serverID string) ([]slum.Instance, error) {
	var out []slum.Instance
	err := c.do(ctx, http.MethodGet, path("servers", id(serverID), "instances"), nil, nil, &out)
	return out, err
}

// ---- tenants

func (c *Client) AddTenant(ctx context.Context, t slum.Tenant, first ...slum.InstanceSpec) (slum.Tenant, []slum.Instance, error) {
	req := wire.AddTenant{ID: t.ID, Domain: t.Domain, Region: t.Region, Failover: t.Failover, Serving: t.Serving}
	for _, s := range first {
		req.Instances = append(req.Instances, wire.FromSpec(s))
	}
	var out wire.AddedTenant
	err := c.do(ctx, http.MethodPost, path("tenants"), nil, req, &out)
	return out.Tenant, out.Instances, err
}

func (c *Client) ListTenants(ctx context.Context) ([]slum.Tenant, error) {
	var out []slum.Tenant
	err := c.do(ctx, http.MethodGet, path("tenants"), nil, nil, &out)
	return out, err
}

func (c *Client) GetTenant(ctx context.Context, tenantID string) (slum.Tenant, error) {
	var out slum.Tenant
	err := c.do(ctx, http.MethodGet, path("tenants", id(tenantID)), nil, nil, &out)
	return out, err
}

func (c *Client) GetTenantByDomain(ctx context.Context, domain string) (slum.Tenant, error) {
	var out slum.Tenant
	err := c.do(ctx, http.MethodGet, path("domains", id(domain)), nil, nil, &out)
	return out, err
}

func (c *Client) UpdateTenant(ctx context.Context, tenantID string, u slum.TenantUpdate) (slum.Tenant, error) {
	var out slum.Tenant
	err := c.do(ctx, http.MethodPatch, path("tenants", id(tenantID)), nil, wire.TenantUpdate{Domain: u.Domain, Region: u.Region,
		Failover: u.Failover, Serving: u.Serving}, &out)
	return out, err
}

func (c *Client) RemoveTenant(ctx context.Context, tenantID string) error {
	return c.do(ctx, http.MethodDelete, path("tenants", id(tenantID)), nil, nil, nil)
}

func (c *Client) ListInstancesOfTenant(ctx context.Context, tenantID string) ([]slum.Instance, error) {
	var out []slum.Instance
	err := c.do(ctx, http.MethodGet, path("tenants", id(tenantID), "instances"), nil, nil, &out)
	return out, err
}

func (c *Client) TenantStatus(ctx context.Context, tenantID string) (slum.TenantStatus, error) {
	var out slum.TenantStatus
	err := c.do(ctx, http.MethodGet, path("tenants", id(tenantID), "status"), nil, nil, &out)
	return out, err
}

func (c *Client) ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error) {
	var out []slum.TenantStatus
	err := c.do(ctx, http.MethodGet, path("status", "tenants"), nil, nil, &out)
	return out, err
}

// ---- instances

func (c *Client) ListInstances(ctx context.Context) ([]slum.Instance, error) {
	var out []slum.Instance
	err := c.do(ctx, http.MethodGet, path("instances"), nil, nil, &out)
	return out, err
}

func (c *Client) SpawnInstance(ctx context.Context, spec slum.InstanceSpec) (slum.Instance, error) {
	var out slum.Instance
	err := c.do(ctx, http.MethodPost, path("instances"), nil, wire.FromSpec(spec), &out)
	return out, err
}

func (c *Client) GetInstance(ctx context.Context, key slum.InstanceKey) (slum.Instance, error) {
	var out slum.Instance
	err := c.do(ctx, http.MethodGet, path("instances", id(key)), nil, nil, &out)
	return out, err
}

func (c *Client) StopInstance(ctx context.Context, key slum.InstanceKey) (slum.Instance, error) {
	var out slum.Instance
	err := c.do(ctx, http.MethodPost, path("instances", id(key), "stop"), nil, nil, &out)
	return out, err
}

func (c *Client) RemoveInstance(ctx context.Context, key slum.InstanceKey) error {
	return c.do(ctx, http.MethodDelete, path("instances", id(key)), nil, nil, nil)
}

func (c *Client) MoveInstance(ctx context.Context, key slum.InstanceKey, toServer string) (slum.Move, error) {
	var out slum.Move
	err := c.do(ctx, http.MethodPost, path("instances", id(key), "move"), nil, wire.MoveTo{To: toServer}, &out)
	return out, err
}

func (c *Client) InstanceStatus(ctx context.Context, key slum.InstanceKey) (slum.InstanceStatus, error) {
	var out slum.InstanceStatus
	err := c.do(ctx, http.MethodGet, path("instances", id(key), "status"), nil, nil, &out)
	return out, err
}

func (c *Client) ListInstanceStatus(ctx context.Context) ([]slum.InstanceStatus, error) {
	var out []slum.InstanceStatus
	err := c.do(ctx, http.MethodGet, path("status", "instances"), nil, nil, &out)
	return out, err
}

// ---- fleet files, status, events, holds, settings

// Apply sends the fleet file src (its text, with the tokens it names
// read on this side) and applies it on the fleet's side, in one
// transaction there. A dry run is a diff, which a read token may ask for.
func (c *Client) Apply(ctx context.Context, src slum.FileSource, opt slum.ApplyOptions) (*slum.ChangeSet, error) {
	endpoint := "apply"
	if opt.DryRun {
		endpoint = "diff"
	}
	var plan slum.ChangeSet
	err := c.do(ctx, http.MethodPost, path(endpoint), nil, wire.Apply{File: src, Prune: opt.Prune, AllowMassPrune: opt.AllowMassPrune, DryRun: opt.DryRun}, &plan)
	var mp *massPrune
	if errors.As(err, &mp) {
		return mp.plan, mp.err
	}
	if err != nil {
		return nil, err
	}
	return &plan, nil
}

func (c *Client) Overview(ctx context.Context) (*slum.Overview, error) {
	var out slum.Overview
	if err := c.do(ctx, http.MethodGet, path("status"), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) Events(ctx context.Context, since, limit int64) ([]slum.Event, error) {
	var out []slum.Event
	err := c.do(ctx, http.MethodGet, path("events"), url.Values{"since": {strconv.FormatInt(since, 10)}, "limit": {strconv.FormatInt(limit, 10)}}, nil, &out)
	return out, err
}

func (c *Client) RecentEvents(ctx context.Context, n int64) ([]slum.Event, error) {
	var out []slum.Event
	err := c.do(ctx, http.MethodGet, path("events"), url.Values{"last": {strconv.FormatInt(n, 10)}}, nil, &out)
	return out, err
}

func (c *Client) RecentHolds(ctx context.Context, n int64) ([]slum.Hold, error) {
	var out []slum.Hold
	err := c.do(ctx, http.MethodGet, path("holds"), url.Values{"last": {strconv.FormatInt(n, 10)}}, nil, &out)
	return out, err
}

// ApproveHold approves the held plan id once. The API records by
// together with the token that approved it.
func (c *Client) ApproveHold(ctx context.Context, holdID int64, by string) (slum.Hold, error) {
	var out slum.Hold
	err := c.do(ctx, http.MethodPost, path("holds", holdID, "approve"), nil, wire.Approve{By: by}, &out)
	return out, err
}

func (c *Client) Settings(ctx context.Context) (slum.Settings, error) {
	var out slum.Settings
	err := c.do(ctx, http.MethodGet, path("settings"), nil, nil, &out)
	return out, err
}

func (c *Client) SetSettings(ctx context.Context, s slum.Settings) (slum.Settings, error) {
	var out slum.Settings
	err := c.do(ctx, http.MethodPut, path("settings"), nil, s, &out)
	return out, err
}

// ---- API tokens

func (c *Client) CreateAPIToken(ctx context.Context, role slum.APIRole, name string) (slum.APIToken, string, error) {
	var out wire.CreatedToken
	err := c.do(ctx, http.MethodPost, path("tokens"), nil, wire.CreateToken{Role: role, Name: name}, &out)
	return out.APIToken, out.Token, err
}

func (c *Client) ListAPITokens(ctx context.Context) ([]slum.APIToken, error) {
	var out []slum.APIToken
	err := c.do(ctx, http.MethodGet, path("tokens"), nil, nil, &out)
	return out, err
}

func (c *Client) RevokeAPIToken(ctx context.Context, tokenID int64) (slum.APIToken, error) {
	var out slum.APIToken
	err := c.do(ctx, http.MethodDelete, path("tokens", tokenID), nil, nil, &out)
	return out, err
}

// Whoami says which token the client uses and what it may do.
func (c *Client) Whoami(ctx context.Context) (wire.Whoami, error) {
	var out wire.Whoami
	err := c.do(ctx, http.MethodGet, path("whoami"), nil, nil, &out)
	return out, err
}

// Routes returns the route table now.
func (c *Client) Routes(ctx context.Context) (*routes.Table, error) {
	var out wire.Routes
	if err := c.do(ctx, http.MethodGet, path("routes"), nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Table(), nil
}
