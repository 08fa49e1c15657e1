package wire

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/traffic"
)

// The operations of slum.Fleet, each as the API carries it. Ops lists
// them all; the API serves exactly these, and the client's methods send
// them.

// ByID names a server or a tenant in the path.
type ByID struct {
	ID string `path:"id" json:"-"`
}

// ByKey names an instance in the path.
type ByKey struct {
	Key slum.InstanceKey `path:"key" json:"-"`
}

// TokenID names an API token in the path.
type TokenID struct {
	ID int64 `path:"id" field:"token id" json:"-"`
}

// None is a request with nothing in it.
type None struct{}

// ---- servers

var (
	ListServers = Op[None, []Server]{Method: "GET", Path: "/servers", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]Server, error) { return shown(f.ListServers(ctx)) }}
	ServersInRegion = Op[InRegion, []Server]{Method: "GET", Path: "/regions/{region}/servers", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r InRegion) ([]Server, error) {
			return shown(f.ServersInRegion(ctx, r.Region))
		}}
	AddServer = Op[AddServerReq, Server]{Method: "POST", Path: "/servers", Access: AccessAdmin, Body: SmallBody, Created: true,
		Call: func(ctx context.Context, f slum.Fleet, r AddServerReq) (Server, error) {
			return shownOne(f.AddServer(ctx, slum.Server{ID: r.ID, URL: r.URL, Region: r.Region, CapacityMB: r.CapacityMB, Domain: r.Domain, Token: r.Token}))
		}}
	GetServer = Op[ByID, Server]{Method: "GET", Path: "/servers/{id}", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) (Server, error) {
			return shownOne(f.GetServer(ctx, r.ID))
		}}
	UpdateServer = Op[UpdateServerReq, Server]{Method: "PATCH", Path: "/servers/{id}", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r UpdateServerReq) (Server, error) {
			return shownOne(f.UpdateServer(ctx, r.ID, slum.ServerUpdate{URL: r.URL, Region: r.Region, CapacityMB: r.CapacityMB, Domain: r.Domain, Token: r.Token}))
		}}
	RemoveServer = Op[RemoveServerReq, Removed]{Method: "DELETE", Path: "/servers/{id}", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r RemoveServerReq) (Removed, error) {
			return Removed{Removed: r.ID}, f.RemoveServer(ctx, r.ID, r.Force)
		}}
	SetServerState = Op[SetStateReq, Server]{Method: "PUT", Path: "/servers/{id}/state", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r SetStateReq) (Server, error) {
			return shownOne(f.SetServerState(ctx, r.ID, r.State))
		}}
	Drain = Op[ByID, []slum.Move]{Method: "POST", Path: "/servers/{id}/drain", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) ([]slum.Move, error) { return f.Drain(ctx, r.ID) }}
	ServerStats = Op[ByID, slum.ServerStats]{Method: "GET", Path: "/servers/{id}/stats", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) (slum.ServerStats, error) {
			return f.ServerStats(ctx, r.ID)
		}}
	AllServerStats = Op[None, []slum.ServerStats]{Method: "GET", Path: "/stats/servers", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]slum.ServerStats, error) {
			return f.AllServerStats(ctx)
		}}
	ServerStatus = Op[ByID, slum.ServerStatus]{Method: "GET", Path: "/servers/{id}/status", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) (slum.ServerStatus, error) {
			return f.ServerStatus(ctx, r.ID)
		}}
	ListServerStatus = Op[None, []slum.ServerStatus]{Method: "GET", Path: "/status/servers", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]slum.ServerStatus, error) {
			return f.ListServerStatus(ctx)
		}}
	ListTenantsOnServer = Op[ByID, []slum.Tenant]{Method: "GET", Path: "/servers/{id}/tenants", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) ([]slum.Tenant, error) {
			return f.ListTenantsOnServer(ctx, r.ID)
		}}
	ListInstancesOnServer = Op[ByID, []slum.Instance]{Method: "GET", Path: "/servers/{id}/instances", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) ([]slum.Instance, error) {
			return f.ListInstancesOnServer(ctx, r.ID)
		}}
)

// InRegion names a region in the path.
type InRegion struct {
	Region string `path:"region" json:"-"`
}

// UpdateServerReq is a server and what to change of it.
type UpdateServerReq struct {
	ID string `path:"id" json:"-"`
	ServerUpdate
}

