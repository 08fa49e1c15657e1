package desired

import (
	"github.com/slum-fleet/slum"
)

func invalid(field, value, reason string) error {
	return &slum.FieldError{Field: field, Value: value, Reason: reason}
}

// classed gives an error from below (the db package) one of this package's
// classes without changing its message.
type classed struct {
	err   error
	class error
}

func (e classed) Error() string   { return e.err.Error() }
func (e classed) Unwrap() []error { return []error{e.err, e.class} }
