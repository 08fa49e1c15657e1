package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/internal/pgtest"
	"github.com/slum-fleet/slum/sqlite"
)

// withPassword is url with a password for its user, which the test
// server (trust) ignores: it must show nowhere.
func withPassword(url string) string {
	return strings.Replace(url, "postgres://postgres@", "postgres://postgres:pw-s3cret@", 1)
}

// populated is a SQLite fleet database with something in every table.
func populated(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "slum.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	fleettest.Populate(t, s)
	// Who leads does not travel with a copy: no lease held in the source
	// either, so that status reads the same.
	if l, err := s.GetLease(context.Background(), slum.ControllerLease); err == nil {
		if err := s.ReleaseLease(context.Background(), l.Fence()); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	return path
}

// The fleet copied to Postgres and back shows the same through every
// command, with the same exit codes (status's table is left out: it says
// how long ago the controller reported, which moves between two runs); a
// target that holds a fleet is refused unless replaced.
func TestCopyCommand(t *testing.T) {
	src := populated(t)
	pg := withPassword(pgtest.URL(t))
	r := runSlum(t, "", "copy", "--from", src, "--to", pg)
	expect(t, r, exitOK, "read it back the same: 3 servers, 2 tenants, 3 instances, 2 placements, 1 removals, 2 api tokens", "")
	back := filepath.Join(t.TempDir(), "back.db")
	expect(t, runSlum(t, "", "copy", "--from", pg, "--to", back, "-o", "json"), exitOK, `"replaced": false`, "")
	for _, args := range [][]string{{"server", "list"}, {"tenant", "list"}, {"instance", "list"}, {"settings"}, {"token", "list"},
		{"events", "-o", "json"}, {"status", "-o", "json"}, {"tenant", "get", "alice"}, {"server", "get", "s1"}, {"instance", "status", "alice:prod"}} {
		want := cliLocal(t, src, "", args...)
		for _, db := range []string{pg, back} {
			got := cliLocal(t, db, "", args...)
			if want.code != exitOK || got.code != want.code || got.stdout != want.stdout {
				t.Errorf("slum %v on %s: exit %d\n%s\nwant exit %d\n%s\n%s", args, db, got.code, got.stdout, want.code, want.stdout, got.stderr)
			}
		}
	}

	r = runSlum(t, "", "copy", "--from", src, "--to", pg)
	expect(t, r, exitConflict, "", "the target holds a fleet (3 servers")
	if !strings.Contains(r.stderr, "give --replace to replace it") {
		t.Fatalf("no hint: %s", r.stderr)
	}
	r = runSlum(t, "", "copy", "--from", back, "--to", pg, "--replace", "-o", "json")
	expect(t, r, exitOK, `"replaced": true`, "")
	var res struct {
		From, To string
		Rows     map[string]int
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Rows["instances"] != 3 || res.From != back {
		t.Fatalf("json %s: %v", r.stdout, err)
	}
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, "pw-s3cret") {
			t.Fatalf("the password shows: %s", out)
		}
	}
}

func TestCopyCommandRefusesBadInput(t *testing.T) {
	src := populated(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	expect(t, runSlum(t, "", "copy", "--from", missing, "--to", filepath.Join(dir, "x.db")), exitNotFound, "", "--from: ")
	expect(t, runSlum(t, "", "copy", "--from", src, "--to", src), exitInvalid, "", "is the database --from names")
	expect(t, runSlum(t, "", "copy", "--from", src), exitUsage, "", `required flag(s) "to" not set`)
	expect(t, runSlum(t, "", "copy", "--from", src, "--to", "postgres://u:pw-s3cret@127.0.0.1:1/x?connect_timeout=2"), exitFailure, "", "cannot reach the Postgres server")
	expect(t, runSlum(t, "", "--api", "https://127.0.0.1:1", "copy", "--from", src, "--to", filepath.Join(dir, "y.db")), exitUsage, "", "takes no --api")
	// No target is made for a source that is not there.
	expect(t, runSlum(t, "", "copy", "--from", missing, "--to", filepath.Join(dir, "z.db")), exitNotFound, "", "")
	if _, err := os.Stat(filepath.Join(dir, "z.db")); err == nil {
		t.Fatal("a copy from nothing made its target")
	}
	if r := runSlum(t, "", "copy", "--from", src, "--to", "postgres://u:pw-s3cret@127.0.0.1:1/x?connect_timeout=2"); strings.Contains(r.stderr, "pw-s3cret") {
		t.Fatalf("the password shows: %s", r.stderr)
	}
}

// --db postgres://… and SLUM_DB_URL choose Postgres for every command;
// the URL's password shows nowhere.
func TestPostgresDatabaseForEveryCommand(t *testing.T) {
	url := withPassword(pgtest.URL(t))
	r := cliLocal(t, url, "", "init")
	expect(t, r, exitOK, "is ready (created, empty)", "created the fleet in the database postgres://postgres@/")
	expect(t, cliLocal(t, url, "", "server", "add", "s1", "--url", "http://s1.test:8080", "--capacity-mb", "100", "--no-token"), exitOK, "server s1 added", "")
	expect(t, cliLocal(t, url, "", "server", "add", "s1", "--url", "http://s1.test:8080", "--capacity-mb", "100", "--no-token"), exitConflict, "", "already exists")
	expect(t, cliLocal(t, url, "", "tenant", "get", "nobody"), exitNotFound, "", "not found")
	r = runSlumEnv(t, []string{"SLUM_DB_URL=" + url}, "server", "list")
	expect(t, r, exitOK, "s1", "")
	for _, env := range []string{"SLUM_DB_URL=" + url, "SLUM_DB=" + url} {
		r = runSlumEnv(t, []string{env}, "--help")
		if strings.Contains(r.stdout, "pw-s3cret") || !strings.Contains(r.stdout, "--db string") {
			t.Fatalf("help with %s: %s", strings.Split(env, "=")[0], r.stdout)
		}
		expect(t, runSlumEnv(t, []string{env}, "server", "list"), exitOK, "s1", "")
	}
	expect(t, runSlumEnv(t, []string{"SLUM_DB_URL=slum.db"}, "server", "list"), exitUsage, "", "SLUM_DB_URL must be a postgres:// URL")
	expect(t, runSlumEnv(t, []string{"SLUM_DB_URL=" + url, "SLUM_DB=other.db"}, "server", "list"), exitUsage, "", "name two databases")
	empty := pgtest.URL(t)
	expect(t, cliLocal(t, empty, "", "server", "list"), exitNotFound, "", "the database holds no fleet yet")
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, "pw-s3cret") {
			t.Fatalf("the password shows: %s", out)
		}
	}
}

// runSlumEnv runs the binary with env added to its environment.
func runSlumEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	t.Setenv("SLUM_DB", "")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return runSlum(t, "", args...)
}