// RemoveServerReq is a server to remove.
type RemoveServerReq struct {
	ID    string `path:"id" json:"-"`
	Force bool   `query:"force" json:"-"`
}

// SetStateReq is a server and its new state.
type SetStateReq struct {
	ID string `path:"id" json:"-"`
	SetState
}

// shown is how the API shows servers: never with their tokens.
func shown(ss []slum.Server, err error) ([]Server, error) {
	if ss == nil {
		return nil, err
	}
	out := make([]Server, len(ss))
	for i, s := range ss {
		out[i] = NewServer(s)
	}
	return out, err
}

func shownOne(s slum.Server, err error) (Server, error) { return NewServer(s), err }

// ---- tenants

var (
	ListTenants = Op[None, []slum.Tenant]{Method: "GET", Path: "/tenants", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]slum.Tenant, error) { return f.ListTenants(ctx) }}
	AddTenant = Op[AddTenantReq, AddedTenant]{Method: "POST", Path: "/tenants", Access: AccessAdmin, Body: SmallBody, Created: true,
		Call: func(ctx context.Context, f slum.Fleet, r AddTenantReq) (AddedTenant, error) {
			first := make([]slum.InstanceSpec, len(r.Instances))
			for i, in := range r.Instances {
				first[i] = in.Spec()
			}
			t, ins, err := f.AddTenant(ctx, slum.Tenant{ID: r.ID, Domain: r.Domain, Region: r.Region, Failover: r.Failover, Serving: r.Serving,
				Data: r.Data, Replica: r.Replica}, first...)
			return AddedTenant{Tenant: t, Instances: ins}, err
		}}
	GetTenant = Op[ByID, slum.Tenant]{Method: "GET", Path: "/tenants/{id}", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) (slum.Tenant, error) { return f.GetTenant(ctx, r.ID) }}
	GetTenantByDomain = Op[ByDomain, slum.Tenant]{Method: "GET", Path: "/domains/{domain}", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByDomain) (slum.Tenant, error) {
			return f.GetTenantByDomain(ctx, r.Domain)
		}}
	UpdateTenant = Op[UpdateTenantReq, slum.Tenant]{Method: "PATCH", Path: "/tenants/{id}", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r UpdateTenantReq) (slum.Tenant, error) {
			return f.UpdateTenant(ctx, r.ID, slum.TenantUpdate{Domain: r.Domain, Region: r.Region, Failover: r.Failover, Serving: r.Serving,
				Data: r.Data, Replica: r.Replica})
		}}
	RemoveTenant = Op[ByID, Removed]{Method: "DELETE", Path: "/tenants/{id}", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) (Removed, error) {
			return Removed{Removed: r.ID}, f.RemoveTenant(ctx, r.ID)
		}}
	ListInstancesOfTenant = Op[ByID, []slum.Instance]{Method: "GET", Path: "/tenants/{id}/instances", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) ([]slum.Instance, error) {
			return f.ListInstancesOfTenant(ctx, r.ID)
		}}
	TenantStatus = Op[ByID, slum.TenantStatus]{Method: "GET", Path: "/tenants/{id}/status", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByID) (slum.TenantStatus, error) {
			return f.TenantStatus(ctx, r.ID)
		}}
	ListTenantStatus = Op[None, []slum.TenantStatus]{Method: "GET", Path: "/status/tenants", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]slum.TenantStatus, error) {
			return f.ListTenantStatus(ctx)
		}}
)

// ByDomain names a tenant's domain in the path.
type ByDomain struct {
	Domain string `path:"domain" json:"-"`
}

// UpdateTenantReq is a tenant and what to change of it.
type UpdateTenantReq struct {
	ID string `path:"id" json:"-"`
	TenantUpdate
}

// ---- instances

