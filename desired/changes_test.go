package desired

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

func keysOf[K ~string, V any](m map[K]*V) string {
	var ks []string
	for k, v := range m {
		s := string(k)
		if v == nil {
			s += "(gone)"
		}
		ks = append(ks, s)
	}
	slices.Sort(ks)
	return strings.Join(ks, " ")
}

func TestChangedSinceReadsOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustServer(t, s, "s1", "", 1000)
	mustServer(t, s, "s2", "", 1000)
	mustTenant(t, s, "alice", "")
	mustTenant(t, s, "bob", "")
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 100}); err != nil {
		t.Fatal(err)
	}
	seq, err := s.ChangeSeq(ctx)
	if err != nil || seq == 0 {
		t.Fatalf("change seq %d %v", seq, err)
	}
	if c, err := s.ChangedSince(ctx, seq, 100); err != nil || c.Len() != 0 || c.Seq != seq {
		t.Fatalf("nothing changed, yet: %+v %v", c, err)
	}

	// A move changes the instance and the capacity use of both servers;
	// a removed tenant shows as gone; bob, untouched, is not read.
	if _, err := s.MoveInstance(ctx, "alice:prod", "s2"); err != nil {
		t.Fatal(err)
	}
	region := "eu"
	if _, err := s.UpdateTenant(ctx, "alice", slum.TenantUpdate{Region: &region}); err != nil {
		t.Fatal(err)
	}
	mustTenant(t, s, "carol", "")
	if err := s.RemoveTenant(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	c, err := s.ChangedSince(ctx, seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(c.Instances); got != "alice:prod" || c.Instances["alice:prod"].ServerID != "s2" {
		t.Fatalf("instances changed: %s", got)
	}
	if got := keysOf(c.Tenants); got != "alice carol(gone)" || c.Tenants["alice"].Region != "eu" {
		t.Fatalf("tenants changed: %s", got)
	}
	if got := keysOf(c.Stats); got != "s1 s2" || c.Stats["s1"].UsedMB != 0 || c.Stats["s2"].UsedMB != 100 || c.Stats["s2"].Instances != 1 {
		t.Fatalf("stats: %s %+v %+v", got, c.Stats["s1"], c.Stats["s2"])
	}
	if len(c.Servers)+len(c.ServerStatus)+len(c.TenantStatus)+len(c.InstanceStatus) != 0 || c.Settings != nil {
		t.Fatalf("more than changed: %+v", c)
	}
	if c.Seq <= seq {
		t.Fatalf("the position did not move: %d", c.Seq)
	}

	// The controller's status is in the log too while a reader keeps it
	// logged; the settings always are.
	seq = c.Seq
	lease, err := s.AcquireLease(ctx, "controller", "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	report := slum.Report{
		Servers:   []slum.ServerStatus{{ServerID: "s2", Health: slum.HealthOnline, UpdatedAt: now}},
		Tenants:   []slum.TenantStatus{{TenantID: "alice", Serving: []slum.CopyRef{{Instance: "prod", Server: "s2"}}, UpdatedAt: now}},
		Instances: []slum.InstanceStatus{{TenantID: "alice", InstanceID: "prod", ServerID: "s2", Phase: slum.PhaseRunning, UpdatedAt: now}},
	}
	if err := s.WriteReport(ctx, lease.Fence(), report); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ChangedSince(ctx, seq, 100); err != nil || c.Len() != 0 {
		t.Fatalf("status logged with no reader: %+v %v", c, err)
	}
	until, lapsed, err := s.KeepChangeLog(ctx, time.Minute, 0)
	if err != nil || !lapsed || time.UnixMilli(until).Before(now.Add(50*time.Second)) {
		t.Fatalf("keep the log: until %v, lapsed %v, %v", time.UnixMilli(until), lapsed, err)
	}
	if again, lapsed, err := s.KeepChangeLog(ctx, time.Minute, until); err != nil || lapsed || again < until {
		t.Fatalf("kept again in time: until %v, lapsed %v, %v", again, lapsed, err)
	}
	if _, lapsed, err := s.KeepChangeLog(ctx, time.Minute, 1); err != nil || !lapsed {
		t.Fatalf("kept again too late: lapsed %v, %v", lapsed, err)
	}
	report.Servers[0].Health = slum.HealthSuspect
	report.Instances[0].Phase, report.Tenants[0].Serving = slum.PhasePending, nil
	if err := s.WriteReport(ctx, lease.Fence(), report); err != nil {
		t.Fatal(err)
	}
	report.Servers[0].Health = slum.HealthOnline
	report.Instances[0].Phase, report.Tenants[0].Serving = slum.PhaseRunning, []slum.CopyRef{{Instance: "prod", Server: "s2"}}
	if err := s.WriteReport(ctx, lease.Fence(), report); err != nil {
		t.Fatal(err)
	}
	set, err := s.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set.DeadAfter++
	if _, err := s.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveServer(ctx, "s1", false); err != nil {
		t.Fatal(err)
	}
	c, err = s.ChangedSince(ctx, seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	if keysOf(c.ServerStatus) != "s2" || keysOf(c.TenantStatus) != "alice" || keysOf(c.InstanceStatus) != "alice:prod" ||
		c.InstanceStatus["alice:prod"].Phase != slum.PhaseRunning || len(c.TenantStatus["alice"].Serving) != 1 {
		t.Fatalf("status changed: %s / %s / %s", keysOf(c.ServerStatus), keysOf(c.TenantStatus), keysOf(c.InstanceStatus))
	}
	if c.Settings == nil || c.Settings.DeadAfter != set.DeadAfter {
		t.Fatalf("settings: %+v", c.Settings)
	}
	if keysOf(c.Servers) != "s1(gone)" || keysOf(c.Stats) != "s1(gone)" {
		t.Fatalf("a removed server: %s / %s", keysOf(c.Servers), keysOf(c.Stats))
	}
}

func TestChangedSinceRefusesWhatItCannotTell(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	seq, _ := s.ChangeSeq(ctx)
	mustServer(t, s, "s1", "", 1000)
	mustServer(t, s, "s2", "", 1000)
	// More changes than the reader takes.
	if _, err := s.ChangedSince(ctx, seq, 1); !errors.Is(err, slum.ErrChangesGone) {
		t.Fatalf("two changes, at most one taken: %v", err)
	}
	// A position before the log's start (trimmed).
	if _, err := s.ChangedSince(ctx, seq-1, 100); !errors.Is(err, slum.ErrChangesGone) {
		t.Fatalf("a position the log no longer reaches: %v", err)
	}
	if c, err := s.ChangedSince(ctx, seq, 2); err != nil || keysOf(c.Servers) != "s1 s2" {
		t.Fatalf("%+v %v", c, err)
	}
}

// Every kind a trigger writes into the change log is one ChangedSince
// reads, and every kind it reads is written by some trigger. A kind it
// does not know is not skipped: the reader is told to read everything.
func TestChangedSinceReadsEveryKindTheTriggersWrite(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	raw, err := sql.Open("sqlite3", "file:"+s.Path()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		t.Fatal(err)
	}
	insert := regexp.MustCompile(`(?is)INSERT\s+INTO\s+change_log\s*\(([^)]*)\)\s*VALUES\s*\(\s*'([^']*)'`)
	written := map[slum.ChangeKind][]string{} // kind → triggers
	for rows.Next() {
		var name, text string
		if err := rows.Scan(&name, &text); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?i)INTO\s+change_log\b`).MatchString(text) {
			continue
		}
		ms := insert.FindAllStringSubmatch(text, -1)
		if len(ms) == 0 {
			t.Errorf("trigger %s writes the change log in a form this test cannot read: %s", name, text)
		}
		for _, m := range ms {
			if !strings.HasPrefix(strings.TrimSpace(m[1]), "kind") {
				t.Errorf("trigger %s: the kind is not the first column: %s", name, m[1])
			}
			written[slum.ChangeKind(m[2])] = append(written[slum.ChangeKind(m[2])], name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for kind, triggers := range written {
		seq, err := s.ChangeSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO change_log (kind, key) VALUES (?, 'a:b')`, string(kind)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ChangedSince(ctx, seq, 10); err != nil {
			t.Errorf("kind %q (written by %v): %v", kind, triggers, err)
		}
	}
	for _, k := range []slum.ChangeKind{slum.ChangeSettings, slum.ChangeServer, slum.ChangeTenant, slum.ChangeInstance, slum.ChangeServerStatus, slum.ChangeTenantStatus, slum.ChangeInstanceStatus} {
		if len(written[k]) == 0 {
			t.Errorf("no trigger writes kind %q", k)
		}
	}

	seq, _ := s.ChangeSeq(ctx)
	if _, err := raw.ExecContext(ctx, `INSERT INTO change_log (kind, key) VALUES ('hold', '1')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangedSince(ctx, seq, 10); !errors.Is(err, slum.ErrUnknownChange) || !errors.Is(err, slum.ErrChangesGone) {
		t.Fatalf("an unknown kind: %v", err)
	}
}
