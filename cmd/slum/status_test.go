package main

import (
	"context"
	"encoding/json"
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
