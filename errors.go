package slum

import (
	"errors"
	"fmt"
)

// Errors callers check with errors.Is. Every error the Store returns for a
// rejected request wraps exactly one of these.
var (
	ErrNotFound         = errors.New("not found")
	ErrAlreadyExists    = errors.New("already exists")
	ErrConflict         = errors.New("conflict")
	ErrInvalid          = errors.New("invalid")
	ErrHasActiveTenants = errors.New("server has active tenants")
	ErrNoCapacity       = errors.New("no capacity")
	// ErrUnavailable: the fleet cannot be served now. From a store: its
	// database cannot be used (its file was deleted or replaced, or it is
	// read-only, full or failing), and the request changed nothing. From
	// the API: that, or the API is busy or shutting down (any 503). It
	// may succeed later.
	ErrUnavailable = errors.New("unavailable")
)

// FieldError says which field of which input was rejected, and why.
type FieldError struct {
	Where  string // a file position such as "fleet.yaml:12", or empty
	Field  string // e.g. "tenants[3].domain"
	Value  string // shown quoted, so that no character of it can break the message
	Reason string
	// NoValue marks an error about a field as a whole (unknown, given
	// twice, not a list) rather than about its value.
	NoValue bool
}

func (e *FieldError) Error() string {
	msg := e.Reason
	switch {
	case e.Field != "" && e.NoValue:
		msg = e.Field + ": " + e.Reason
	case e.Field != "":
		msg = fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
	}
	if e.Where != "" {
		msg = e.Where + ": " + msg
	}
	return msg
}

// Is makes every FieldError an ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// MassPruneError is an apply --prune refused because it would delete most
// of the fleet: more than half of its servers, tenants or instances. It
// wraps ErrConflict; ApplyOptions.AllowMassPrune lets it through.
type MassPruneError struct {
	File string
	// Deleted and Had count servers, tenants and instances, in that order.
	Deleted, Had [3]int
}

func (e *MassPruneError) Error() string {
	kinds := [3]string{"servers", "tenants", "instances"}
	msg := fmt.Sprintf("pruning with %s would delete most of the fleet:", e.File)
	sep := " "
	for i, k := range kinds {
		if e.Had[i] > 0 {
			msg += fmt.Sprintf("%s%d of %d %s", sep, e.Deleted[i], e.Had[i], k)
			sep = ", "
		}
	}
	return msg
}

// Unwrap makes a MassPruneError an ErrConflict.
func (e *MassPruneError) Unwrap() error { return ErrConflict }

// invalid is the FieldError of one rejected value.
func invalid(field, value, reason string) error {
	return &FieldError{Field: field, Value: value, Reason: reason}
}
