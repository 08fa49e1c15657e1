package wire

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/slum-fleet/slum"
)

func TestPathSegment(t *testing.T) {
	for _, tc := range []struct{ id, seg string }{
		{"alice", "alice"}, {"alice:prod", "alice:prod"}, {"", "-"}, {"-", "--"}, {"-x", "--x"}, {"a-b", "a-b"},
	} {
		if got := PathSegment(tc.id); got != tc.seg {
			t.Errorf("PathSegment(%q) = %q, want %q", tc.id, got, tc.seg)
		}
		if back := FromPathSegment(tc.seg); back != tc.id {
			t.Errorf("FromPathSegment(%q) = %q, want %q", tc.seg, back, tc.id)
		}
	}
}

func FuzzPathSegment(f *testing.F) {
	for _, s := range []string{"", "-", "a/b", "..", "a b", "%2F", "-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		seg := PathSegment(id)
		if seg == "" {
			t.Fatal("an empty segment")
		}
		esc := url.PathEscape(seg)
		un, err := url.PathUnescape(esc)
		if err != nil || FromPathSegment(un) != id {
			t.Fatalf("%q -> %q -> %q", id, esc, un)
		}
	})
}

func TestErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		err    error
		kind   ErrorKind
		status int
	}{
		{slum.ErrInvalid, KindInvalid, 400},
		{&slum.FieldError{Field: "x", Reason: "bad"}, KindInvalid, 400},
		{slum.ErrNotFound, KindNotFound, 404},
		{slum.ErrAlreadyExists, KindAlreadyExists, 409},
		{slum.ErrConflict, KindConflict, 409},
		{slum.ErrHasActiveTenants, KindHasActiveTenants, 409},
		{&slum.MassPruneError{File: "f"}, KindMassPrune, 409},
		{slum.ErrNoCapacity, KindNoCapacity, 422},
		{errors.New("disk on fire"), KindInternal, 500},
	} {
		k := KindOf(tc.err)
		if k != tc.kind || k.Status() != tc.status {
			t.Errorf("%v: %s %d, want %s %d", tc.err, k, k.Status(), tc.kind, tc.status)
		}
		if s := k.Sentinel(); s != nil && !errors.Is(tc.err, s) {
			t.Errorf("%v: sentinel %v", tc.err, s)
		}
		if k != KindMassPrune && k != KindHasActiveTenants && k != KindAlreadyExists && KindForStatus(tc.status) != k && tc.status != 409 {
			t.Errorf("status %d: %s", tc.status, KindForStatus(tc.status))
		}
	}
	if KindForStatus(http.StatusTooManyRequests).Sentinel() != ErrRateLimited || KindForStatus(401).Sentinel() != ErrUnauthorized {
		t.Error("auth statuses")
	}
}

func TestEventID(t *testing.T) {
	s, n, err := ParseEventID(EventID("ab12", 42))
	if err != nil || s != "ab12" || n != 42 {
		t.Fatalf("%s %d %v", s, n, err)
	}
	for _, bad := range []string{"", "x", ".3", "a.-1", "a.b", "a.1.2"} {
		if _, _, err := ParseEventID(bad); !errors.Is(err, slum.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
