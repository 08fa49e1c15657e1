package localfleet

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slum-fleet/slum"
)

// DirMarker marks a directory as a tool's own (the demo's, an
// experiment's), so that a rerun may wipe it and nothing else.
type DirMarker struct {
	File string // the marker file's name
	What string // what such a directory is, for errors: "a demo directory"
	Flag string // the option that chooses another directory
	Note string // the marker file's text
}

// PrepareDir makes dir an empty directory marked with m. It refuses a
// directory with files it did not mark (desired.ErrConflict).
func PrepareDir(dir string, m DirMarker) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, m.File)); err != nil {
			return fmt.Errorf("%w: %s exists and is not %s; choose another with %s", slum.ErrConflict, dir, m.What, m.Flag)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clear %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, m.File), []byte(m.Note), 0o644)
}
