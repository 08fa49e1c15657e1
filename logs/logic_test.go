package logs

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/observed"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// at is a line of copy c at t0+ms with message m.
func at(c string, ms int, m string) Line {
	return Line{Time: t0.Add(time.Duration(ms) * time.Millisecond), Copy: c, Message: m}
}

func msgs(ls []Line) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Copy + ":" + l.Message
	}
	return out
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lists [][]Line
		want  []string
	}{
		{"nothing", nil, []string{}},
		{"one list", [][]Line{{at("a", 1, "x"), at("a", 2, "y")}}, []string{"a:x", "a:y"}},
		{"interleaved", [][]Line{{at("a", 1, "1"), at("a", 3, "3"), at("a", 5, "5")}, {at("b", 2, "2"), at("b", 4, "4")}},
			[]string{"a:1", "b:2", "a:3", "b:4", "a:5"}},
		{"ties keep list order, then place", [][]Line{{at("a", 1, "p"), at("a", 1, "q")}, {at("b", 1, "r")}, {}},
			[]string{"a:p", "a:q", "b:r"}},
		{"one list after the other", [][]Line{{at("b", 10, "late")}, {at("a", 1, "early")}}, []string{"a:early", "b:late"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := msgs(merge(tc.lists)); !slices.Equal(got, tc.want) {
				t.Fatalf("merge = %v, want %v", got, tc.want)
			}
		})
	}
	// A copy's stdout and stderr may come a millisecond out of order.
	l := []Line{at("a", 2, "out"), at("a", 1, "err"), at("a", 2, "out2")}
	sortCopy(l)
	if got := msgs(l); !slices.Equal(got, []string{"a:err", "a:out", "a:out2"}) {
		t.Fatalf("sortCopy = %v", got)
	}
	if got := msgs(newest(l, 2)); !slices.Equal(got, []string{"a:out", "a:out2"}) {
		t.Fatalf("newest 2 = %v", got)
	}
}

func entry(ms int64, m string) observed.LogEntry {
	return observed.LogEntry{Timestamp: ms, Level: observed.LogStdout, Message: m}
}

// A step of a dedupe scenario: a connection's history, or stream lines.
type step struct {
	history []observed.LogEntry // a new connection
	stream  []observed.LogEntry
	want    []string // what is new
}

