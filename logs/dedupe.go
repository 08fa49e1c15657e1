package logs

import "github.com/slum-fleet/slum/observed"

// dedupe keeps one copy from writing a line twice. tenement gives lines no
// id, so a line is its time, level and message; and it sends a stream no
// history, so each connection opens the stream and then reads what the
// server keeps, which may repeat lines already written (an earlier
// connection's) and lines the new stream will bring (those read in
// between). Lines can share a millisecond, so counts are kept, not a set:
// two identical lines in one millisecond are two lines.
//
// The one line it cannot tell apart is a line the copy printed twice in
// the same millisecond, once just before and once just after a
// connection's history was read: it is written once.
type dedupe struct {
	window int64 // ms: how far back lines are remembered
	max    int   // how many are remembered at most
	high   int64 // the newest time written
	seen   map[lineKey]int
	fifo   []lineKey // what seen holds, oldest first
	// overlap is the newest lines of the current connection's history,
	// which its stream may bring again; nil once past them.
	overlap     map[lineKey]int
	overlapHigh int64
}

type lineKey struct {
	ts      int64
	level   observed.LogLevel
	message string
}

func keyOf(e observed.LogEntry) lineKey { return lineKey{e.Timestamp, e.Level, e.Message} }

func newDedupe(window int64, max int) *dedupe {
	return &dedupe{window: window, max: max, seen: map[lineKey]int{}}
}

// history takes a new connection's history (oldest first) and returns the
// lines not written before. Lines older than the window before the newest
// written were written (or lost) long ago.
func (d *dedupe) history(es []observed.LogEntry) []observed.LogEntry {
	var out []observed.LogEntry
	// Of each line written before, how many more times this history may
	// hold it (counted before it adds any, which may forget some).
	before := map[lineKey]int{}
	d.overlap, d.overlapHigh = map[lineKey]int{}, 0
	for _, e := range es {
		d.overlapHigh = max(d.overlapHigh, e.Timestamp)
		before[keyOf(e)] = d.seen[keyOf(e)]
	}
	for _, e := range es {
		k := keyOf(e)
		if e.Timestamp >= d.overlapHigh-d.window {
			d.overlap[k]++
		}
		if e.Timestamp < d.high-d.window {
			continue
		}
		if before[k] > 0 {
			before[k]--
			continue
		}
		d.add(k)
		out = append(out, e)
	}
	return out
}

// stream reports whether a line of the connection's stream is new: not
// one its history already brought.
func (d *dedupe) stream(e observed.LogEntry) bool {
	k := keyOf(e)
	if d.overlap != nil {
		switch {
		case e.Timestamp > d.overlapHigh+d.window:
			d.overlap = nil
		case d.overlap[k] > 0:
			d.overlap[k]--
			return false
		}
	}
	d.add(k)
	return true
}

func (d *dedupe) add(k lineKey) {
	d.seen[k]++
	d.fifo = append(d.fifo, k)
	d.high = max(d.high, k.ts)
	drop := 0
	for drop < len(d.fifo) && (d.fifo[drop].ts < d.high-d.window || len(d.fifo)-drop > d.max) {
		old := d.fifo[drop]
		if d.seen[old]--; d.seen[old] <= 0 {
			delete(d.seen, old)
		}
		drop++
	}
	// The front let go is freed when append next moves the slice.
	d.fifo = d.fifo[drop:]
}
