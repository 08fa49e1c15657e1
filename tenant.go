package slum

import "time"

// TenantUpdate names the fields to change; nil leaves one as it is.
type TenantUpdate struct {
	Domain   *string
	Region   *string
	Failover *FailoverPolicy
	Serving  *ServingPolicy
	Data     *DataPolicy
	Replica  *string
}

// FailoverPolicy says what happens to a tenant's instances when their
// server dies.
type FailoverPolicy string

const (
	// FailoverMove places them on a healthy server and starts them there.
	// Their data does not come along: it lives on the dead server's disk.
	FailoverMove FailoverPolicy = "move"
	// FailoverNone leaves them where they are, down with their server: for
	// tenants whose data lives only on that disk.
	FailoverNone FailoverPolicy = "none"
)

// DataPolicy says where a tenant's data lives, and so what a failover
// must do about it.
type DataPolicy string

const (
	// DataLocal: the data lives on the server's disk only (or the app keeps
	// none). A failed-over copy starts empty.
	DataLocal DataPolicy = "local"
	// DataReplicated: each copy runs under 'slum guard', which replicates
	// its SQLite database to the tenant's replica and holds the replica's
	// single-writer lease. A new copy restores before it serves, and slum
	// revokes a dead copy's lease (or asks a live one to hand over) so
	// that only one copy ever writes the replica.
	DataReplicated DataPolicy = "replicated"
)

// ServingPolicy says which of a tenant's running copies take traffic.
type ServingPolicy string

const (
	// ServingOne: one copy serves at a time; the others are warm spares,
	// and one of them serves at once when the serving copy is lost.
	ServingOne ServingPolicy = "one"
	// ServingAll: every running copy serves (active-active).
	ServingAll ServingPolicy = "all"
)

// Tenant is one customer's app: a domain and its instances.
type Tenant struct {
	ID       string         `json:"id"`
	Domain   string         `json:"domain"`
	Region   string         `json:"region"`
	Failover FailoverPolicy `json:"failover"`
	Serving  ServingPolicy  `json:"serving"`
	Data     DataPolicy     `json:"data"`
	// Replica is the replica URL of a replicated tenant, as its guard is
	// given it (s3://BUCKET/PATH?endpoint=...): where slum reads and
	// revokes its lease. Never credentials.
	Replica   string    `json:"replica,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CopyRef names one copy of an instance: the instance and the server it
// runs on. It is usually the server the instance is placed on; while a
// move waits for its new copy, it is the old one.
type CopyRef struct {
	Instance string `json:"instance"` // instance id within its tenant
	Server   string `json:"server"`
}

func (c CopyRef) String() string { return c.Instance + "@" + c.Server }

// TenantStatus says which of a tenant's copies serve it now, as the
// controller decided. Status, the API and every router read it.
type TenantStatus struct {
	TenantID  string    `json:"tenant"`
	Serving   []CopyRef `json:"serving"` // preferred first
	Spares    []CopyRef `json:"spares"`  // running copies that do not serve
	Reason    string    `json:"reason"`  // why nothing serves, when nothing does
	ChangedAt time.Time `json:"changed_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
