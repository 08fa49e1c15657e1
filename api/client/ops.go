package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/traffic"
)

// Each method below is the slum.Fleet operation of the same name, sent as
// its wire.Op declares.

// send makes one operation's request and decodes its answer.
func send[Req, Resp any](ctx context.Context, c *Client, op wire.Op[Req, Resp], req Req) (Resp, error) {
	var out Resp
	path, query := op.Target(req)
	var body any
	if op.Body != wire.NoBody {
		body = req
	}
	err := c.do(ctx, op.Method, path, query, body, &out)
	return out, err
}

func fromWire(s wire.Server, err error) (slum.Server, error) {
	out := s.Server
	if s.HasToken {
		out.Token = HiddenToken
	}
	return out, err
}

func fromWireList(ss []wire.Server, err error) ([]slum.Server, error) {
	if ss == nil {
		return nil, err
	}
	out := make([]slum.Server, len(ss))
	for i, s := range ss {
		out[i], _ = fromWire(s, nil)
	}
	return out, err
}

// errHiddenToken: a server read from the API was sent back with its
// hidden token.
var errHiddenToken = &slum.FieldError{Field: "token", Value: HiddenToken, Reason: "is what the API shows for a token it hides; give the server's real token"}

func drop[T any](_ T, err error) error { return err }

// ---- servers

func (c *Client) AddServer(ctx context.Context, s slum.Server) (slum.Server, error) {
	if s.Token == HiddenToken {
		return slum.Server{}, errHiddenToken
	}
	return fromWire(send(ctx, c, wire.AddServer, wire.AddServerReq{ID: s.ID, URL: s.URL, Region: s.Region, CapacityMB: s.CapacityMB, Domain: s.Domain, Token: s.Token}))
}

func (c *Client) ListServers(ctx context.Context) ([]slum.Server, error) {
	return fromWireList(send(ctx, c, wire.ListServers, wire.None{}))
}

func (c *Client) ServersInRegion(ctx context.Context, region string) ([]slum.Server, error) {
	return fromWireList(send(ctx, c, wire.ServersInRegion, wire.InRegion{Region: region}))
}

func (c *Client) GetServer(ctx context.Context, id string) (slum.Server, error) {
	return fromWire(send(ctx, c, wire.GetServer, wire.ByID{ID: id}))
}

func (c *Client) UpdateServer(ctx context.Context, id string, u slum.ServerUpdate) (slum.Server, error) {
	if u.Token != nil && *u.Token == HiddenToken {
		return slum.Server{}, errHiddenToken
	}
	return fromWire(send(ctx, c, wire.UpdateServer, wire.UpdateServerReq{ID: id,
		ServerUpdate: wire.ServerUpdate{URL: u.URL, Region: u.Region, CapacityMB: u.CapacityMB, Domain: u.Domain, Token: u.Token}}))
}

func (c *Client) RemoveServer(ctx context.Context, id string, force bool) error {
	return drop(send(ctx, c, wire.RemoveServer, wire.RemoveServerReq{ID: id, Force: force}))
}

func (c *Client) SetServerState(ctx context.Context, id string, state slum.ServerState) (slum.Server, error) {
	return fromWire(send(ctx, c, wire.SetServerState, wire.SetStateReq{ID: id, SetState: wire.SetState{State: state}}))
}

func (c *Client) Drain(ctx context.Context, id string) ([]slum.Move, error) {
	return send(ctx, c, wire.Drain, wire.ByID{ID: id})
}

func (c *Client) ServerStats(ctx context.Context, id string) (slum.ServerStats, error) {
	return send(ctx, c, wire.ServerStats, wire.ByID{ID: id})
}

func (c *Client) AllServerStats(ctx context.Context) ([]slum.ServerStats, error) {
	return send(ctx, c, wire.AllServerStats, wire.None{})
}

func (c *Client) ServerStatus(ctx context.Context, id string) (slum.ServerStatus, error) {
	return send(ctx, c, wire.ServerStatus, wire.ByID{ID: id})
}

func (c *Client) ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error) {
	return send(ctx, c, wire.ListServerStatus, wire.None{})
}

func (c *Client) ListTenantsOnServer(ctx context.Context, id string) ([]slum.Tenant, error) {
	return send(ctx, c, wire.ListTenantsOnServer, wire.ByID{ID: id})
}

func (c *Client) ListInstancesOnServer(ctx context.Context, id string) ([]slum.Instance, error) {
	return send(ctx, c, wire.ListInstancesOnServer, wire.ByID{ID: id})
}

// ---- tenants

