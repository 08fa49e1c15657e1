package wire

import (
	"errors"
	"net/http"

	"github.com/slum-fleet/slum"
)

// ErrorKind names what went wrong, in the error body of every response
// that is not a success.
type ErrorKind string

const (
	KindInvalid          ErrorKind = "invalid"            // 400: bad input (desired.ErrInvalid)
	KindNotFound         ErrorKind = "not_found"          // 404 (desired.ErrNotFound)
	KindAlreadyExists    ErrorKind = "already_exists"     // 409 (desired.ErrAlreadyExists)
	KindConflict         ErrorKind = "conflict"           // 409 (desired.ErrConflict)
	KindHasActiveTenants ErrorKind = "has_active_tenants" // 409 (desired.ErrHasActiveTenants)
	KindMassPrune        ErrorKind = "mass_prune"         // 409: a prune of most of the fleet (*desired.MassPruneError), with its plan
	KindNoCapacity       ErrorKind = "no_capacity"        // 422: unplaceable (desired.ErrNoCapacity)
	KindUnauthorized     ErrorKind = "unauthorized"       // 401: no token, or not a working one
	KindForbidden        ErrorKind = "forbidden"          // 403: the token's role may not do this
	KindRateLimited      ErrorKind = "rate_limited"       // 429: too many failed authentications from this address
	KindTooLarge         ErrorKind = "too_large"          // 413: the request body is too large
	KindUnsupported      ErrorKind = "unsupported"        // 405 or 415: wrong method or content type
	KindUnavailable      ErrorKind = "unavailable"        // 503: the API is busy or shutting down, or the fleet database cannot be used now (slum.ErrUnavailable)
	KindInternal         ErrorKind = "internal"           // 500
)

// Errors of the API itself, which the desired package does not know.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrRateLimited  = errors.New("rate limited")
	ErrUnavailable  = slum.ErrUnavailable
)

// kinds maps each kind to its HTTP status and the sentinel errors.Is
// finds in an error of that kind. Too large and unsupported requests are
// bad input: ErrInvalid.
var kinds = map[ErrorKind]struct {
	status   int
	sentinel error
}{
	KindInvalid:          {http.StatusBadRequest, slum.ErrInvalid},
	KindNotFound:         {http.StatusNotFound, slum.ErrNotFound},
	KindAlreadyExists:    {http.StatusConflict, slum.ErrAlreadyExists},
	KindConflict:         {http.StatusConflict, slum.ErrConflict},
	KindHasActiveTenants: {http.StatusConflict, slum.ErrHasActiveTenants},
	KindMassPrune:        {http.StatusConflict, slum.ErrConflict},
	KindNoCapacity:       {http.StatusUnprocessableEntity, slum.ErrNoCapacity},
	KindUnauthorized:     {http.StatusUnauthorized, ErrUnauthorized},
	KindForbidden:        {http.StatusForbidden, ErrForbidden},
	KindRateLimited:      {http.StatusTooManyRequests, ErrRateLimited},
	KindTooLarge:         {http.StatusRequestEntityTooLarge, slum.ErrInvalid},
	KindUnsupported:      {http.StatusUnsupportedMediaType, slum.ErrInvalid},
	KindUnavailable:      {http.StatusServiceUnavailable, ErrUnavailable},
	KindInternal:         {http.StatusInternalServerError, nil},
}

// KindOf classifies an error from the desired package.
func KindOf(err error) ErrorKind {
	var mass *slum.MassPruneError
	switch {
	case errors.As(err, &mass):
		return KindMassPrune
	case errors.Is(err, slum.ErrInvalid):
		return KindInvalid
	case errors.Is(err, slum.ErrNotFound):
		return KindNotFound
	case errors.Is(err, slum.ErrAlreadyExists):
		return KindAlreadyExists
	case errors.Is(err, slum.ErrHasActiveTenants):
		return KindHasActiveTenants
	case errors.Is(err, slum.ErrNoCapacity):
		return KindNoCapacity
	case errors.Is(err, slum.ErrConflict):
		return KindConflict
	case errors.Is(err, slum.ErrUnavailable):
		return KindUnavailable
	}
	return KindInternal
}

// Status is the HTTP status of an error of kind k.
func (k ErrorKind) Status() int {
	if v, ok := kinds[k]; ok {
		return v.status
	}
	return http.StatusInternalServerError
}

// Sentinel is the error errors.Is finds in an error of kind k: a
// desired.Err* or one of this package's; nil for internal errors.
func (k ErrorKind) Sentinel() error { return kinds[k].sentinel }

// KindForStatus classifies a response that carries no error body (from a
// proxy in between, say) by its status.
func KindForStatus(status int) ErrorKind {
	switch status {
	case http.StatusBadRequest:
		return KindInvalid
	case http.StatusNotFound:
		return KindNotFound
	case http.StatusConflict:
		return KindConflict
	case http.StatusUnprocessableEntity:
		return KindNoCapacity
	case http.StatusUnauthorized:
		return KindUnauthorized
	case http.StatusForbidden:
		return KindForbidden
	case http.StatusTooManyRequests:
		return KindRateLimited
	case http.StatusRequestEntityTooLarge:
		return KindTooLarge
	case http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return KindUnsupported
	case http.StatusServiceUnavailable:
		return KindUnavailable
	}
	return KindInternal
}

// Error is the body of every error response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong. Message is the error as the CLI prints
// it locally, in one line.
type ErrorBody struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
	// MassPrune and Plan come with KindMassPrune: the refused prune, and
	// what it would have done.
	MassPrune *slum.MassPruneError `json:"mass_prune,omitempty"`
	Plan      *slum.ChangeSet      `json:"plan,omitempty"`
}
