package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/routes"
)

// watching is a watch that collects its messages.
type watching struct {
	t    *testing.T
	msgs chan client.Message
	stop context.CancelFunc
	done chan error
}

func (a *testAPI) watch(t *testing.T, role slum.APIRole, opt client.WatchOptions) *watching {
	t.Helper()
	c, err := client.New(a.srv.URL, a.tokens[role], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(a.ctx)
	w := &watching{t: t, msgs: make(chan client.Message, 1000), stop: cancel, done: make(chan error, 1)}
	go func() {
		w.done <- c.Watch(ctx, opt, func(m client.Message) error { w.msgs <- m; return nil })
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// next waits for the next message that is a reset or carries something.
func (w *watching) next() client.Message {
	w.t.Helper()
	for {
		select {
		case m := <-w.msgs:
			if m.Reset != nil || m.Batch != nil {
				return m
			}
		case err := <-w.done:
			w.t.Fatalf("the watch ended: %v", err)
		case <-time.After(5 * time.Second):
			w.t.Fatal("no message from the watch in 5s")
		}
	}
}

// until waits for a batch with a change of kind and id, and returns it
// with the last message's id.
func (w *watching) until(kind wire.ObjectKind, id string) (wire.Change, string) {
	w.t.Helper()
	for {
		m := w.next()
		if m.Batch == nil {
			continue
		}
		for _, c := range m.Batch.Changes {
			if c.Kind == kind && c.ID == id {
				return c, m.ID
			}
		}
	}
}

func objectIDs(cs []wire.Change) string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, string(c.Kind)+":"+c.ID)
	}
	return strings.Join(ids, " ")
}

