package slum

import (
	"fmt"
	"strings"
)

// Op is what a change does.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// FieldChange is one field's old and new value. Tokens show as "(hidden)".
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Change is one object created, updated or deleted by an apply.
type Change struct {
	Op     Op            `json:"op"`
	Kind   ObjectKind    `json:"kind"` // server, tenant or instance
	ID     string        `json:"id"`   // instances: tenant:instance
	Fields []FieldChange `json:"fields,omitempty"`
	Note   string        `json:"note,omitempty"`
}

func (c Change) String() string {
	sign := map[Op]string{OpCreate: "+", OpUpdate: "~", OpDelete: "-"}[c.Op]
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", sign, c.Kind, c.ID)
	if len(c.Fields) > 0 {
		parts := make([]string, len(c.Fields))
		for i, f := range c.Fields {
			if c.Op == OpCreate {
				parts[i] = f.Field + "=" + f.New
			} else {
				parts[i] = fmt.Sprintf("%s: %s -> %s", f.Field, orNone(f.Old), orNone(f.New))
			}
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	if c.Note != "" {
		b.WriteString("  # " + c.Note)
	}
	return b.String()
}

// ChangeSet is what an apply changes, in the order it changes it.
type ChangeSet struct {
	Changes []Change `json:"changes"`
	// Notes say what differs from the file but is left as it is on
	// purpose, such as instances that failed over.
	Notes []string `json:"notes,omitempty"`
	// Unlisted counts objects in the database the file does not name; they
	// are kept unless the apply prunes.
	Unlisted int `json:"unlisted"`
	// Stops are the copies the change makes the controller stop: of
	// instances moved (once the new copy runs) or deleted. A stop deletes
	// the copy's data where its tenement service has storage_persist =
	// false, so users are told before the change.
	Stops []StoppedCopy `json:"stops,omitempty"`
}

// StoppedCopy is a copy of an instance a change stops.
type StoppedCopy struct {
	Instance InstanceKey `json:"instance"`
	Server   string      `json:"server"`
	// Moved: the instance moves elsewhere and this, its old copy, is
	// stopped once the new one runs; otherwise the instance is removed.
	Moved bool `json:"moved,omitempty"`
}

// Empty reports whether the change set changes nothing.
func (p *ChangeSet) Empty() bool { return len(p.Changes) == 0 }

// Counts returns how many objects are created, updated and deleted.
func (p *ChangeSet) Counts() (create, update, del int) {
	for _, c := range p.Changes {
		switch c.Op {
		case OpCreate:
			create++
		case OpUpdate:
			update++
		case OpDelete:
			del++
		}
	}
	return
}

// Summary is a one-line account of the change set.
func (p *ChangeSet) Summary() string {
	c, u, d := p.Counts()
	return fmt.Sprintf("%d to create, %d to update, %d to delete", c, u, d)
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Prune  bool // delete what the file does not name
	DryRun bool // plan only
	// AllowMassPrune lets a prune delete more than half of the fleet's
	// servers, tenants or instances; without it such a prune is refused
	// with a MassPruneError, as a file left incomplete by mistake would
	// otherwise empty the fleet.
	AllowMassPrune bool
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