func TestDedupe(t *testing.T) {
	e := entry
	for _, tc := range []struct {
		name  string
		max   int
		steps []step
	}{
		{"the stream repeats the newest of its history", 100, []step{
			{history: []observed.LogEntry{e(1, "a"), e(2, "b"), e(3, "c")}, want: []string{"a", "b", "c"}},
			{stream: []observed.LogEntry{e(2, "b"), e(3, "c"), e(4, "d")}, want: []string{"d"}},
		}},
		{"lines of one millisecond are each a line", 100, []step{
			{history: []observed.LogEntry{e(1, "x"), e(1, "x")}, want: []string{"x", "x"}},
			{stream: []observed.LogEntry{e(1, "x"), e(1, "x"), e(1, "x")}, want: []string{"x"}},
		}},
		{"a reconnection's history repeats nothing", 100, []step{
			{history: []observed.LogEntry{e(1, "a"), e(2, "b")}, want: []string{"a", "b"}},
			{stream: []observed.LogEntry{e(3, "c")}, want: []string{"c"}},
			{history: []observed.LogEntry{e(1, "a"), e(2, "b"), e(3, "c"), e(4, "d"), e(4, "d")}, want: []string{"d", "d"}},
			{stream: []observed.LogEntry{e(4, "d"), e(5, "e")}, want: []string{"e"}},
		}},
		{"a line written once, kept twice: one more", 100, []step{
			{stream: []observed.LogEntry{e(7, "x")}, want: []string{"x"}},
			{history: []observed.LogEntry{e(7, "x"), e(7, "x")}, want: []string{"x"}},
		}},
		{"a restarted server's new lines are new", 100, []step{
			{history: []observed.LogEntry{e(1000, "old")}, want: []string{"old"}},
			{history: nil, want: []string{}},
			{stream: []observed.LogEntry{e(9000, "new")}, want: []string{"new"}},
			{history: []observed.LogEntry{e(9000, "new"), e(9001, "newer")}, want: []string{"newer"}},
		}},
		{"what is older than the window was written or lost long ago", 100, []step{
			{history: []observed.LogEntry{e(100_000, "now")}, want: []string{"now"}},
			{history: []observed.LogEntry{e(1_000, "missed"), e(100_000, "now"), e(100_001, "next")}, want: []string{"next"}},
		}},
		{"past the history, its lines are no longer expected again", 100, []step{
			{history: []observed.LogEntry{e(1, "tick")}, want: []string{"tick"}},
			{stream: []observed.LogEntry{e(20_000, "later"), e(1, "tick")}, want: []string{"later", "tick"}},
		}},
		{"it remembers max lines", 2, []step{
			{stream: []observed.LogEntry{e(1, "a"), e(2, "b"), e(3, "c")}, want: []string{"a", "b", "c"}},
			{history: []observed.LogEntry{e(1, "a"), e(2, "b"), e(3, "c")}, want: []string{"a"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDedupe(dedupeWindow, tc.max)
			for i, s := range tc.steps {
				got := []string{}
				if s.history != nil || s.stream == nil {
					for _, e := range d.history(s.history) {
						got = append(got, e.Message)
					}
				}
				for _, e := range s.stream {
					if d.stream(e) {
						got = append(got, e.Message)
					}
				}
				if !slices.Equal(got, s.want) {
					t.Fatalf("step %d: new %v, want %v", i, got, s.want)
				}
			}
			if len(d.fifo) > tc.max || len(d.seen) > tc.max {
				t.Fatalf("remembers %d lines (%d keys), max %d", len(d.fifo), len(d.seen), tc.max)
			}
		})
	}
}

func TestCopiesOf(t *testing.T) {
	servers := []slum.Server{{ID: "s1", URL: "http://s1", Token: "t1"}, {ID: "s2", URL: "http://s2", Token: "t2"}, {ID: "s3", URL: "http://s3", Token: "t3"}}
	inst := func(id, server, home string) slum.Instance {
		return slum.Instance{TenantID: "alice", ID: id, Process: "api", ServerID: server, HomeServerID: home}
	}
	online := func(ids ...string) []slum.ServerStatus {
		var out []slum.ServerStatus
		for _, id := range ids {
			h := slum.HealthOnline
			id, bad, _ := strings.Cut(id, "=")
			if bad != "" {
				h = slum.Health(bad)
			}
			out = append(out, slum.ServerStatus{ServerID: id, Health: h})
		}
		return out
	}
	serving := func(cs ...string) slum.TenantStatus {
		st := slum.TenantStatus{TenantID: "alice"}
		for _, c := range cs {
			i, s, _ := strings.Cut(c, "@")
			st.Serving = append(st.Serving, slum.CopyRef{Instance: i, Server: s})
		}
		return st
	}
	for _, tc := range []struct {
		name   string
		insts  []slum.Instance
		status slum.TenantStatus
		health []slum.ServerStatus
		want   []string // copy (gone)
	}{
		{"where each is placed", []slum.Instance{inst("prod", "s1", "s1"), inst("backup", "s2", "s2")}, serving("prod@s1"),
			online("s1", "s2"), []string{"backup@s2 ()", "prod@s1 ()"}},
		{"failed over: the home copy too, its server dead", []slum.Instance{inst("prod", "s3", "s1")}, serving("prod@s3"),
			online("s1=dead", "s3"), []string{"prod@s1 (server s1 is dead)", "prod@s3 ()"}},
		{"failed over, home back: an old copy", []slum.Instance{inst("prod", "s3", "s1")}, serving("prod@s3"),
			online("s1", "s3"), []string{"prod@s1 (an old copy: prod runs on s3)", "prod@s3 ()"}},
		{"a move: the old copy serves until the new one does", []slum.Instance{inst("prod", "s2", "s2")}, serving("prod@s1"),
			online("s1", "s2"), []string{"prod@s1 ()", "prod@s2 ()"}},
		{"a server not answering", []slum.Instance{inst("prod", "s1", "s1")}, serving(), online("s1=suspect"),
			[]string{"prod@s1 (server s1 is not answering)"}},
		{"a server the fleet no longer has", []slum.Instance{inst("prod", "s1", "s9")}, serving("prod@s8"), online("s1"),
			[]string{"prod@s1 ()"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range copiesOf(tc.insts, tc.status, servers, tc.health) {
				got = append(got, fmt.Sprintf("%s (%s)", c.key, c.gone))
				if c.process != "api" || c.tenementID != "alice--"+c.key.instance || c.url != "http://"+c.key.server {
					t.Fatalf("copy %+v", c)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("copies %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueryValues(t *testing.T) {
	q := Query{Tenant: "alice", Instance: "prod", Since: t0.Add(123 * time.Millisecond), Grep: "a b&c", Level: observed.LogStderr, Lines: 20, Follow: true}
	back, err := ParseValues("alice", q.Values())
	if err != nil || !reflect.DeepEqual(back, q) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, tc := range []struct{ query, field string }{
		{"level=info", "--level"}, {"lines=-1", "lines"}, {"lines=x", "lines"}, {"since=yesterday", "since"},
		{"follow=maybe", "follow"}, {"instance=Prod", "instance id"}, {"tail=3", "query parameter"},
		{"grep=" + strings.Repeat("x", observed.MaxLogSearch+1), "--grep"},
	} {
		v, _ := url.ParseQuery(tc.query)
		_, err := ParseValues("alice", v)
		var fe *slum.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, slum.ErrInvalid) {
			t.Errorf("%s: %v, want a %s error", tc.query, err, tc.field)
		}
	}
	if _, err := ParseValues("Alice", nil); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a bad tenant id: %v", err)
	}
}

// FuzzParseValues: any query either fails as invalid input or reads back
// what it says.
func FuzzParseValues(f *testing.F) {
	f.Add("alice", "instance=prod&since=2026-05-01T12:00:00Z&grep=x&level=stdout&lines=3&follow=1")
	f.Add("bob", "grep=%00&lines=0")
	f.Fuzz(func(t *testing.T, tenant, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseValues(tenant, v)
		if err != nil {
			if !errors.Is(err, slum.ErrInvalid) {
				t.Fatalf("%q: %v is not invalid input", raw, err)
			}
			return
		}
		back, err := ParseValues(tenant, q.Values())
		if err != nil || !back.Since.Equal(q.Since) {
			t.Fatalf("%q: read back %+v, %v", raw, back, err)
		}
		back.Since = q.Since
		if !reflect.DeepEqual(back, q) {
			t.Fatalf("%q: read back %+v, want %+v", raw, back, q)
		}
	})
}

// recorder is an Output that keeps what it gets.
type recorder struct {
	lines   []Line
	notices []Notice
}

func (r *recorder) output() Output {
	return Output{Line: func(l Line) error { r.lines = append(r.lines, l); return nil },
		Notice: func(n Notice) error { r.notices = append(r.notices, n); return nil }}
}

// The merge of a follow: a line waits its window for older lines of other
// copies, then goes with every line older than it; beyond MaxPending the
// oldest go at once.
func TestFollowFlush(t *testing.T) {
	type arrival struct {
		after time.Duration // since the step before
		lines []Line
	}
	for _, tc := range []struct {
		name     string
		max      int
		arrivals []arrival
		want     [][]string // written after each arrival (and its wait)
	}{
		{"a late older line still goes first", 100, []arrival{
			{0, []Line{at("a", 50, "a50")}},
			{100 * time.Millisecond, []Line{at("b", 40, "b40")}},
			{100 * time.Millisecond, nil},
			{100 * time.Millisecond, nil},
		}, [][]string{{}, {}, {"b:b40", "a:a50"}, {}}},
		{"a line not due goes with the due ones when older", 100, []arrival{
			{0, []Line{at("a", 60, "a60")}},
			{150 * time.Millisecond, []Line{at("b", 10, "b10"), at("b", 70, "b70")}},
			{50 * time.Millisecond, nil},
			{200 * time.Millisecond, nil},
		}, [][]string{{}, {}, {"b:b10", "a:a60"}, {"b:b70"}}},
		{"beyond the cap the oldest go at once", 2, []arrival{
			{0, []Line{at("a", 3, "3"), at("a", 1, "1"), at("b", 2, "2")}},
			{200 * time.Millisecond, nil},
		}, [][]string{{"a:1"}, {"b:2", "a:3"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := fakeclock.New(t0)
			var rec recorder
			fl := &follower{opt: Options{Clock: clk, MaxPending: tc.max}.withDefaults(), out: rec.output(), live: true}
			for i, a := range tc.arrivals {
				clk.Advance(a.after)
				fl.pend(a.lines)
				if err := fl.flush(false); err != nil {
					t.Fatal(err)
				}
				if got := msgs(rec.lines); !slices.Equal(got, append([]string{}, tc.want[i]...)) {
					t.Fatalf("after arrival %d: wrote %v, want %v", i, got, tc.want[i])
				}
				rec.lines = nil
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"10m", now.Add(-10 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"0s", now},
		{"2026-04-30T08:00:00Z", time.Date(2026, 4, 30, 8, 0, 0, 0, time.UTC)},
		{"2026-04-30T08:00:00.5+02:00", time.Date(2026, 4, 30, 6, 0, 0, 5e8, time.UTC)},
		{"2026-04-30 08:00", time.Date(2026, 4, 30, 8, 0, 0, 0, time.Local)},
		{"2026-04-30 08:00:07", time.Date(2026, 4, 30, 8, 0, 7, 0, time.Local)},
		{"2026-04-30", time.Date(2026, 4, 30, 0, 0, 0, 0, time.Local)},
	} {
		got, err := ParseSince(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-5m", "yesterday", "10", "2026-13-01", "12:00"} {
		if _, err := ParseSince(bad, now); !errors.Is(err, slum.ErrInvalid) {
			t.Errorf("ParseSince(%q): %v, want invalid", bad, err)
		}
	}
}

// FuzzParseSince: --since is a time or invalid input, never a panic.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"10m", "2026-04-30T08:00:00Z", "2026-04-30 08:00", "-1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ParseSince(s, t0); err != nil && !errors.Is(err, slum.ErrInvalid) {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
