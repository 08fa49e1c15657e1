package experiment

import (
	"sort"
	"time"
)

// Ack is one write a copy of the data experiment's tenant acknowledged:
// its app answers only once the write's transaction has committed.
type Ack struct {
	Body   string    `json:"body"`   // the write's id, unique in a trial
	Server string    `json:"server"` // the server whose copy acknowledged it
	At     time.Time `json:"at"`
}

// DataRecord is what one data trial saw, raw: the acknowledged writes and
// what each copy held. MeasureData turns it into figures.
type DataRecord struct {
	// Old is the server the tenant was served from when the fault hit it.
	Old     string
	FaultAt time.Time
	// Acks are every acknowledged write, in the order they were answered:
	// through whichever copy served the tenant, and (for faults that leave
	// the old copy running) to the old copy directly, from its side.
	Acks []Ack
	// Restored is every write the new copy held when it was first
	// written to: what it restored from the replica.
	Restored map[string]bool
	// Final is every write the new copy held at the end, after the old
	// server had returned.
	Final map[string]bool
	// WaitingAt and TookOverAt: the controller's events for the tenant,
	// its new copy waiting for the old writer's lease and writing again
	// (zero when not seen).
	WaitingAt, TookOverAt time.Time
	// Restore is how long the new copy's guard took to restore, and
	// GuardWait how long it waited for the lease, from its own log; nil
	// when it did not say.
	Restore, GuardWait *time.Duration
}

// DataTrial is a data trial's figures, every time measured from the fault.
type DataTrial struct {
	// Tenant and the servers its copy moved between.
	Tenant string `json:"tenant"`
	Old    string `json:"old_server"`
	New    string `json:"new_server"`
	Acked  int    `json:"acked"`
	// ServedWithData: the first write a copy on another server than the
	// old one acknowledged (it had restored first); nil: never.
	ServedWithData *Millis `json:"served_with_data_ms"`
	// Lost counts writes the old copy acknowledged before the fault that
	// the new copy did not restore; LostSpan is how far back they reach
	// (from the earliest of them to the fault).
	Lost     int    `json:"lost"`
	LostSpan Millis `json:"lost_span_ms"`
	// TwoWriters counts writes the old copy acknowledged at or after the
	// new copy's first that are in the new copy's history: two writers of
	// one history (must be 0).
	TwoWriters int `json:"two_writer_writes"`
	// OldOnly counts writes the old copy acknowledged after the fault that
	// the new copy never saw: kept on the old copy's own disk only (moved
	// aside when it is replaced), lost to the clients on its side.
	// OldWroteFor is how long after the fault it still acknowledged one.
	OldOnly     int    `json:"old_copy_only_writes"`
	OldWroteFor Millis `json:"old_copy_wrote_for_ms"`
	// AcceptedByTwo counts writes the old copy acknowledged at or after
	// the new copy's first: while two copies accepted writes (must be 0),
	// whether they reached the new history (TwoWriters) or stayed on the
	// old disk.
	AcceptedByTwo int `json:"accepted_by_two_copies"`
	// NewGone counts writes the new copy acknowledged that it no longer
	// held at the end (must be 0: the returning server's stale copy must
	// not replicate over it).
	NewGone int `json:"new_copy_writes_gone"`
	// LeaseWait: how long the new copy's guard waited for the lease, by
	// its own log. WriterWait: from the controller saying the new copy
	// waits for the old writer to its saying the new copy writes. Restore:
	// the new copy's restore, by its guard. Nil where not observed.
	LeaseWait  *Millis `json:"lease_wait_ms"`
	WriterWait *Millis `json:"writer_wait_ms"`
	Restore    *Millis `json:"restore_ms"`
}

// MeasureData computes a data trial's figures from what it saw.
func MeasureData(r DataRecord) DataTrial {
	acks := append([]Ack(nil), r.Acks...)
	sort.SliceStable(acks, func(i, j int) bool { return acks[i].At.Before(acks[j].At) })
	d := DataTrial{Old: r.Old, Acked: len(acks)}
	var first *Ack
	for i := range acks {
		if acks[i].Server != r.Old && !acks[i].At.Before(r.FaultAt) {
			first = &acks[i]
			break
		}
	}
	if first != nil {
		d.New = first.Server
		d.ServedWithData = since(r.FaultAt, first.At)
	}
	var lostFirst time.Time
	for _, a := range acks {
		switch {
		case a.Server != r.Old:
			if a.Server == d.New && !r.Final[a.Body] {
				d.NewGone++
			}
		case a.At.Before(r.FaultAt):
			if first != nil && !r.Restored[a.Body] {
				d.Lost++
				if lostFirst.IsZero() {
					lostFirst = a.At
				}
			}
		case first != nil && !a.At.Before(first.At) && r.Final[a.Body]:
			d.TwoWriters++
			d.AcceptedByTwo++
		case !r.Final[a.Body]:
			if first != nil && !a.At.Before(first.At) {
				d.AcceptedByTwo++
			}
			d.OldOnly++
			d.OldWroteFor = max(d.OldWroteFor, Millis(a.At.Sub(r.FaultAt)))
		}
	}
	if d.Lost > 0 {
		d.LostSpan = Millis(r.FaultAt.Sub(lostFirst))
	}
	if !r.WaitingAt.IsZero() && !r.TookOverAt.Before(r.WaitingAt) {
		m := Millis(r.TookOverAt.Sub(r.WaitingAt))
		d.WriterWait = &m
	}
	d.Restore, d.LeaseWait = millisOf(r.Restore), millisOf(r.GuardWait)
	return d
}

func millisOf(d *time.Duration) *Millis {
	if d == nil {
		return nil
	}
	m := Millis(*d)
	return &m
}
