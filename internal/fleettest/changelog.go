package fleettest

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/store"
)

// ChangeKindsAreRead checks an engine's change log against ChangedSince:
// every kind a trigger writes into the log is one ChangedSince reads,
// every kind it reads is written by some trigger, and a kind it does not
// know is not skipped: the reader is told to read everything.
//
// triggers is the text of every trigger (or trigger function) of the
// engine that writes the change log, by name; insert writes an entry of
// kind into the log behind the store's back.
func ChangeKindsAreRead(t *testing.T, s *store.Store, triggers map[string]string, insert func(kind slum.ChangeKind)) {
	t.Helper()
	ctx := context.Background()
	entry := regexp.MustCompile(`(?is)INSERT\s+INTO\s+change_log\s*\(([^)]*)\)\s*(?:VALUES\s*\(|SELECT)\s*'([^']*)'`)
	written := map[slum.ChangeKind][]string{} // kind → triggers
	for name, text := range triggers {
		if !regexp.MustCompile(`(?i)INTO\s+change_log\b`).MatchString(text) {
			continue
		}
		ms := entry.FindAllStringSubmatch(text, -1)
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
	for kind, by := range written {
		seq, err := s.ChangeSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		insert(kind)
		if _, err := s.ChangedSince(ctx, seq, 10); err != nil {
			t.Errorf("kind %q (written by %v): %v", kind, by, err)
		}
	}
	for _, k := range []slum.ChangeKind{slum.ChangeSettings, slum.ChangeServer, slum.ChangeTenant, slum.ChangeInstance, slum.ChangeServerStatus, slum.ChangeTenantStatus, slum.ChangeInstanceStatus} {
		if len(written[k]) == 0 {
			t.Errorf("no trigger writes kind %q", k)
		}
	}

	seq, err := s.ChangeSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert("hold")
	if _, err := s.ChangedSince(ctx, seq, 10); !errors.Is(err, slum.ErrUnknownChange) || !errors.Is(err, slum.ErrChangesGone) {
		t.Fatalf("an unknown kind: %v", err)
	}
}
