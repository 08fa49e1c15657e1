package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/internal/pgtest"
	"github.com/slum-fleet/slum/store"
)

// raw connects to url behind the engine's back.
func raw(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// dump is every table of the database's public schema with its rows, to
// show a refused database was left as it was.
func dump(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	conn := raw(t, url)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		var text string
		err := conn.QueryRow(ctx, `SELECT COALESCE(string_agg(t::text, ';' ORDER BY t::text), '') FROM `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&text)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %s\n", table, text)
	}
	return b.String()
}

func execAll(t testing.TB, url string, stmts ...string) {
	t.Helper()
	conn := raw(t, url)
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestOpenRefusesWhatIsNotAFleet(t *testing.T) {
	ctx := context.Background()
	empty := pgtest.URL(t)
	if _, err := OpenExisting(ctx, empty); !errors.Is(err, slum.ErrNotFound) || !errors.Is(err, ErrNotExist) {
		t.Fatalf("OpenExisting of an empty database: %v", err)
	}
	if d := dump(t, empty); d != "" {
		t.Fatalf("OpenExisting created tables:\n%s", d)
	}
	cases := map[string]func(url string){
		"another program's tables": func(url string) {
			execAll(t, url, `CREATE TABLE users (id serial PRIMARY KEY, name text)`, `INSERT INTO users (name) VALUES ('ann')`)
		},
		"another tool's schema_migrations": func(url string) {
			execAll(t, url, `CREATE TABLE schema_migrations (version bigint NOT NULL, dirty boolean NOT NULL)`, `INSERT INTO schema_migrations VALUES (3, false)`)
		},
		"slum's tables and more": func(url string) {
			mustOpen(t, url).Close()
			execAll(t, url, `CREATE TABLE notes (x text)`)
		},
		"a newer slum's": func(url string) {
			mustOpen(t, url).Close()
			execAll(t, url, `INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 1)`)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			url := pgtest.URL(t)
			build(url)
			before := dump(t, url)
			for _, open := range []func(context.Context, string) (*store.Store, error){Open, OpenExisting} {
				s, err := open(ctx, url)
				if !errors.Is(err, slum.ErrInvalid) || !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "not a slum database") {
					if s != nil {
						s.Close()
					}
					t.Fatalf("opened: %v", err)
				}
				if name == "a newer slum's" && !strings.Contains(err.Error(), "a newer slum made it") {
					t.Fatalf("a newer schema: %v", err)
				}
			}
			if after := dump(t, url); after != before {
				t.Fatalf("the refused database changed:\n%s\nto\n%s", before, after)
			}
		})
	}
	s, err := Open(ctx, empty)
	if err != nil || !s.Created() {
		t.Fatalf("Open of an empty database: %v, created %v", err, s != nil && s.Created())
	}
	s.Close()
	s, err = OpenExisting(ctx, empty)
	if err != nil || s.Created() {
		t.Fatalf("OpenExisting of a fleet: %v", err)
	}
	s.Close()
}