func (c *Client) AddTenant(ctx context.Context, t slum.Tenant, first ...slum.InstanceSpec) (slum.Tenant, []slum.Instance, error) {
	req := wire.AddTenantReq{ID: t.ID, Domain: t.Domain, Region: t.Region, Failover: t.Failover, Serving: t.Serving,
		Data: t.Data, Replica: t.Replica}
	for _, s := range first {
		req.Instances = append(req.Instances, wire.FromSpec(s))
	}
	out, err := send(ctx, c, wire.AddTenant, req)
	return out.Tenant, out.Instances, err
}

func (c *Client) ListTenants(ctx context.Context) ([]slum.Tenant, error) {
	return send(ctx, c, wire.ListTenants, wire.None{})
}

func (c *Client) GetTenant(ctx context.Context, id string) (slum.Tenant, error) {
	return send(ctx, c, wire.GetTenant, wire.ByID{ID: id})
}

func (c *Client) GetTenantByDomain(ctx context.Context, domain string) (slum.Tenant, error) {
	return send(ctx, c, wire.GetTenantByDomain, wire.ByDomain{Domain: domain})
}

func (c *Client) UpdateTenant(ctx context.Context, id string, u slum.TenantUpdate) (slum.Tenant, error) {
	return send(ctx, c, wire.UpdateTenant, wire.UpdateTenantReq{ID: id,
		TenantUpdate: wire.TenantUpdate{Domain: u.Domain, Region: u.Region, Failover: u.Failover, Serving: u.Serving,
			Data: u.Data, Replica: u.Replica}})
}

func (c *Client) RemoveTenant(ctx context.Context, id string) error {
	return drop(send(ctx, c, wire.RemoveTenant, wire.ByID{ID: id}))
}

func (c *Client) ListInstancesOfTenant(ctx context.Context, id string) ([]slum.Instance, error) {
	return send(ctx, c, wire.ListInstancesOfTenant, wire.ByID{ID: id})
}

func (c *Client) TenantStatus(ctx context.Context, id string) (slum.TenantStatus, error) {
	return send(ctx, c, wire.TenantStatus, wire.ByID{ID: id})
}

func (c *Client) ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error) {
	return send(ctx, c, wire.ListTenantStatus, wire.None{})
}

// ---- instances

func (c *Client) ListInstances(ctx context.Context) ([]slum.Instance, error) {
	return send(ctx, c, wire.ListInstances, wire.None{})
}

func (c *Client) SpawnInstance(ctx context.Context, spec slum.InstanceSpec) (slum.Instance, error) {
	return send(ctx, c, wire.SpawnInstance, wire.FromSpec(spec))
}

func (c *Client) GetInstance(ctx context.Context, key slum.InstanceKey) (slum.Instance, error) {
	return send(ctx, c, wire.GetInstance, wire.ByKey{Key: key})
}

func (c *Client) StopInstance(ctx context.Context, key slum.InstanceKey) (slum.Instance, error) {
	return send(ctx, c, wire.StopInstance, wire.ByKey{Key: key})
}

func (c *Client) RemoveInstance(ctx context.Context, key slum.InstanceKey) error {
	return drop(send(ctx, c, wire.RemoveInstance, wire.ByKey{Key: key}))
}

func (c *Client) MoveInstance(ctx context.Context, key slum.InstanceKey, toServer string) (slum.Move, error) {
	return send(ctx, c, wire.MoveInstance, wire.MoveReq{Key: key, MoveTo: wire.MoveTo{To: toServer}})
}

func (c *Client) InstanceStatus(ctx context.Context, key slum.InstanceKey) (slum.InstanceStatus, error) {
	return send(ctx, c, wire.InstanceStatus, wire.ByKey{Key: key})
}

func (c *Client) ListInstanceStatus(ctx context.Context) ([]slum.InstanceStatus, error) {
	return send(ctx, c, wire.ListInstanceStatus, wire.None{})
}

// ---- fleet files, status, events, holds, settings

// Apply sends the fleet file src (its text, with the tokens it names
// read on this side) and applies it on the fleet's side, in one
// transaction there. A dry run is a diff, which a read token may ask for.
func (c *Client) Apply(ctx context.Context, src slum.FileSource, opt slum.ApplyOptions) (*slum.ChangeSet, error) {
	op := wire.Apply
	if opt.DryRun {
		op = wire.Diff
	}
	plan, err := send(ctx, c, op, wire.ApplyReq{File: src, Prune: opt.Prune, AllowMassPrune: opt.AllowMassPrune, DryRun: opt.DryRun})
	var mp *massPrune
	if errors.As(err, &mp) {
		return mp.plan, mp.err
	}
	if err != nil {
		return nil, err
	}
	return plan, nil
}

func (c *Client) Overview(ctx context.Context) (*slum.Overview, error) {
	return send(ctx, c, wire.Overview, wire.None{})
}

