package experiment

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMeasureData(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ack := func(body, server string, ms int) Ack { return Ack{Body: body, Server: server, At: at(ms)} }
	set := func(bodies ...string) map[string]bool {
		m := map[string]bool{}
		for _, b := range bodies {
			m[b] = true
		}
		return m
	}
	ms := func(n int) *Millis { m := Millis(time.Duration(n) * time.Millisecond); return &m }
	dur := func(n int) *time.Duration { d := time.Duration(n) * time.Millisecond; return &d }
	cases := []struct {
		name string
		rec  DataRecord
		want DataTrial
	}{
		{
			name: "nothing lost: the new copy restored every write acknowledged before the fault",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks:     []Ack{ack("h1", "s1", -2000), ack("h2", "s1", -1000), ack("h3", "s2", 2500), ack("h4", "s2", 2600)},
				Restored: set("h1", "h2"), Final: set("h1", "h2", "h3", "h4")},
			want: DataTrial{Old: "s1", New: "s2", Acked: 4, ServedWithData: ms(2500)},
		},
		{
			name: "the writes of the last 800 ms before the fault were never replicated: lost",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks:     []Ack{ack("h1", "s1", -2000), ack("h2", "s1", -800), ack("h3", "s1", -100), ack("h4", "s2", 1900)},
				Restored: set("h1"), Final: set("h1", "h4")},
			want: DataTrial{Old: "s1", New: "s2", Acked: 4, ServedWithData: ms(1900), Lost: 2, LostSpan: Millis(800 * time.Millisecond)},
		},
		{
			name: "the old copy's write after the new copy's first, found in the new history: two writers",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks:     []Ack{ack("h1", "s1", -500), ack("h2", "s2", 3000), ack("o7", "s1", 3100), ack("o8", "s1", 3200)},
				Restored: set("h1"), Final: set("h1", "h2", "o7")},
			want: DataTrial{Old: "s1", New: "s2", Acked: 4, ServedWithData: ms(3000), TwoWriters: 1, OldOnly: 1, OldWroteFor: Millis(3200 * time.Millisecond), AcceptedByTwo: 2},
		},
		{
			name: "the old copy's writes after the fault, replicated before the new copy restored, are one history",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks: []Ack{ack("o1", "s1", -300), ack("o2", "s1", 400), ack("o3", "s1", 1100), ack("h9", "s2", 2800)},
				// o3 came after the guard stopped Litestream: on the old
				// disk only.
				Restored: set("o1", "o2"), Final: set("o1", "o2", "h9")},
			want: DataTrial{Old: "s1", New: "s2", Acked: 4, ServedWithData: ms(2800), OldOnly: 1, OldWroteFor: Millis(1100 * time.Millisecond)},
		},
		{
			name: "a write the new copy acknowledged and no longer holds: the stale copy replicated over it",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks:     []Ack{ack("h1", "s1", -500), ack("h2", "s2", 2000), ack("h3", "s2", 2100)},
				Restored: set("h1"), Final: set("h1", "h2")},
			want: DataTrial{Old: "s1", New: "s2", Acked: 3, ServedWithData: ms(2000), NewGone: 1},
		},
		{
			name: "acks out of order (two writers' logs appended) are measured in time order",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks:     []Ack{ack("h5", "s2", 2000), ack("h1", "s1", -1500), ack("o1", "s1", -1200)},
				Restored: set(), Final: set("h5")},
			want: DataTrial{Old: "s1", New: "s2", Acked: 3, ServedWithData: ms(2000), Lost: 2, LostSpan: Millis(1500 * time.Millisecond)},
		},
		{
			name: "never served again: no loss is claimed, nothing is the new copy's",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks:     []Ack{ack("h1", "s1", -500), ack("o1", "s1", 700)},
				Restored: nil, Final: nil},
			want: DataTrial{Old: "s1", Acked: 2, OldOnly: 1, OldWroteFor: Millis(700 * time.Millisecond)},
		},
		{
			name: "a write to the old server acknowledged before the fault by a copy elsewhere does not make it served again",
			rec: DataRecord{Old: "s1", FaultAt: t0,
				Acks:     []Ack{ack("h0", "s2", -5000), ack("h1", "s1", -500), ack("h2", "s3", 4000)},
				Restored: set("h0", "h1"), Final: set("h0", "h1", "h2")},
			want: DataTrial{Old: "s1", New: "s3", Acked: 3, ServedWithData: ms(4000)},
		},
		{
			name: "the lease wait and the restore, where seen",
			rec: DataRecord{Old: "s1", FaultAt: t0, Acks: []Ack{ack("h1", "s2", 3000)}, Final: set("h1"),
				WaitingAt: at(900), TookOverAt: at(2300), Restore: dur(120), GuardWait: dur(1900)},
			want: DataTrial{Old: "s1", New: "s2", Acked: 1, ServedWithData: ms(3000), WriterWait: ms(1400), LeaseWait: ms(1900), Restore: ms(120)},
		},
		{
			name: "a took-over event before the waiting one is no wait",
			rec:  DataRecord{Old: "s1", FaultAt: t0, Acks: []Ack{ack("h1", "s2", 3000)}, Final: set("h1"), WaitingAt: at(900), TookOverAt: at(800)},
			want: DataTrial{Old: "s1", New: "s2", Acked: 1, ServedWithData: ms(3000)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := MeasureData(c.rec)
			if g, w := describeData(got), describeData(c.want); g != w {
				t.Errorf("MeasureData:\n got %s\nwant %s", g, w)
			}
		})
	}
}