func mustOpen(t testing.TB, url string) *Engine {
	t.Helper()
	e, err := OpenEngine(context.Background(), url, true)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	e := mustOpen(t, url)
	s := store.New(e)
	if _, err := s.AddServer(ctx, slum.Server{ID: "s1", URL: "http://s1.test:8080", CapacityMB: 100}); err != nil {
		t.Fatal(err)
	}
	v1, err := e.SchemaVersion(ctx)
	ms, _ := loadMigrations()
	if err != nil || v1 != ms[len(ms)-1].version {
		t.Fatalf("schema version %d, %v", v1, err)
	}
	s.Close()
	e = mustOpen(t, url)
	s = store.New(e)
	defer s.Close()
	if e.Created() {
		t.Fatal("a reopened database says it was created")
	}
	if v2, _ := e.SchemaVersion(ctx); v2 != v1 {
		t.Fatalf("schema version went from %d to %d on reopen", v1, v2)
	}
	if _, err := s.GetServer(ctx, "s1"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
}

// Processes that open a new database at once migrate it once between
// them: each migration is applied and recorded once, and one of them says
// it made the fleet.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	const n = 8
	var wg sync.WaitGroup
	engines := make([]*Engine, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			engines[i], errs[i] = OpenEngine(context.Background(), url, true)
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		if engines[i].Created() {
			created++
		}
		engines[i].Close()
	}
	if created != 1 {
		t.Fatalf("%d opens say they made the fleet, want 1", created)
	}
	ms, _ := loadMigrations()
	var rows, distinct int
	if err := raw(t, url).QueryRow(context.Background(), `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != len(ms) || distinct != len(ms) {
		t.Fatalf("%d migrations recorded (%d distinct), want %d", rows, distinct, len(ms))
	}
}

func TestMigrationsAreNumberedFromOne(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 || !strings.HasPrefix(m.name, fmt.Sprintf("%04d_", i+1)) {
			t.Fatalf("migration %d is %s", i+1, m.name)
		}
	}
}

// Every table the schema has is one checkSchema knows as slum's.
func TestEveryTableIsKnown(t *testing.T) {
	e, url := openEngine(t)
	ms, _ := loadMigrations()
	known := knownTables(ms)
	rows, err := raw(t, url).Query(context.Background(), `SELECT tablename FROM pg_tables WHERE schemaname = $1`, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range tables {
		if !known[name] {
			t.Errorf("table %s is not among the known tables %v", name, known)
		}
	}
	if len(tables) < 15 {
		t.Fatalf("only %d tables", len(tables))
	}
}

func TestUnreachableServerIsAClearErrorWithoutThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on the loopback: nothing listens there.
	_, err := OpenEngine(ctx, "postgres://ann:s3cret-pw@127.0.0.1:1/fleet?connect_timeout=2", true)
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "postgres://ann@127.0.0.1:1/fleet") {
		t.Fatalf("an unreachable server: %v", err)
	}
	_, err = OpenEngine(ctx, "postgres://ann:s3cret-pw@127.0.0.1:1/fleet?sslmode=bogus", true)
	if !errors.Is(err, slum.ErrInvalid) || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("a URL that does not parse: %v", err)
	}
}

func TestRedactLeavesThePasswordOut(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://ann:pw@db.example:5432/fleet":             "postgres://ann@db.example:5432/fleet",
		"postgresql://ann@db/fleet?sslmode=require":           "postgresql://ann@db/fleet?sslmode=require",
		"postgres://db/fleet?password=pw&user=ann":            "postgres://db/fleet?user=ann",
		"postgres://ann:p%40ss@/fleet?host=/run/postgresql":   "postgres://ann@/fleet?host=%2Frun%2Fpostgresql",
		"host=db user=ann password=pw dbname=fleet":           "host=db user=ann dbname=fleet",
		"postgres://ann:pw@db/fleet?PASSWORD=pw2&search_path": "postgres://ann@db/fleet?search_path=",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsURL(t *testing.T) {
	for s, want := range map[string]bool{"postgres://h/db": true, "postgresql://h/db": true, "slum.db": false,
		"/var/lib/slum/postgres://x": false, "Postgres://h/db": false, "": false} {
		if IsURL(s) != want {
			t.Errorf("IsURL(%q) = %v", s, !want)
		}
	}
}

func TestInTxRollsBack(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	err := e.InTx(ctx, func(q db.Querier) error {
		if err := q.BumpRevision(ctx); err != nil {
			return err
		}
		return errors.ErrUnsupported
	})
	if err != errors.ErrUnsupported {
		t.Fatalf("InTx returned %v", err)
	}
	if rev, _ := e.Read().GetRevision(ctx); rev != 0 {
		t.Fatalf("a failed transaction left revision %d", rev)
	}
}

// A read transaction writes nothing.
func TestInReadTxIsReadOnly(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	err := e.InReadTx(ctx, func(q db.Querier) error { return q.BumpRevision(ctx) })
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write in a read transaction: %v", err)
	}
}

// Statements queued in a write transaction run in order before anything
// read after them; one that fails fails the transaction, naming its query,
// and nothing of it is committed.
func TestQueuedStatements(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	err := e.InTx(ctx, func(q db.Querier) error {
		for i := range 3 {
			if err := q.UpsertTenantStatus(ctx, db.UpsertTenantStatusParams{TenantID: "t", Reason: fmt.Sprint(i), UpdatedAt: 1}); err != nil {
				return err
			}
		}
		r, err := q.GetTenantStatus(ctx, "t")
		if err != nil || r.Reason != "2" {
			return fmt.Errorf("read after queued writes: %+v %v", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rollback(ctx, tx)
	p := newPipe(tx)
	q := p.querier()
	if err := q.UpsertTenantStatus(ctx, db.UpsertTenantStatusParams{TenantID: "u", UpdatedAt: 1}); err != nil {
		t.Fatalf("a queued statement failed at once: %v", err)
	}
	p.queue("-- name: Broken :exec\nSELECT 1/0")
	if _, err := q.GetTenantStatus(ctx, "u"); err == nil || !strings.HasPrefix(err.Error(), "Broken: ") || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("a read after a failed queued statement: %v", err)
	}
}

// Text Postgres cannot store (a NUL, bytes that are not UTF-8: what a
// server might say in an error) does not stop the controller's report.
func TestReportWithTextPostgresRefuses(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	s := store.New(e)
	l, err := s.AcquireLease(ctx, "controller", "c", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bad := "tenement said \x00 and \xff"
	err = s.WriteReport(ctx, l.Fence(), slum.Report{
		Instances: []slum.InstanceStatus{{TenantID: "t", InstanceID: "i", LastError: bad, Message: bad, UpdatedAt: time.Now()}},
		Events:    []slum.Event{{At: time.Now(), Object: "fleet", Reason: slum.ReasonSpawned, Message: bad}},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.ListInstanceStatus(ctx)
	if err != nil || len(st) != 1 || st[0].LastError != "tenement said \uFFFD and \uFFFD" {
		t.Fatalf("status %+v %v", st, err)
	}
}

// The test server's clock is the engine's.
func TestNowIsTheDatabasesClock(t *testing.T) {
	ctx := context.Background()
	e, url := openEngine(t)
	var server time.Time
	if err := raw(t, url).QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	now, err := e.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := now.Sub(server.Truncate(time.Millisecond)); d < 0 || d > time.Second {
		t.Fatalf("engine's now %v, the server's clock read just before %v", now, server)
	}
}

// skewed is an engine whose clock is an hour ahead of the process's.
type skewed struct{ *Engine }

func (s skewed) Now(ctx context.Context) (time.Time, error) {
	now, err := s.Engine.Now(ctx)
	return now.Add(time.Hour), err
}

// A store leases by its engine's clock: a controller whose own clock is
// behind the database's takes no lease the database says has expired.
func TestLeasesGoByTheEnginesClock(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	s := store.New(skewed{e})
	l, err := s.AcquireLease(ctx, "controller", "a", "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ahead := time.Until(l.ExpiresAt); ahead < time.Hour || ahead > time.Hour+11*time.Second {
		t.Fatalf("the lease expires in %v, want an hour and 10 s (the engine's clock)", ahead)
	}
	// By the process's clock the lease has 70 minutes to go; by the
	// engine's it has expired a minute ago, and b may take it.
	if _, err := execSQL(e, `UPDATE leases SET expires_at = expires_at - 3660000`); err != nil {
		t.Fatal(err)
	}
	if l, err := s.AcquireLease(ctx, "controller", "b", "", 10*time.Second); err != nil || l.Holder != "b" {
		t.Fatalf("a lease expired by the engine's clock: %+v %v", l, err)
	}
	// A store with a clock of the caller's goes by that one.
	fixed := time.UnixMilli(1_000_000)
	c := store.NewWithClock(skewed{e}, func() time.Time { return fixed })
	if l, err := c.AcquireLease(ctx, "other", "a", "", 10*time.Second); err != nil || !l.ExpiresAt.Equal(fixed.Add(10*time.Second)) {
		t.Fatalf("a store with its own clock: %+v %v", l, err)
	}
}

func execSQL(e *Engine, sql string, args ...any) (int64, error) {
	tag, err := e.pool.Exec(context.Background(), sql, args...)
	return tag.RowsAffected(), err
}

// Every kind a trigger writes into the change log is one ChangedSince
// reads, and every kind it reads is written by some trigger.
func TestChangedSinceReadsEveryKindTheTriggersWrite(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	rows, err := e.pool.Query(ctx, `SELECT t.tgname, p.prosrc FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal`)
	if err != nil {
		t.Fatal(err)
	}
	triggers := map[string]string{}
	var name, text string
	if _, err := pgx.ForEachRow(rows, []any{&name, &text}, func() error { triggers[name] = text; return nil }); err != nil {
		t.Fatal(err)
	}
	fleettest.ChangeKindsAreRead(t, store.New(e), triggers, func(kind slum.ChangeKind) {
		if _, err := execSQL(e, `INSERT INTO change_log (kind, key) VALUES ($1, 'a:b')`, string(kind)); err != nil {
			t.Fatal(err)
		}
	})
}

// The change log keeps at least its latest 20,000 entries (at most 1,000
// more), without gaps, and gives no position twice or out of order, even
// to writes that roll back.
func TestChangeLogKeepsItsLatestEntries(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	if _, err := execSQL(e, `INSERT INTO change_log (kind, key) SELECT 'tenant', 't' || i FROM generate_series(1, 22500) i`); err != nil {
		t.Fatal(err)
	}
	var lo, hi, count int64
	if err := e.pool.QueryRow(ctx, `SELECT MIN(seq), MAX(seq), COUNT(*) FROM change_log`).Scan(&lo, &hi, &count); err != nil {
		t.Fatal(err)
	}
	if hi != 22500 || count < 20000 || count > 21000 || lo != hi-count+1 || lo == 1 {
		t.Fatalf("change log from %d to %d, %d entries", lo, hi, count)
	}
	if seq, err := e.Read().LatestChangeSeq(ctx); err != nil || seq != hi {
		t.Fatalf("latest %d %v", seq, err)
	}
	s := store.New(e)
	_ = e.InTx(ctx, func(q db.Querier) error {
		if err := q.InsertTenant(ctx, db.InsertTenantParams{ID: "gone", Domain: "gone.example.com", Failover: "move", Serving: "one"}); err != nil {
			return err
		}
		return errors.ErrUnsupported
	})
	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "kept", Domain: "kept.example.com"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.ChangedSince(ctx, hi, 10)
	if err != nil || c.Seq != hi+1 || len(c.Tenants) != 1 || c.Tenants["kept"] == nil {
		t.Fatalf("after a rolled-back write: %+v %v", c, err)
	}
}

// Writers are serialised as on SQLite: spawns racing for a server's last
// room, from two processes' stores, place only what fits.
func TestWritersAreSerialised(t *testing.T) {
	ctx := context.Background()
	e, url := openEngine(t)
	other := mustOpen(t, url)
	defer other.Close()
	stores := []*store.Store{store.New(e), store.New(other)}
	if _, err := stores[0].AddServer(ctx, slum.Server{ID: "s1", URL: "http://s1.test:8080", CapacityMB: 300}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	for i := range n {
		if _, _, err := stores[0].AddTenant(ctx, slum.Tenant{ID: fmt.Sprintf("t%d", i), Domain: fmt.Sprintf("t%d.example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = stores[i%2].SpawnInstance(ctx, slum.InstanceSpec{TenantID: fmt.Sprintf("t%d", i), ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 100})
		}()
	}
	wg.Wait()
	placed := 0
	for _, err := range errs {
		if err == nil {
			placed++
		}
	}
	st, err := stores[0].ServerStats(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if placed != 3 || st.UsedMB != 300 {
		t.Fatalf("%d spawns placed, %d MB used of 300: %v", placed, st.UsedMB, errs)
	}
}

// Calls queued in a run and sent as one statement do what the calls one
// by one would: the last of a row given twice wins, calls of other
// statements in between keep their place, events keep their order, and a
// ledger entry for a server that is gone is skipped.
func TestBulkRunsDoWhatTheCallsWould(t *testing.T) {
	ctx := context.Background()
	e, _ := openEngine(t)
	s := store.New(e)
	if _, err := s.AddServer(ctx, slum.Server{ID: "s1", URL: "http://s1.test:8080", CapacityMB: 100}); err != nil {
		t.Fatal(err)
	}
	st := func(id, phase string) db.UpsertInstanceStatusParams {
		return db.UpsertInstanceStatusParams{TenantID: "t", InstanceID: id, Phase: phase, UpdatedAt: 1}
	}
	err := e.InTx(ctx, func(q db.Querier) error {
		for _, call := range []func() error{
			func() error { return q.UpsertInstanceStatus(ctx, st("a", "pending")) },
			func() error { return q.UpsertInstanceStatus(ctx, st("b", "pending")) },
			func() error { return q.UpsertInstanceStatus(ctx, st("a", "running")) },
			func() error {
				return q.DeleteInstanceStatus(ctx, db.DeleteInstanceStatusParams{TenantID: "t", InstanceID: "b"})
			},
			func() error { return q.UpsertInstanceStatus(ctx, st("c", "failed")) },
			func() error { return q.UpsertInstanceStatus(ctx, st("b", "stopped")) },
			func() error {
				return q.InsertEvent(ctx, db.InsertEventParams{At: 1, Object: "fleet", Reason: "x", Message: "first"})
			},
			func() error {
				return q.InsertEvent(ctx, db.InsertEventParams{At: 1, Object: "fleet", Reason: "x", Message: "second"})
			},
			func() error {
				return q.InsertEvent(ctx, db.InsertEventParams{At: 1, Object: "fleet", Reason: "x", Message: "third"})
			},
			func() error {
				return q.InsertPlacement(ctx, db.InsertPlacementParams{ServerID: "s1", Name: "api:t--a", TenantID: "t", InstanceID: "a"})
			},
			func() error {
				return q.InsertPlacement(ctx, db.InsertPlacementParams{ServerID: "gone", Name: "api:t--b", TenantID: "t", InstanceID: "b"})
			},
			func() error {
				return q.InsertPlacement(ctx, db.InsertPlacementParams{ServerID: "s1", Name: "api:t--a", TenantID: "t", InstanceID: "a"})
			},
		} {
			if err := call(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.Read().ListInstanceStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.InstanceID+"="+r.Phase)
	}
	if strings.Join(got, " ") != "a=running b=stopped c=failed" {
		t.Fatalf("status rows %v", got)
	}
	evs, err := s.Events(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, ev := range evs[1:] { // the first is the server's
		msgs = append(msgs, ev.Message)
	}
	if strings.Join(msgs, " ") != "first second third" {
		t.Fatalf("events in the order %v", msgs)
	}
	if ps, err := s.ListPlacements(ctx); err != nil || len(ps) != 1 || ps[0].ServerID != "s1" {
		t.Fatalf("ledger %+v %v", ps, err)
	}
}

// The engine's sessions let the server give up on a client that stalls
// inside a transaction (or, over TCP, is cut off), so that it cannot hold
// the write lock for long; a URL may say otherwise.
func TestSessionsDoNotHoldTheWriteLockForLong(t *testing.T) {
	ctx := context.Background()
	url := fleetURL(t)
	for _, tc := range []struct{ url, want string }{{url, "30s"}, {url + "&idle_in_transaction_session_timeout=5000", "5s"}} {
		e := mustOpen(t, tc.url)
		var idle string
		if err := e.pool.QueryRow(ctx, `SELECT current_setting('idle_in_transaction_session_timeout')`).Scan(&idle); err != nil {
			t.Fatal(err)
		}
		e.Close()
		if idle != tc.want {
			t.Errorf("%s: idle in transaction timeout %s, want %s", tc.url, idle, tc.want)
		}
	}
}

func TestSchemaURL(t *testing.T) {
	for _, c := range []struct {
		url, schema, want string
		bad               bool
	}{
		{url: "postgres://ann:pw@db/scratch", schema: "slum_experiment_leader_kill_1", want: "postgres://ann:pw@db/scratch?search_path=slum_experiment_leader_kill_1"},
		{url: "postgres://ann@/scratch?host=/run/postgresql&search_path=public", schema: "x_1", want: "postgres://ann@/scratch?host=%2Frun%2Fpostgresql&search_path=x_1"},
		{url: "postgres://db/scratch", schema: "Bad", bad: true},
		{url: "postgres://db/scratch", schema: "a; DROP TABLE x", bad: true},
		{url: "postgres://db/scratch", schema: "", bad: true},
		{url: "/tmp/slum.db", schema: "x", bad: true},
		{url: "host=db dbname=scratch", schema: "x", bad: true},
	} {
		got, err := SchemaURL(c.url, c.schema)
		if c.bad {
			if !errors.Is(err, slum.ErrInvalid) {
				t.Errorf("SchemaURL(%q, %q) = %q, %v; want an ErrInvalid", c.url, c.schema, got, err)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("SchemaURL's error shows the password: %v", err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("SchemaURL(%q, %q) = %q, %v; want %q", c.url, c.schema, got, err, c.want)
		}
	}
}

func TestFreshSchemaStartsEmpty(t *testing.T) {
	ctx := context.Background()
	base := pgtest.URL(t)
	u, err := FreshSchema(ctx, base, "slum_fresh_1")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetSettings(ctx, slum.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if u, err = FreshSchema(ctx, base, "slum_fresh_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenExisting(ctx, u); !errors.Is(err, ErrNotExist) {
		t.Errorf("a fresh schema again holds a fleet: %v", err)
	}
}

// A holder cut off in the middle of a write holds the fleet's write lock
// until the server gives up on it (keepalives, the idle timeout: tens of
// seconds), and every writer waits, a standby taking the lease included.
// Taking a lease that has expired ends the old holder's open write
// transactions first, one waiting for the lock too: the takeover does not
// wait, and the old holder's writes are rolled back, never committed after
// the takeover. While the
// lease is live nothing is ended, and a standby does not wait: its beat
// takes no write lock.
func TestTakingAnExpiredLeaseEndsTheOldHoldersWrites(t *testing.T) {
	ctx := context.Background()
	url := fleetURL(t)
	ea, eb := mustOpen(t, url), mustOpen(t, url)
	// Closed after the held write is released (cleanups run last first).
	t.Cleanup(func() { ea.Close(); eb.Close() })
	const holderA, holderB = "host-a/1/aa", "host-b/2/bb"
	t0 := time.UnixMilli(2_000_000_000_000)
	at := func(e *Engine, d time.Duration) *store.Store {
		return store.NewWithClock(e, func() time.Time { return t0.Add(d) })
	}
	lease, err := at(ea, 0).AcquireLease(ctx, slum.ControllerLease, holderA, "", 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rev0, err := eb.Read().GetRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// a's write, cut off: it holds the write lock, idle in its transaction.
	held := fleettest.HoldWrite(t, ctx, ea)
	// And a second write of a's, waiting for the lock when a was cut off.
	waiting := make(chan error, 1)
	go func() {
		waiting <- ea.InTx(ctx, func(q db.Querier) error {
			_, err := q.GetLease(ctx, slum.ControllerLease)
			return err
		})
	}()
	openWrites := func() int {
		var n int
		if err := eb.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, writerName(holderA)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); openWrites() != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions named as a's writes, want its open one and the one waiting for the lock", openWrites())
		}
	}

	// While a's lease runs, b stands by at once, its beat recorded
	// without the write lock, and a's write is left alone.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = at(eb, time.Second).AcquireLease(wctx, slum.ControllerLease, holderB, "", 4*time.Second)
	cancel()
	if !errors.Is(err, slum.ErrConflict) || !strings.Contains(err.Error(), holderA) {
		t.Fatalf("b trying a's live lease while a writes: %v, want a conflict naming a, at once", err)
	}
	if n := openWrites(); n != 2 {
		t.Fatalf("a's writes ended while its lease was live: %d open, want 2", n)
	}
	if l, err := at(eb, time.Second).Leadership(ctx, slum.ControllerLease); err != nil || l.Leader != holderA || len(l.Standbys) != 1 || l.Standbys[0].Holder != holderB {
		t.Fatalf("leadership while a writes: %+v %v, want a leading and b standing by", l, err)
	}

	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	l, err := at(eb, 5*time.Second).AcquireLease(tctx, slum.ControllerLease, holderB, "", 4*time.Second)
	cancel()
	if err != nil || l.Holder != holderB || l.Epoch != lease.Epoch+1 {
		t.Fatalf("b taking a's expired lease while a's write is open: %+v %v, want it at epoch %d at once", l, err, lease.Epoch+1)
	}
	if err := held.Release(); err == nil {
		t.Fatal("a's write committed after b took the lease")
	}
	if err := <-waiting; err == nil {
		t.Fatal("a's write that waited for the lock ran after b took the lease")
	}
	if rev, err := eb.Read().GetRevision(ctx); err != nil || rev != rev0 {
		t.Fatalf("revision %d (%v) after a's ended write, want %d: it must not have landed", rev, err, rev0)
	}
	evs, err := at(eb, 5*time.Second).Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, e := range evs {
		if e.Reason == slum.ReasonTookOver {
			said = append(said, e.Message)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "ended 2 of its sessions with a write open") {
		t.Fatalf("takeover events %q, want one that says it ended a's two open writes", said)
	}
}

func TestWriterNameFitsTheServer(t *testing.T) {
	long := strings.Repeat("h", 80) + "/42/beef"
	for _, tc := range []struct{ holder, want string }{
		{"vm/29424/ed8638f0", "slum vm/29424/ed8638f0"},
		{long, ""},
		{"hôte/1/ab", ""},
	} {
		got := writerName(tc.holder)
		if tc.want != "" && got != tc.want {
			t.Errorf("writerName(%q) = %q, want %q", tc.holder, got, tc.want)
		}
		if len(got) > maxAppName || strings.IndexFunc(got, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 || !strings.HasPrefix(got, "slum ") {
			t.Errorf("writerName(%q) = %q: not 63 bytes of printable ASCII starting with \"slum \"", tc.holder, got)
		}
	}
	if writerName(long) == writerName(long+"x") {
		t.Errorf("two long holders share a name")
	}
}
