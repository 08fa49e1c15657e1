package slum

import "context"

// Fleet is every operation on a fleet's desired state and what the
// controller reports of it, as the CLI, the API and the dashboard use
// them. The store (on either engine) implements it, and so does the API
// client, with the same errors: a command written against Fleet prints the
// same and exits the same wherever the fleet is.
type Fleet interface {
	AddServer(ctx context.Context, s Server) (Server, error)
	ListServers(ctx context.Context) ([]Server, error)
	ServersInRegion(ctx context.Context, region string) ([]Server, error)
	GetServer(ctx context.Context, id string) (Server, error)
	UpdateServer(ctx context.Context, id string, u ServerUpdate) (Server, error)
	SetServerState(ctx context.Context, id string, state ServerState) (Server, error)
	Drain(ctx context.Context, id string) ([]Move, error)
	RemoveServer(ctx context.Context, id string, force bool) error
	ServerStats(ctx context.Context, id string) (ServerStats, error)
	AllServerStats(ctx context.Context) ([]ServerStats, error)
	ServerStatus(ctx context.Context, id string) (ServerStatus, error)
	ListServerStatus(ctx context.Context) ([]ServerStatus, error)

	AddTenant(ctx context.Context, t Tenant, first ...InstanceSpec) (Tenant, []Instance, error)
	ListTenants(ctx context.Context) ([]Tenant, error)
	ListTenantsOnServer(ctx context.Context, serverID string) ([]Tenant, error)
	GetTenant(ctx context.Context, id string) (Tenant, error)
	GetTenantByDomain(ctx context.Context, domain string) (Tenant, error)
	UpdateTenant(ctx context.Context, id string, u TenantUpdate) (Tenant, error)
	RemoveTenant(ctx context.Context, id string) error
	TenantStatus(ctx context.Context, id string) (TenantStatus, error)
	ListTenantStatus(ctx context.Context) ([]TenantStatus, error)

	SpawnInstance(ctx context.Context, spec InstanceSpec) (Instance, error)
	StopInstance(ctx context.Context, key InstanceKey) (Instance, error)
	RemoveInstance(ctx context.Context, key InstanceKey) error
	MoveInstance(ctx context.Context, key InstanceKey, toServer string) (Move, error)
	GetInstance(ctx context.Context, key InstanceKey) (Instance, error)
	ListInstances(ctx context.Context) ([]Instance, error)
	ListInstancesOfTenant(ctx context.Context, tenant string) ([]Instance, error)
	ListInstancesOnServer(ctx context.Context, serverID string) ([]Instance, error)
	InstanceStatus(ctx context.Context, key InstanceKey) (InstanceStatus, error)
	ListInstanceStatus(ctx context.Context) ([]InstanceStatus, error)

	// Apply makes the desired state match a fleet file, in one
	// transaction; with opt.DryRun it only says what would change.
	Apply(ctx context.Context, src FileSource, opt ApplyOptions) (*ChangeSet, error)
	Overview(ctx context.Context) (*Overview, error)
	Events(ctx context.Context, since, limit int64) ([]Event, error)
	RecentEvents(ctx context.Context, n int64) ([]Event, error)
	RecentHolds(ctx context.Context, n int64) ([]Hold, error)
	ApproveHold(ctx context.Context, id int64, by string) (Hold, error)
	Settings(ctx context.Context) (Settings, error)
	SetSettings(ctx context.Context, s Settings) (Settings, error)

	CreateAPIToken(ctx context.Context, role APIRole, name string) (APIToken, string, error)
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	RevokeAPIToken(ctx context.Context, id int64) (APIToken, error)
}

// FileSource is a fleet file as a fleet receives it: its text, and the
// server tokens its token_env and token_file entries name, read where the
// file was read. The fleet parses and checks the text itself and never
// reads a file or variable the text names: those are the sender's.
type FileSource struct {
	Name   string            `json:"name"`
	Text   string            `json:"text"`
	Tokens map[string]string `json:"tokens,omitempty"` // by server id
	// Parsed is what the sender's parse of Text was, for a fleet in the
	// same process (a local 'slum apply'), which then need not parse a
	// large file again; the fleet checks it is Text's. It never crosses
	// the API, so a fleet over HTTP always parses the text itself.
	Parsed any `json:"-"`
}
