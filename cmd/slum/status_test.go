package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/sqlite"
)

// status names the leader, its epoch, how long since it renewed and the
// standbys, in its table and its JSON, on the database and through the API.
func TestCLIStatusNamesTheLeader(t *testing.T) { bothWays(t, testCLIStatusNamesTheLeader) }

func testCLIStatusNamesTheLeader(t *testing.T) {
	_, db := newFleet(t)
	expect(t, cli(t, db, "", "status"), 0, "controller: none has ever led this fleet", "")
	s, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.AcquireLease(ctx, slum.ControllerLease, "host-a/1/aa", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, slum.ControllerLease, "host-b/2/bb", "", time.Minute); err == nil {
		t.Fatal("a second controller took a held lease")
	}
	s.Close()
	r := cli(t, db, "", "status")
	expect(t, r, 0, "controller: host-a/1/aa leads (epoch 1; renewed ", "")
	expect(t, r, 0, "standby: host-b/2/bb (seen ", "")
	r = cli(t, db, "", "status", "-o", "json")
	var o slum.Overview
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil || o.Controller == nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	l := o.Controller
	if l.Leader != "host-a/1/aa" || l.Epoch != 1 || !l.Live || l.Ago(l.RenewedAt) > 30*time.Second || l.RenewedAt.After(l.At) ||
		len(l.Standbys) != 1 || l.Standbys[0].Holder != "host-b/2/bb" {
		t.Fatalf("leadership %+v", l)
	}
	expect(t, cli(t, db, "", "events", "-n", "1"), 0, "host-a/1/aa leads (epoch 1)", "")
}

// 'slum events --follow' says when its database file is deleted, follows
// a backup put back in its place, and shows what happens there even
// though the backup holds fewer events than were shown.
func TestEventsFollowAFileRestoredFromABackup(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fleet.db")
	addServer := func(id string) {
		t.Helper()
		expect(t, cliLocal(t, db, "", "server", "add", id, "--url", "http://"+id+".test:8080", "--capacity-mb", "100", "--no-token"), 0, "", "")
	}
	addServer("s1")
	backup := filepath.Join(dir, "backup.db")
	backupDB(t, db, backup)
	out, errf := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	outFile, _ := os.Create(out)
	errFile, _ := os.Create(errf)
	follow := exec.Command(slumBin, "--db", db, "events", "--follow")
	follow.Stdout, follow.Stderr = outFile, errFile
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = follow.Process.Kill(); _ = follow.Wait() }()
	waitFor := func(file, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if b, _ := os.ReadFile(file); strings.Contains(string(b), want) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		b, _ := os.ReadFile(file)
		t.Fatalf("%s never said %q:\n%s", filepath.Base(file), want, b)
	}
	waitFor(out, "server/s1")
	addServer("s2") // lost with the file
	waitFor(out, "server/s2")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	waitFor(errf, "was deleted")
	if err := os.Rename(backup, db); err != nil {
		t.Fatal(err)
	}
	waitFor(errf, "following the file now at the path")
	addServer("s3") // its event has the id s2's had
	waitFor(out, "server/s3")
}