var (
	ListInstances = Op[None, []slum.Instance]{Method: "GET", Path: "/instances", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]slum.Instance, error) { return f.ListInstances(ctx) }}
	SpawnInstance = Op[InstanceSpec, slum.Instance]{Method: "POST", Path: "/instances", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r InstanceSpec) (slum.Instance, error) {
			return f.SpawnInstance(ctx, r.Spec())
		}}
	GetInstance = Op[ByKey, slum.Instance]{Method: "GET", Path: "/instances/{key}", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByKey) (slum.Instance, error) {
			return f.GetInstance(ctx, r.Key)
		}}
	RemoveInstance = Op[ByKey, Removed]{Method: "DELETE", Path: "/instances/{key}", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r ByKey) (Removed, error) {
			return Removed{Removed: string(r.Key)}, f.RemoveInstance(ctx, r.Key)
		}}
	StopInstance = Op[ByKey, slum.Instance]{Method: "POST", Path: "/instances/{key}/stop", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r ByKey) (slum.Instance, error) {
			return f.StopInstance(ctx, r.Key)
		}}
	MoveInstance = Op[MoveReq, slum.Move]{Method: "POST", Path: "/instances/{key}/move", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r MoveReq) (slum.Move, error) {
			return f.MoveInstance(ctx, r.Key, r.To)
		}}
	InstanceStatus = Op[ByKey, slum.InstanceStatus]{Method: "GET", Path: "/instances/{key}/status", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r ByKey) (slum.InstanceStatus, error) {
			return f.InstanceStatus(ctx, r.Key)
		}}
	ListInstanceStatus = Op[None, []slum.InstanceStatus]{Method: "GET", Path: "/status/instances", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]slum.InstanceStatus, error) {
			return f.ListInstanceStatus(ctx)
		}}
)

// MoveReq is an instance and where to move it ("" lets slum choose).
type MoveReq struct {
	Key slum.InstanceKey `path:"key" json:"-"`
	MoveTo
}

// ---- fleet files, status, events, holds, settings

var (
	// Apply applies a fleet file; a refused mass prune answers with the
	// change set it refused.
	Apply = Op[ApplyReq, *slum.ChangeSet]{Method: "POST", Path: "/apply", Access: AccessAdmin, Body: FileBody,
		Call: func(ctx context.Context, f slum.Fleet, r ApplyReq) (*slum.ChangeSet, error) {
			return f.Apply(ctx, r.File, slum.ApplyOptions{Prune: r.Prune, AllowMassPrune: r.AllowMassPrune, DryRun: r.DryRun})
		}}
	// Diff is a dry run of an apply, which a read token may ask for.
	Diff = Op[ApplyReq, *slum.ChangeSet]{Method: "POST", Path: "/diff", Access: AccessRead, Body: FileBody,
		Call: func(ctx context.Context, f slum.Fleet, r ApplyReq) (*slum.ChangeSet, error) {
			return f.Apply(ctx, r.File, slum.ApplyOptions{Prune: r.Prune, AllowMassPrune: r.AllowMassPrune, DryRun: true})
		}}
	Overview = Op[None, *slum.Overview]{Method: "GET", Path: "/status", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) (*slum.Overview, error) { return f.Overview(ctx) }}
	Events = Op[EventsSince, []slum.Event]{Method: "GET", Path: "/events", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r EventsSince) ([]slum.Event, error) {
			if r.Limit == 0 {
				r.Limit = 1000
			}
			return f.Events(ctx, r.Since, min(r.Limit, MaxList))
		}}
	RecentEvents = Op[Last, []slum.Event]{Method: "GET", Path: "/events/recent", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r Last) ([]slum.Event, error) {
			return f.RecentEvents(ctx, min(r.orDefault(50), MaxList))
		}}
	RecentHolds = Op[Last, []slum.Hold]{Method: "GET", Path: "/holds", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r Last) ([]slum.Hold, error) {
			return f.RecentHolds(ctx, min(r.orDefault(100), MaxList))
		}}
	ApproveHold = Op[ApproveReq, slum.Hold]{Method: "POST", Path: "/holds/{id}/approve", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r ApproveReq) (slum.Hold, error) {
			if len(r.By) > maxApprover || strings.ContainsFunc(r.By, func(c rune) bool { return !unicode.IsPrint(c) }) {
				return slum.Hold{}, &slum.FieldError{Field: "by", Value: r.By, Reason: fmt.Sprintf("must be printable text of at most %d bytes", maxApprover)}
			}
			// The record says which token approved, whatever the client says.
			by := r.By
			if who := callerOf(ctx); who != "" && by != "" {
				by += " via " + who
			} else if who != "" {
				by = who
			}
			return f.ApproveHold(ctx, r.ID, by)
		}}
	GetSettings = Op[None, slum.Settings]{Method: "GET", Path: "/settings", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) (slum.Settings, error) { return f.Settings(ctx) }}
	SetSettings = Op[slum.Settings, slum.Settings]{Method: "PUT", Path: "/settings", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r slum.Settings) (slum.Settings, error) {
			return f.SetSettings(ctx, r)
		}}
)