func describeData(d DataTrial) string {
	m := func(p *Millis) string {
		if p == nil {
			return "nil"
		}
		return p.D().String()
	}
	return strings.Join([]string{"old " + d.Old, "new " + d.New, "acked " + strconv.Itoa(d.Acked), "served " + m(d.ServedWithData),
		"lost " + strconv.Itoa(d.Lost), "span " + d.LostSpan.D().String(), "two " + strconv.Itoa(d.TwoWriters), "oldOnly " + strconv.Itoa(d.OldOnly),
		"oldFor " + d.OldWroteFor.D().String(), "gone " + strconv.Itoa(d.NewGone), "byTwo " + strconv.Itoa(d.AcceptedByTwo), "wait " + m(d.LeaseWait), "writerWait " + m(d.WriterWait), "restore " + m(d.Restore)}, ", ")
}

func TestParseOrphanAcks(t *testing.T) {
	out := "1767322000000 o1\nnot a line\n1767321999500 o2\n1767322000100\n\n12x o3\n"
	got := parseOrphanAcks([]byte(out), "s2")
	if len(got) != 2 || got[0].Body != "o2" || got[1].Body != "o1" || got[0].Server != "s2" || !got[1].At.Equal(time.UnixMilli(1767322000000)) {
		t.Errorf("parseOrphanAcks = %+v, want o2 then o1 on s2", got)
	}
}

func TestDurationIn(t *testing.T) {
	cases := []struct {
		line string
		re   *regexp.Regexp
		want time.Duration
		ok   bool
	}{
		{"guard: database: restored /d/data/t--prod/app.db from the replica in 143ms", restoredIn, 143 * time.Millisecond, true},
		{"database: restored /x.db from the replica in 1.204s\n", restoredIn, 1204 * time.Millisecond, true},
		{"database: the replica has no database yet; the app starts with none (3ms)", restoredIn, 0, false},
		{"database: restored /x.db from the replica in soon", restoredIn, 0, false},
		{"lease: acquired generation 3 as d001--prod@s2 (it was lapsed; waited 1.873s)", acquiredAfter, 1873 * time.Millisecond, true},
		{"lease: acquired generation 1 as d001--prod@s1 (it was absent; waited 0s)", acquiredAfter, 0, true},
		{"lease: acquiring the lease of s3://b/x as d001--prod@s2", acquiredAfter, 0, false},
	}
	for _, c := range cases {
		got := durationIn(c.line, c.re)
		if (got != nil) != c.ok || got != nil && *got != c.want {
			t.Errorf("durationIn(%q) = %v, want %v (ok %v)", c.line, got, c.want, c.ok)
		}
	}
}
