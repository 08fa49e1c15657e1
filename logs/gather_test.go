package logs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/observed"
)

func copyMsgs(ls []Line) []string {
	out := []string{}
	for _, l := range ls {
		if !strings.Contains(l.Message, "listening") {
			out = append(out, l.Copy+":"+l.Message)
		}
	}
	return out
}

func TestGather(t *testing.T) {
	f := newTestFleet(t, 2)
	ctx := context.Background()
	f.report([]string{"s1", "s2"}, "prod@s1")
	f.sims["s1"].Put("api", "alice--prod")
	f.sims["s2"].Put("api", "alice--backup")
	f.log("s1", "prod", "stdout", "p1")
	f.log("s2", "backup", "stdout", "b1")
	f.log("s1", "prod", "stderr", "p2 oops")
	mid := time.Now()
	f.log("s2", "backup", "stderr", "b2 oops")
	f.log("s1", "prod", "stdout", "p3")
	f.sims["s1"].Log("api", "bob--prod", "stdout", "not alice's")
	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"every copy, in time order", Query{}, []string{"prod@s1:p1", "backup@s2:b1", "prod@s1:p2 oops", "backup@s2:b2 oops", "prod@s1:p3"}},
		{"one instance", Query{Instance: "backup"}, []string{"backup@s2:b1", "backup@s2:b2 oops"}},
		{"grep", Query{Grep: "oops"}, []string{"prod@s1:p2 oops", "backup@s2:b2 oops"}},
		{"level", Query{Level: observed.LogStderr}, []string{"prod@s1:p2 oops", "backup@s2:b2 oops"}},
		{"since", Query{Since: mid}, []string{"backup@s2:b2 oops", "prod@s1:p3"}},
		{"the newest lines of the merge", Query{Lines: 2}, []string{"backup@s2:b2 oops", "prod@s1:p3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Tenant = "alice"
			res, err := Gather(ctx, f.st, q, Options{})
			if err != nil || len(res.Notices) != 0 {
				t.Fatalf("gather: %v, notices %v", err, res.Notices)
			}
			if got := copyMsgs(res.Lines); !slices.Equal(got, tc.want) {
				t.Fatalf("lines %v, want %v", got, tc.want)
			}
			for i, l := range res.Lines {
				if l.Server != strings.TrimPrefix(l.Copy, l.Instance+"@") || l.Gone != "" || (i > 0 && l.Time.Before(res.Lines[i-1].Time)) {
					t.Fatalf("line %d: %+v", i, l)
				}
			}
		})
	}
	if _, err := Gather(ctx, f.st, Query{Tenant: "zed"}, Options{}); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("an unknown tenant: %v", err)
	}
	if _, err := Gather(ctx, f.st, Query{Tenant: "alice", Instance: "nope"}, Options{}); !errors.Is(err, slum.ErrNotFound) || err.Error() != "instance alice:nope not found" {
		t.Fatalf("an unknown instance: %v", err)
	}
	if _, err := Gather(ctx, f.st, Query{Tenant: "alice", Level: "info"}, Options{}); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a bad level: %v", err)
	}
}

// A copy that cannot be read is said; when none can be, Gather fails.
// Neither says a server's token.
func TestGatherDegrades(t *testing.T) {
	f := newTestFleet(t, 2)
	ctx := context.Background()
	f.sims["s1"].Put("api", "alice--prod")
	f.log("s1", "prod", "stdout", "p1")
	if err := f.sims["s2"].SetDown(true); err != nil {
		t.Fatal(err)
	}
	res, err := Gather(ctx, f.st, Query{Tenant: "alice"}, Options{Timeout: time.Second})
	if err != nil || len(res.Notices) != 1 || res.Notices[0].Copy != "backup@s2" || !strings.Contains(res.Notices[0].Message, "cannot read its lines") {
		t.Fatalf("one server down: %+v, %v", res, err)
	}
	if got := copyMsgs(res.Lines); !slices.Equal(got, []string{"prod@s1:p1"}) {
		t.Fatalf("lines %v", got)
	}
	empty := ""
	if _, err := f.st.UpdateServer(ctx, "s1", slum.ServerUpdate{Token: &empty}); err != nil {
		t.Fatal(err)
	}
	_, err = Gather(ctx, f.st, Query{Tenant: "alice"}, Options{Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "no copy of alice could be read: backup@s2: ") ||
		!strings.Contains(err.Error(), "prod@s1: the fleet has no token for its server") || strings.Contains(err.Error(), "tok-") {
		t.Fatalf("no server readable: %v", err)
	}
}