// MaxList bounds the events and holds one request returns.
const MaxList = 10000

// maxApprover bounds who an approval says approved.
const maxApprover = 128

// EventsSince asks for the events after an id, oldest first.
type EventsSince struct {
	Since int64 `query:"since" json:"-"`
	Limit int64 `query:"limit" json:"-"` // 0: 1,000
}

// Last asks for the latest N of something, newest first.
type Last struct {
	N int64 `query:"last" json:"-"` // 0: the operation's default
}

func (l Last) orDefault(def int64) int64 {
	if l.N == 0 {
		return def
	}
	return l.N
}

// ApproveReq is a held plan to let go ahead once, and who approves.
type ApproveReq struct {
	ID int64 `path:"id" field:"hold id" json:"-"`
	Approve
}

// ---- rolling restarts: the API runs them, with the server tokens

var (
	// StartRestart plans a rolling restart and starts it in the API (a
	// dry run only plans it); GetRollout follows it.
	StartRestart = Op[slum.RestartSpec, slum.Rollout]{Method: "POST", Path: "/rollouts", Access: AccessAdmin, Body: SmallBody,
		Call: func(ctx context.Context, f slum.Fleet, r slum.RestartSpec) (slum.Rollout, error) {
			return withRestarts(f, func(rs slum.Restarts) (slum.Rollout, error) { return rs.Restart(ctx, r) })
		}}
	ResumeRollout = Op[RolloutID, slum.Rollout]{Method: "POST", Path: "/rollouts/{id}/resume", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r RolloutID) (slum.Rollout, error) {
			return withRestarts(f, func(rs slum.Restarts) (slum.Rollout, error) { return rs.ResumeRollout(ctx, r.ID) })
		}}
	AbandonRollout = Op[RolloutID, slum.Rollout]{Method: "POST", Path: "/rollouts/{id}/abandon", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r RolloutID) (slum.Rollout, error) {
			return withRestarts(f, func(rs slum.Restarts) (slum.Rollout, error) { return rs.AbandonRollout(ctx, r.ID) })
		}}
	GetRollout = Op[RolloutID, slum.Rollout]{Method: "GET", Path: "/rollouts/{id}", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r RolloutID) (slum.Rollout, error) {
			return withRestarts(f, func(rs slum.Restarts) (slum.Rollout, error) { return rs.GetRollout(ctx, r.ID) })
		}}
	ListRollouts = Op[Last, []slum.Rollout]{Method: "GET", Path: "/rollouts", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r Last) ([]slum.Rollout, error) {
			return withRestarts(f, func(rs slum.Restarts) ([]slum.Rollout, error) {
				return rs.ListRollouts(ctx, min(r.orDefault(20), MaxList))
			})
		}}
)

// RolloutID names a rollout in the path (0: the unfinished one to resume
// or abandon; the latest to get).
type RolloutID struct {
	ID int64 `path:"id" field:"rollout id" json:"-"`
}

// ErrNoRestarts: the fleet behind the API runs no rolling restarts.
var ErrNoRestarts = fmt.Errorf("%w: this API runs no rolling restarts", slum.ErrConflict)

// withRestarts calls fn with the fleet's rolling restarts, which only a
// fleet holding the server tokens has.
func withRestarts[T any](f slum.Fleet, fn func(slum.Restarts) (T, error)) (T, error) {
	rs, ok := f.(slum.Restarts)
	if !ok {
		var zero T
		return zero, ErrNoRestarts
	}
	return fn(rs)
}

// ---- tokens

