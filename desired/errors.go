package desired

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
)

// FieldError says which field of which input was rejected, and why.
type FieldError struct {
	Where  string // a file position such as "fleet.yaml:12", or empty
	Field  string // e.g. "tenants[3].domain"
	Value  string
	Reason string
}

func (e *FieldError) Error() string {
	msg := e.Reason
	if e.Field != "" {
		msg = fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
	}
	if e.Where != "" {
		msg = e.Where + ": " + msg
	}
	return msg
}

// Is makes every FieldError an ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, value, reason string) error {
	return &FieldError{Field: field, Value: value, Reason: reason}
}