func TestWatchStreamsChangesAndResumes(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	w := a.watch(t, slum.RoleRead, client.WatchOptions{})
	first := w.next()
	if first.Reset == nil {
		t.Fatalf("the first message is not a reset: %+v", first)
	}
	want := "settings:fleet server:s1 server:s2 tenant:alice instance:alice:prod route:alice.example.com"
	if got := objectIDs(first.Reset.Objects); got != want {
		t.Fatalf("reset objects: %s, want %s", got, want)
	}
	if len(first.Reset.Events) == 0 {
		t.Fatal("a reset without the latest events")
	}
	for _, o := range first.Reset.Objects {
		if strings.Contains(string(o.Object), "tok-s1") {
			t.Fatal("the watch shows a server token")
		}
	}

	// A change arrives as a batch with its events, and only what changed.
	if _, err := a.store.SetServerState(a.ctx, "s2", slum.ServerCordoned); err != nil {
		t.Fatal(err)
	}
	m := w.next()
	if m.Batch == nil || objectIDs(m.Batch.Changes) != "server:s2" || len(m.Batch.Events) != 1 || m.Batch.Events[0].Reason != slum.ReasonCordoned {
		t.Fatalf("after a cordon: %+v", m.Batch)
	}
	var sv wire.ServerView
	if err := json.Unmarshal(m.Batch.Changes[0].Object, &sv); err != nil || sv.State != slum.ServerCordoned || !sv.HasToken || sv.Stats.CapacityMB != 1000 {
		t.Fatalf("server view: %+v %v", sv, err)
	}
	last := m.ID
	w.stop()

	// Changes while away are all that a resuming watch is sent.
	if _, err := a.store.SetServerState(a.ctx, "s2", slum.ServerActive); err != nil {
		t.Fatal(err)
	}
	if err := a.store.RemoveTenant(a.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	w2 := a.watch(t, slum.RoleRead, client.WatchOptions{Since: last})
	seen := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for !(seen["server:s2"] && seen["tenant:alice"] && seen["instance:alice:prod"] && seen["route:alice.example.com"]) {
		m := w2.next()
		if m.Reset != nil {
			t.Fatal("a resumed watch was sent a reset")
		}
		for _, c := range m.Batch.Changes {
			seen[string(c.Kind)+":"+c.ID] = true
			if c.Kind == wire.ObjTenant && c.Op != wire.OpDelete {
				t.Fatalf("alice was removed: %+v", c)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("missed changes: %v", seen)
		}
	}
	// An id from another stream (another API process) starts over.
	w3 := a.watch(t, slum.RoleRead, client.WatchOptions{Since: "abcdef.3"})
	if m := w3.next(); m.Reset == nil || objectIDs(m.Reset.Objects) != "settings:fleet server:s1 server:s2" {
		t.Fatalf("another stream's id: %+v", m)
	}
}

func TestWatchTooFarBehindIsReset(t *testing.T) {
	a := newTestAPI(t, Config{WatchHistory: 2})
	a.seed()
	w := a.watch(t, slum.RoleRead, client.WatchOptions{})
	w.next()
	if _, err := a.store.SetServerState(a.ctx, "s1", slum.ServerCordoned); err != nil {
		t.Fatal(err)
	}
	_, last := w.until(wire.ObjServer, "s1")
	for i := 0; i < 4; i++ {
		if _, err := a.store.UpdateTenant(a.ctx, "alice", slum.TenantUpdate{Region: ptr(fmt.Sprint("r", i))}); err != nil {
			t.Fatal(err)
		}
		w.until(wire.ObjTenant, "alice")
	}
	w2 := a.watch(t, slum.RoleRead, client.WatchOptions{Since: last})
	if m := w2.next(); m.Reset == nil {
		t.Fatalf("a watch 4 batches behind, with 2 kept, was not reset: %+v", m)
	}
}

func ptr[T any](v T) *T { return &v }

// Router tokens are sent routes, nothing else; a route changes when a
// tenant's domain does.
func TestWatchForRoutersIsRoutesOnly(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	w := a.watch(t, slum.RoleRouter, client.WatchOptions{})
	if m := w.next(); m.Reset == nil || objectIDs(m.Reset.Objects) != "route:alice.example.com" || len(m.Reset.Events) != 0 {
		t.Fatalf("a router's reset: %+v", m.Reset)
	}
	if _, err := a.store.SetServerState(a.ctx, "s2", slum.ServerCordoned); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.UpdateTenant(a.ctx, "alice", slum.TenantUpdate{Domain: ptr("alice.example.org")}); err != nil {
		t.Fatal(err)
	}
	for {
		m := w.next()
		if got := objectIDs(m.Batch.Changes); got != "" {
			if got != "route:alice.example.com route:alice.example.org" || len(m.Batch.Events) != 0 {
				t.Fatalf("a router's batch: %s %+v", got, m.Batch.Events)
			}
			break
		}
	}
}

// The client follows the route table through the watch.
func TestFollowRoutes(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	c, err := client.New(a.srv.URL, a.tokens[slum.RoleRouter], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tables := make(chan *routes.Table, 100)
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	go c.FollowRoutes(ctx, func(tb *routes.Table) { tables <- tb }, func(err error) { t.Log(err) })
	next := func() *routes.Table {
		select {
		case tb := <-tables:
			return tb
		case <-time.After(5 * time.Second):
			t.Fatal("no route table in 5s")
			return nil
		}
	}
	if tb := next(); tb.Len() != 1 {
		t.Fatalf("first table: %+v", tb.Routes())
	}
	if _, _, err := a.store.AddTenant(a.ctx, slum.Tenant{ID: "bob", Domain: "bob.example.com"}); err != nil {
		t.Fatal(err)
	}
	for {
		tb := next()
		if r, ok := tb.Lookup("BOB.example.com:443"); ok {
			if r.Tenant != "bob" || tb.Revision() == 0 {
				t.Fatalf("bob's route: %+v at %d", r, tb.Revision())
			}
			break
		}
	}
}

// A client that stops reading holds up nobody: the others get every
// change at once.
func TestSlowWatcherHoldsUpNobody(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/watch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", a.tokens[slum.RoleRead])
	w := a.watch(t, slum.RoleRead, client.WatchOptions{})
	w.next()
	for i := 0; i < 30; i++ {
		region := fmt.Sprintf("region-%d-%s", i, strings.Repeat("x", 40))
		start := time.Now()
		if _, err := a.store.UpdateTenant(a.ctx, "alice", slum.TenantUpdate{Region: &region}); err != nil {
			t.Fatal(err)
		}
		c, _ := w.until(wire.ObjTenant, "alice")
		if !strings.Contains(string(c.Object), region) {
			// An earlier batch; the next one has it.
			c, _ = w.until(wire.ObjTenant, "alice")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("change %d took %s", i, d)
		}
	}
}

// Revoking a token ends the watch streams it holds open, wherever it was
// revoked: here on the database, as the CLI does.
func TestRevokedTokenEndsItsStreams(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	req, _ := http.NewRequestWithContext(a.ctx, "GET", a.srv.URL+"/v1/watch", nil)
	req.Header.Set("Authorization", "Bearer "+a.tokens[slum.RoleRead])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %v %v", resp, err)
	}
	defer resp.Body.Close()
	first := make([]byte, 4096)
	if _, err := resp.Body.Read(first); err != nil {
		t.Fatalf("first frame: %v", err)
	}
	// Another token's stream stays open.
	other, _ := http.NewRequestWithContext(a.ctx, "GET", a.srv.URL+"/v1/watch", nil)
	other.Header.Set("Authorization", "Bearer "+a.tokens[slum.RoleAdmin])
	oresp, err := http.DefaultClient.Do(other)
	if err != nil {
		t.Fatal(err)
	}
	defer oresp.Body.Close()

	list, _ := a.store.ListAPITokens(a.ctx)
	var readID int64
	for _, tk := range list {
		if tk.Role == slum.RoleRead {
			readID = tk.ID
		}
	}
	if _, err := a.store.RevokeAPIToken(a.ctx, readID); err != nil {
		t.Fatal(err)
	}
	a.api.sweep(a.ctx)
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); ended <- err }()
	select {
	case <-ended:
	case <-time.After(time.Second):
		t.Fatal("the revoked token's stream is still open after a sweep")
	}
	if n := len(a.api.streams.tokens()); n != 1 {
		t.Fatalf("%d tokens with open streams, want the admin's only", n)
	}
}
