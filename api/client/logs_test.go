package client_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/logs"
	"github.com/slum-fleet/slum/observed/sim"
)

// collected is a logs.Output that keeps what it gets.
type collected struct {
	mu  sync.Mutex
	res logs.Result
}

func (c *collected) output() logs.Output {
	return logs.Output{
		Line: func(l logs.Line) error { c.mu.Lock(); c.res.Lines = append(c.res.Lines, l); c.mu.Unlock(); return nil },
		Notice: func(n logs.Notice) error {
			c.mu.Lock()
			c.res.Notices = append(c.res.Notices, n)
			c.mu.Unlock()
			return nil
		},
	}
}

func (c *collected) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.res.Lines {
		out = append(out, l.Message)
	}
	return out
}

// Through the API a read token reads what logs.Read reads on the
// database, and a followed read ends with an error when the token is
// revoked.
func TestLogsThroughTheAPI(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	s := sim.New(sim.Config{Token: "server-secret", Processes: map[string]sim.Process{"api": {}}})
	u, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := st.AddServer(ctx, slum.Server{ID: "s1", URL: u, CapacityMB: 1000, Token: "server-secret"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"}, slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s1"}); err != nil {
		t.Fatal(err)
	}
	s.Log("api", "alice--prod", "stdout", "one")
	s.Log("api", "alice--prod", "stderr", "two")
	admin := remote(t, st)
	ro, secret, err := admin.CreateAPIToken(ctx, slum.RoleRead, "reader")
	if err != nil {
		t.Fatal(err)
	}
	reader, err := client.New(admin.URL(), secret, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	q := logs.Query{Tenant: "alice", Grep: "o"}
	var local, far collected
	if err := logs.Read(ctx, st, q, logs.Options{}, local.output()); err != nil {
		t.Fatal(err)
	}
	if err := reader.Logs(ctx, q, far.output()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local.res, far.res) || len(far.res.Lines) != 2 {
		t.Fatalf("through the API %+v, on the database %+v", far.res, local.res)
	}
	if err := reader.Logs(ctx, logs.Query{Tenant: "zed"}, far.output()); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("an unknown tenant: %v", err)
	}
	if err := reader.Logs(ctx, logs.Query{Tenant: "alice", Level: "info"}, far.output()); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a bad level: %v", err)
	}

	var live collected
	ended := make(chan error, 1)
	go func() { ended <- reader.Logs(ctx, logs.Query{Tenant: "alice", Follow: true}, live.output()) }()
	waitFor(t, func() bool { return len(live.messages()) == 2 })
	s.Log("api", "alice--prod", "stdout", "three")
	waitFor(t, func() bool { return len(live.messages()) == 3 })
	if _, err := admin.RevokeAPIToken(ctx, ro.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "the API ended the log stream") {
			t.Fatalf("after the revocation: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked token's log stream is still open")
	}
	if got := live.messages(); !reflect.DeepEqual(got, []string{"one", "two", "three"}) {
		t.Fatalf("followed %q", got)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("not within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
