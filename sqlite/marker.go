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
}

const markerInfix = ".run-"

// WriteRunMarker notes that holder (this process) uses the database at
// db, and removes the markers of processes gone says are gone. remove
// deletes this process's marker.
func WriteRunMarker(db, holder string, gone func(holder string) bool) (remove func(), err error) {
	if old, err := RunMarkers(db); err == nil {
		for _, m := range old {
			if gone(m.Holder) {
				_ = os.Remove(m.Path)
			}
		}
	}
	m := RunMarker{Holder: holder, PID: os.Getpid(), Started: time.Now().UTC()}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	path := db + markerInfix + strconv.Itoa(m.PID)
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return func() { _ = os.Remove(path) }, nil
}

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