var (
	ListAPITokens = Op[None, []slum.APIToken]{Method: "GET", Path: "/tokens", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, _ None) ([]slum.APIToken, error) { return f.ListAPITokens(ctx) }}
	CreateAPIToken = Op[CreateToken, CreatedToken]{Method: "POST", Path: "/tokens", Access: AccessAdmin, Body: SmallBody, Created: true,
		Call: func(ctx context.Context, f slum.Fleet, r CreateToken) (CreatedToken, error) {
			rec, secret, err := f.CreateAPIToken(ctx, r.Role, r.Name)
			return CreatedToken{APIToken: rec, Token: secret}, err
		}}
	RevokeAPIToken = Op[TokenID, slum.APIToken]{Method: "DELETE", Path: "/tokens/{id}", Access: AccessAdmin,
		Call: func(ctx context.Context, f slum.Fleet, r TokenID) (slum.APIToken, error) {
			return f.RevokeAPIToken(ctx, r.ID)
		}}
)

// Ops is every operation the API serves.
var Ops = []Route{
	ListServers, ServersInRegion, AddServer, GetServer, UpdateServer, RemoveServer, SetServerState, Drain,
	ServerStats, AllServerStats, ServerStatus, ListServerStatus, ListTenantsOnServer, ListInstancesOnServer,
	ListTenants, AddTenant, GetTenant, GetTenantByDomain, UpdateTenant, RemoveTenant, ListInstancesOfTenant,
	TenantStatus, ListTenantStatus,
	ListInstances, SpawnInstance, GetInstance, RemoveInstance, StopInstance, MoveInstance, InstanceStatus, ListInstanceStatus,
	Apply, Diff, Overview, Events, RecentEvents, RecentHolds, ApproveHold, GetSettings, SetSettings,
	ListAPITokens, CreateAPIToken, RevokeAPIToken,
	StartRestart, ResumeRollout, AbandonRollout, GetRollout, ListRollouts,
	RecordTraffic, Traffic,
}

// ---- traffic

// TrafficFleet is a Fleet that also keeps the routers' traffic: the
// API's (package traffic holds it), and the client's, which sends there.
type TrafficFleet interface {
	slum.Fleet
	RecordTraffic(ctx context.Context, r traffic.Report) error
	Traffic(ctx context.Context, q traffic.Query) (*traffic.Window, error)
}

// errNoTraffic: the Fleet behind the API keeps no traffic.
var errNoTraffic = fmt.Errorf("%w: this fleet keeps no traffic history", slum.ErrNotFound)

var (
	// RecordTraffic is a router's report of its counters. The API names
	// the source after the token that sent it, so one router cannot
	// stand in for another.
	RecordTraffic = Op[traffic.Report, None]{Method: "POST", Path: "/traffic", Access: AccessRouter, Body: ReportBody,
		Call: func(ctx context.Context, f slum.Fleet, r traffic.Report) (None, error) {
			tf, ok := f.(TrafficFleet)
			if !ok {
				return None{}, errNoTraffic
			}
			if who := callerOf(ctx); who != "" {
				r.Source = who + "/" + r.Source
			}
			return None{}, tf.RecordTraffic(ctx, r)
		}}
	// Traffic is the traffic history: every tenant's and server's, or one's.
	Traffic = Op[TrafficReq, *traffic.Window]{Method: "GET", Path: "/metrics", Access: AccessRead,
		Call: func(ctx context.Context, f slum.Fleet, r TrafficReq) (*traffic.Window, error) {
			tf, ok := f.(TrafficFleet)
			if !ok {
				return nil, errNoTraffic
			}
			q, err := r.Query()
			if err != nil {
				return nil, err
			}
			return tf.Traffic(ctx, q)
		}}
)

// TrafficReq asks for part of the traffic history.
type TrafficReq struct {
	Last   int64  `query:"last" field:"last (seconds)" json:"-"`   // 0: all of it
	Since  int64  `query:"since" field:"since (unix ms)" json:"-"` // only slots after (a window's end)
	Tenant string `query:"tenant" json:"-"`
	Server string `query:"server" json:"-"`
}

// Query is the history's question, once the ids are checked.
func (r TrafficReq) Query() (traffic.Query, error) {
	q := traffic.Query{Last: time.Duration(r.Last) * time.Second, Tenant: r.Tenant, Server: r.Server}
	if r.Since > 0 {
		q.Since = time.UnixMilli(r.Since)
	}
	for field, id := range map[string]string{"tenant": r.Tenant, "server": r.Server} {
		if id != "" {
			if err := desired.ValidateID(field, id); err != nil {
				return q, err
			}
		}
	}
	return q, nil
}
