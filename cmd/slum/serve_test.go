package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/sqlite"
)

// logLines is a slog handler handing each record's message to a channel.
type logLines chan string

func (l logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l logLines) Handle(_ context.Context, r slog.Record) error {
	l <- r.Message
	return nil
}
func (l logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logLines) WithGroup(string) slog.Handler      { return l }

// A server with no controller ('slum serve') says so when its database
// file is deleted, and opens a file put back in its place by itself.
func TestFollowDatabaseReopensARestoredFile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "slum.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	lines := make(logLines, 16)
	clk := fakeclock.New(time.Unix(1e9, 0))
	done := make(chan struct{})
	go func() { followDatabase(ctx, st, slog.New(lines), clk, time.Second); close(done) }()
	defer func() { cancel(); <-done }()
	next := func(want string) {
		t.Helper()
		clk.Advance(time.Second)
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("logged %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing logged, want %q", want)
		}
	}
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	next("the fleet database cannot be written: changes through the API fail until it can")
	restored, err := sqlite.Open(ctx, filepath.Join(dir, "restored.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restored.AddServer(ctx, slum.Server{ID: "s9", URL: "http://s9.test:8080", CapacityMB: 100}); err != nil {
		t.Fatal(err)
	}
	restored.Close()
	if err := os.Rename(filepath.Join(dir, "restored.db"), path); err != nil {
		t.Fatal(err)
	}
	next("opened the fleet database again: its file had changed")
	select {
	case got := <-lines:
		if got != "the fleet database can be written again" {
			t.Fatalf("logged %q after reopening", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing logged after reopening")
	}
	if _, err := st.GetServer(ctx, "s9"); err != nil {
		t.Fatalf("the store does not read the restored file: %v", err)
	}
	if _, err := st.AddServer(ctx, slum.Server{ID: "s10", URL: "http://s10.test:8080", CapacityMB: 100}); err != nil {
		t.Fatalf("a write to the restored file: %v", err)
	}
}