func (c *Client) Events(ctx context.Context, since, limit int64) ([]slum.Event, error) {
	return send(ctx, c, wire.Events, wire.EventsSince{Since: since, Limit: limit})
}

func (c *Client) RecentEvents(ctx context.Context, n int64) ([]slum.Event, error) {
	return send(ctx, c, wire.RecentEvents, wire.Last{N: n})
}

func (c *Client) RecentHolds(ctx context.Context, n int64) ([]slum.Hold, error) {
	return send(ctx, c, wire.RecentHolds, wire.Last{N: n})
}

// ApproveHold approves the held plan id once. The API records by
// together with the token that approved it.
func (c *Client) ApproveHold(ctx context.Context, id int64, by string) (slum.Hold, error) {
	return send(ctx, c, wire.ApproveHold, wire.ApproveReq{ID: id, Approve: wire.Approve{By: by}})
}

func (c *Client) Settings(ctx context.Context) (slum.Settings, error) {
	return send(ctx, c, wire.GetSettings, wire.None{})
}

func (c *Client) SetSettings(ctx context.Context, s slum.Settings) (slum.Settings, error) {
	return send(ctx, c, wire.SetSettings, s)
}

// ---- API tokens

func (c *Client) CreateAPIToken(ctx context.Context, role slum.APIRole, name string) (slum.APIToken, string, error) {
	// Checked here too: JSON would carry a name that is not UTF-8 as
	// another one.
	if err := desired.ValidateTokenName("name", name); err != nil {
		return slum.APIToken{}, "", err
	}
	out, err := send(ctx, c, wire.CreateAPIToken, wire.CreateToken{Role: role, Name: name})
	return out.APIToken, out.Token, err
}

func (c *Client) ListAPITokens(ctx context.Context) ([]slum.APIToken, error) {
	return send(ctx, c, wire.ListAPITokens, wire.None{})
}

func (c *Client) RevokeAPIToken(ctx context.Context, id int64) (slum.APIToken, error) {
	return send(ctx, c, wire.RevokeAPIToken, wire.TokenID{ID: id})
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

// ---- traffic

// RecordTraffic reports a router's counters to the fleet's traffic history.
func (c *Client) RecordTraffic(ctx context.Context, r traffic.Report) error {
	return drop(send(ctx, c, wire.RecordTraffic, r))
}

// Traffic reads the fleet's traffic history.
func (c *Client) Traffic(ctx context.Context, q traffic.Query) (*traffic.Window, error) {
	req := wire.TrafficReq{Last: int64(q.Last / time.Second), Tenant: q.Tenant, Server: q.Server}
	if !q.Since.IsZero() {
		req.Since = q.Since.UnixMilli()
	}
	return send(ctx, c, wire.Traffic, req)
}

var _ wire.TrafficFleet = (*Client)(nil)

// ---- rolling restarts, run by the API

var _ slum.Restarts = (*Client)(nil)

func (c *Client) Restart(ctx context.Context, spec slum.RestartSpec) (slum.Rollout, error) {
	return send(ctx, c, wire.StartRestart, spec)
}

func (c *Client) ResumeRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	id, err := c.rolloutID(ctx, id, true, "resume")
	if err != nil {
		return slum.Rollout{}, err
	}
	return send(ctx, c, wire.ResumeRollout, wire.RolloutID{ID: id})
}

func (c *Client) AbandonRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	id, err := c.rolloutID(ctx, id, true, "abandon")
	if err != nil {
		return slum.Rollout{}, err
	}
	return send(ctx, c, wire.AbandonRollout, wire.RolloutID{ID: id})
}

func (c *Client) GetRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	id, err := c.rolloutID(ctx, id, false, "rollout")
	if err != nil {
		return slum.Rollout{}, err
	}
	return send(ctx, c, wire.GetRollout, wire.RolloutID{ID: id})
}

func (c *Client) ListRollouts(ctx context.Context, n int64) ([]slum.Rollout, error) {
	return send(ctx, c, wire.ListRollouts, wire.Last{N: n})
}

// rolloutID is id, or for 0 the latest rollout's (unfinished: the
// unfinished one's), as rollout.Service reads 0.
func (c *Client) rolloutID(ctx context.Context, id int64, unfinished bool, what string) (int64, error) {
	if id != 0 {
		return id, nil
	}
	rs, err := c.ListRollouts(ctx, 1)
	if err != nil {
		return 0, err
	}
	switch {
	case len(rs) > 0 && (!unfinished || !rs[0].State.Finished()):
		return rs[0].ID, nil
	case unfinished:
		return 0, fmt.Errorf("%s: %w: no rollout is unfinished", what, slum.ErrNotFound)
	}
	return 0, fmt.Errorf("%s: %w: there has been none", what, slum.ErrNotFound)
}
