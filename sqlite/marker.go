package sqlite

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RunMarker is the note each `slum run` keeps beside its SQLite database
// (DB.run-PID) while it runs: which process uses the file. A database
// that is missing while markers are there was deleted or moved under a
// controller, and a new, empty one must not be created in its place
// silently: it would know nothing of what runs on the servers, and a
// second controller would be accepted on it.
type RunMarker struct {
	Path    string    `json:"-"`
	Holder  string    `json:"holder"` // the lease holder name of the process (host/pid/nonce)
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Leading, and why not (Reason), as the process last said: another
	// process learns that a leader stands by before its lease lapses.
	Leading bool      `json:"leading"`
	Reason  string    `json:"reason,omitempty"`
	Updated time.Time `json:"updated"`
}

const markerInfix = ".run-"

// Marker is this process's RunMarker, written.
type Marker struct {
	m RunMarker
}

// WriteRunMarker notes that holder (this process) uses the database at
// db, and removes the markers of processes gone says are gone.
func WriteRunMarker(db, holder string, gone func(holder string) bool) (*Marker, error) {
	if old, err := RunMarkers(db); err == nil {
		for _, m := range old {
			if gone(m.Holder) {
				_ = os.Remove(m.Path)
			}
		}
	}
	now := time.Now().UTC()
	mk := &Marker{m: RunMarker{Path: db + markerInfix + strconv.Itoa(os.Getpid()), Holder: holder, PID: os.Getpid(), Started: now,
		Reason: "starting", Updated: now}}
	return mk, mk.write()
}

// Update says whether this process leads, and why not.
func (mk *Marker) Update(leading bool, reason string) error {
	mk.m.Leading, mk.m.Reason, mk.m.Updated = leading, reason, time.Now().UTC()
	return mk.write()
}

func (mk *Marker) write() error {
	b, err := json.Marshal(mk.m)
	if err != nil {
		return err
	}
	// Written whole, then renamed: a reader never sees half of it.
	tmp := mk.m.Path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, mk.m.Path)
}

// Remove deletes the marker.
func (mk *Marker) Remove() { _ = os.Remove(mk.m.Path) }

// RunMarkers are the markers beside db, of processes running or not.
func RunMarkers(db string) ([]RunMarker, error) {
	dir, base := filepath.Split(db)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []RunMarker
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+markerInfix)
		if _, err := strconv.Atoi(rest); !ok || err != nil || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var m RunMarker
		if json.Unmarshal(b, &m) == nil && m.Holder != "" {
			m.Path = p
			out = append(out, m)
		}
	}
	return out, nil
}
