package store

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
)

// fleetRows is every row a copy carries: the desired state with the
// servers' tokens, the ledger and removals, the settings, the API tokens
// (their digests, ids kept), the holds, the events, the controller's
// status rows and both revisions. Leases and the change log stay behind:
// they belong to the database's own controllers and readers.
type fleetRows struct {
	Servers        []db.Server
	Tenants        []db.Tenant
	Instances      []db.Instance
	Placements     []db.Placement
	Removals       []db.Removal
	Settings       db.FleetSetting
	APITokens      []db.ApiToken
	Holds          []db.Hold
	Events         []db.Event
	InstanceStatus []db.InstanceStatus
	ServerStatus   []db.ServerStatus
	TenantStatus   []db.TenantStatus
	Revision       int64
	StatusRevision int64
}

// CopyResult says what a copy copied.
type CopyResult struct {
	// Rows counts the rows copied, by table.
	Rows map[string]int `json:"rows"`
	// Revision is the desired revision copied.
	Revision int64 `json:"revision"`
	// Replaced reports that the target held a fleet, which the copy
	// replaced.
	Replaced bool `json:"replaced"`
	// SourceChanged reports that the source was written while it was
	// copied (a controller still running on it): the copy is the fleet as
	// it was when the copy began.
	SourceChanged bool `json:"source_changed"`
}

// ErrTargetNotEmpty: the target of a copy holds a fleet, and the caller
// did not ask to replace it. It wraps slum.ErrConflict.
var ErrTargetNotEmpty = fmt.Errorf("%w: the target holds a fleet", slum.ErrConflict)

// CopyMismatch is a copy that differs from its source when both are read
// back: the first difference found.
type CopyMismatch struct {
	Table string // the table, as the schema names it
	Key   string // the row, by its key; "" for the table as a whole
	What  string // what differs (never a token's value)
}

func (e *CopyMismatch) Error() string {
	where := e.Table
	if e.Key != "" {
		where += " " + e.Key
	}
	return fmt.Sprintf("the copy differs from its source: %s: %s", where, e.What)
}

// Copy copies the fleet in from into to, in one transaction on to, and
// then reads both back and compares them, failing with a *CopyMismatch
// at the first difference. A target that holds a fleet is refused with
// ErrTargetNotEmpty unless replace is set: then its fleet is replaced.
// Nothing is written to from.
func Copy(ctx context.Context, from, to *Store, replace bool) (*CopyResult, error) {
	if from.eng.Name() == to.eng.Name() && from.eng.Where() == to.eng.Where() {
		return nil, fmt.Errorf("copy: %w: the source and the target are one database (%s)", slum.ErrInvalid, from.eng.Where())
	}
	src, err := readFleet(ctx, from.eng)
	if err != nil {
		return nil, fmt.Errorf("copy: read the source: %w", err)
	}
	res := &CopyResult{Revision: src.Revision, Rows: src.counts()}
	err = to.eng.InTx(ctx, func(q db.Querier) error {
		old, err := readRows(ctx, q)
		if err != nil {
			return fmt.Errorf("read the target: %w", err)
		}
		if !old.empty() {
			if !replace {
				return fmt.Errorf("%w (%s)", ErrTargetNotEmpty, old.summary())
			}
			res.Replaced = true
			if err := clearRows(ctx, q); err != nil {
				return fmt.Errorf("empty the target: %w", err)
			}
		}
		return writeRows(ctx, q, src)
	})
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	copied, err := readFleet(ctx, to.eng)
	if err != nil {
		return nil, fmt.Errorf("copy: read the copy back: %w", err)
	}
	if err := compareRows(src, copied); err != nil {
		return nil, err
	}
	now, err := readFleet(ctx, from.eng)
	if err != nil {
		return nil, fmt.Errorf("copy: read the source again: %w", err)
	}
	res.SourceChanged = compareRows(src, now) != nil
	return res, nil
}

