package desired

import (
	"github.com/slum-fleet/slum"
)

func invalid(field, value, reason string) error {
	return &slum.FieldError{Field: field, Value: value, Reason: reason}
}