func readFleet(ctx context.Context, eng Engine) (*fleetRows, error) {
	var r *fleetRows
	err := eng.InReadTx(ctx, func(q db.Querier) error {
		var err error
		r, err = readRows(ctx, q)
		return err
	})
	return r, err
}

// readRows reads every row a copy carries, with q.
func readRows(ctx context.Context, q db.Querier) (*fleetRows, error) {
	var r fleetRows
	var err error
	read := func(what string, fn func() error) {
		if err == nil {
			if err = fn(); err != nil {
				err = fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	read("servers", func() (e error) { r.Servers, e = q.ListServers(ctx); return })
	read("tenants", func() (e error) { r.Tenants, e = q.ListTenants(ctx); return })
	read("instances", func() (e error) { r.Instances, e = q.ListInstances(ctx); return })
	read("placements", func() (e error) { r.Placements, e = q.ListPlacements(ctx); return })
	read("removals", func() (e error) { r.Removals, e = q.ListRemovals(ctx); return })
	read("fleet_settings", func() (e error) { r.Settings, e = q.GetSettings(ctx); return })
	read("api_tokens", func() (e error) { r.APITokens, e = q.ListAPITokens(ctx); return })
	read("holds", func() (e error) { r.Holds, e = q.ListAllHolds(ctx); return })
	read("events", func() (e error) {
		r.Events, e = q.ListEvents(ctx, db.ListEventsParams{ID: 0, Limit: math.MaxInt64})
		return
	})
	read("instance_status", func() (e error) { r.InstanceStatus, e = q.ListInstanceStatus(ctx); return })
	read("server_status", func() (e error) { r.ServerStatus, e = q.ListServerStatus(ctx); return })
	read("tenant_status", func() (e error) { r.TenantStatus, e = q.ListTenantStatus(ctx); return })
	read("revision", func() (e error) { r.Revision, e = q.GetRevision(ctx); return })
	read("status_revision", func() (e error) { r.StatusRevision, e = q.GetStatusRevision(ctx); return })
	return &r, err
}

// table is one table of a copy: its name in the schema, its rows, and how
// its rows compare with another fleet's.
type table struct {
	name string
	rows int
	diff func(other *fleetRows) error
}

// tables are the tables of r a copy writes rows into.
func (r *fleetRows) tables() []table {
	return []table{
		tableOf("servers", r.Servers, func(o *fleetRows) []db.Server { return o.Servers }, func(x db.Server) string { return x.ID }),
		tableOf("tenants", r.Tenants, func(o *fleetRows) []db.Tenant { return o.Tenants }, func(x db.Tenant) string { return x.ID }),
		tableOf("instances", r.Instances, func(o *fleetRows) []db.Instance { return o.Instances },
			func(x db.Instance) string { return x.TenantID + ":" + x.ID }),
		tableOf("placements", r.Placements, func(o *fleetRows) []db.Placement { return o.Placements },
			func(x db.Placement) string { return x.ServerID + "/" + x.Name }),
		tableOf("removals", r.Removals, func(o *fleetRows) []db.Removal { return o.Removals },
			func(x db.Removal) string { return x.TenantID + ":" + x.InstanceID }),
		tableOf("api_tokens", r.APITokens, func(o *fleetRows) []db.ApiToken { return o.APITokens }, func(x db.ApiToken) string { return itoa(x.ID) }),
		tableOf("holds", r.Holds, func(o *fleetRows) []db.Hold { return o.Holds }, func(x db.Hold) string { return itoa(x.ID) }),
		tableOf("events", r.Events, func(o *fleetRows) []db.Event { return o.Events }, func(x db.Event) string { return itoa(x.ID) }),
		tableOf("instance_status", r.InstanceStatus, func(o *fleetRows) []db.InstanceStatus { return o.InstanceStatus },
			func(x db.InstanceStatus) string { return x.TenantID + ":" + x.InstanceID }),
		tableOf("server_status", r.ServerStatus, func(o *fleetRows) []db.ServerStatus { return o.ServerStatus },
			func(x db.ServerStatus) string { return x.ServerID }),
		tableOf("tenant_status", r.TenantStatus, func(o *fleetRows) []db.TenantStatus { return o.TenantStatus },
			func(x db.TenantStatus) string { return x.TenantID }),
	}
}

// tableOf is a table whose rows are rows, of which other's are of(other),
// each named by key; both lists are in the order of their keys.
func tableOf[T any](name string, rows []T, of func(*fleetRows) []T, key func(T) string) table {
	return table{name: name, rows: len(rows), diff: func(other *fleetRows) error {
		theirs := of(other)
		for i := range min(len(rows), len(theirs)) {
			a, b := key(rows[i]), key(theirs[i])
			switch {
			case a < b:
				return &CopyMismatch{Table: name, Key: a, What: "missing from the copy"}
			case a > b:
				return &CopyMismatch{Table: name, Key: b, What: "in the copy, not in the source"}
			}
			if what := fieldDiff(rows[i], theirs[i]); what != "" {
				return &CopyMismatch{Table: name, Key: a, What: what}
			}
		}
		switch {
		case len(rows) > len(theirs):
			return &CopyMismatch{Table: name, Key: key(rows[len(theirs)]), What: "missing from the copy"}
		case len(rows) < len(theirs):
			return &CopyMismatch{Table: name, Key: key(theirs[len(rows)]), What: "in the copy, not in the source"}
		}
		return nil
	}}
}

// fieldDiff names the first field in which two rows differ ("" for
// none), with both values, but a secret's.
func fieldDiff[T any](a, b T) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for f := range va.NumField() {
		name := va.Type().Field(f).Name
		if reflect.DeepEqual(va.Field(f).Interface(), vb.Field(f).Interface()) {
			continue
		}
		if name == "Token" || name == "Digest" {
			return name + " differs"
		}
		return fmt.Sprintf("%s: source %q, copy %q", name, fmt.Sprint(va.Field(f)), fmt.Sprint(vb.Field(f)))
	}
	return ""
}

func (r *fleetRows) counts() map[string]int {
	m := map[string]int{}
	for _, t := range r.tables() {
		m[t.name] = t.rows
	}
	return m
}

// empty reports a database with no fleet: no row in any table a copy
// writes (settings and revisions have theirs from the start).
func (r *fleetRows) empty() bool {
	for _, t := range r.tables() {
		if t.rows > 0 {
			return false
		}
	}
	return true
}

func (r *fleetRows) summary() string {
	var parts []string
	for _, t := range r.tables() {
		if t.rows > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", t.rows, t.name))
		}
	}
	return strings.Join(parts, ", ")
}

// clearRows empties every table a copy writes, the ledger and statuses
// before what they name.
func clearRows(ctx context.Context, q db.Querier) error {
	for _, clear := range []func(context.Context) error{
		q.ClearPlacements, q.ClearRemovals, q.ClearInstanceStatus, q.ClearServerStatus, q.ClearTenantStatus,
		q.ClearInstances, q.ClearTenants, q.ClearServers, q.ClearAPITokens, q.ClearHolds, q.ClearEvents,
	} {
		if err := clear(ctx); err != nil {
			return err
		}
	}
	return nil
}

// writeRows writes r into an empty fleet: what is named before what names
// it, rows with ids in the order of their ids, the revisions last.
func writeRows(ctx context.Context, q db.Querier, r *fleetRows) error {
	var err error
	write := func(table string, n int, fn func(i int) error) {
		for i := 0; i < n && err == nil; i++ {
			if err = fn(i); err != nil {
				err = fmt.Errorf("write %s: %w", table, err)
			}
		}
	}
	write("servers", len(r.Servers), func(i int) error { return q.InsertServer(ctx, db.InsertServerParams(r.Servers[i])) })
	write("tenants", len(r.Tenants), func(i int) error { return q.InsertTenant(ctx, tenantRow(r.Tenants[i])) })
	write("instances", len(r.Instances), func(i int) error { return q.RestoreInstance(ctx, instanceRow(r.Instances[i])) })
	write("placements", len(r.Placements), func(i int) error {
		return q.InsertPlacement(ctx, db.InsertPlacementParams(r.Placements[i]))
	})
	write("removals", len(r.Removals), func(i int) error { return q.InsertRemoval(ctx, db.InsertRemovalParams(r.Removals[i])) })
	write("fleet_settings", 1, func(int) error { return q.UpdateSettings(ctx, settingsRow(r.Settings)) })
	write("api_tokens", len(r.APITokens), func(i int) error {
		return q.RestoreAPIToken(ctx, db.RestoreAPITokenParams(r.APITokens[i]))
	})
	write("holds", len(r.Holds), func(i int) error { return q.RestoreHold(ctx, db.RestoreHoldParams(r.Holds[i])) })
	write("events", len(r.Events), func(i int) error { return q.RestoreEvent(ctx, db.RestoreEventParams(r.Events[i])) })
	write("instance_status", len(r.InstanceStatus), func(i int) error {
		return q.UpsertInstanceStatus(ctx, db.UpsertInstanceStatusParams(r.InstanceStatus[i]))
	})
	write("server_status", len(r.ServerStatus), func(i int) error {
		return q.UpsertServerStatus(ctx, db.UpsertServerStatusParams(r.ServerStatus[i]))
	})
	write("tenant_status", len(r.TenantStatus), func(i int) error {
		return q.UpsertTenantStatus(ctx, db.UpsertTenantStatusParams(r.TenantStatus[i]))
	})
	write("revision", 1, func(int) error { return q.SetRevision(ctx, r.Revision) })
	write("status_revision", 1, func(int) error { return q.SetStatusRevision(ctx, r.StatusRevision) })
	return err
}

func tenantRow(t db.Tenant) db.InsertTenantParams {
	return db.InsertTenantParams{ID: t.ID, Domain: t.Domain, Region: t.Region, Failover: t.Failover, Serving: t.Serving,
		Data: t.Data, Replica: t.Replica, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func instanceRow(i db.Instance) db.RestoreInstanceParams {
	return db.RestoreInstanceParams{TenantID: i.TenantID, ID: i.ID, Process: i.Process, ServerID: i.ServerID,
		HomeServerID: i.HomeServerID, MemoryMb: i.MemoryMb, DesiredState: i.DesiredState, Mode: i.Mode, Rank: i.Rank,
		Generation: i.Generation, CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt}
}

func settingsRow(s db.FleetSetting) db.UpdateSettingsParams {
	return db.UpdateSettingsParams{ProbeIntervalMs: s.ProbeIntervalMs, ProbeTimeoutMs: s.ProbeTimeoutMs, DeadAfter: s.DeadAfter,
		PartitionFraction: s.PartitionFraction, FailoverRate: s.FailoverRate, StableAfterMs: s.StableAfterMs,
		Failback: s.Failback, FailbackAfterMs: s.FailbackAfterMs, Rebalance: s.Rebalance, RebalanceEveryMs: s.RebalanceEveryMs,
		UpdatedAt: s.UpdatedAt}
}

// compareRows returns the first difference between a fleet and its copy,
// as a *CopyMismatch, or nil.
func compareRows(src, dst *fleetRows) error {
	for _, t := range src.tables() {
		if err := t.diff(dst); err != nil {
			return err
		}
	}
	if what := fieldDiff(src.Settings, dst.Settings); what != "" {
		return &CopyMismatch{Table: "fleet_settings", What: what}
	}
	for _, r := range []struct {
		table    string
		src, dst int64
	}{{"revision", src.Revision, dst.Revision}, {"status_revision", src.StatusRevision, dst.StatusRevision}} {
		if r.src != r.dst {
			return &CopyMismatch{Table: r.table, What: fmt.Sprintf("source %d, copy %d", r.src, r.dst)}
		}
	}
	return nil
}
