package slum

import (
	"errors"
	"time"
)

// APIRole is what a token of the fleet's HTTP API may do.
type APIRole string

const (
	// RoleAdmin may do everything the CLI does.
	RoleAdmin APIRole = "admin"
	// RoleRead may read everything (status, desired state, events) and
	// change nothing.
	RoleRead APIRole = "read"
	// RoleRouter may read the route table and watch it: for routers that
	// follow the fleet from other machines.
	RoleRouter APIRole = "router"
)

// APIRoles lists every role.
var APIRoles = []APIRole{RoleAdmin, RoleRead, RoleRouter}

// APIToken describes a token of the HTTP API. The token itself is never
// kept: only its SHA-256 digest, to recognise it by.
type APIToken struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      APIRole   `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at"` // zero while it works
}

// Revoked reports whether the token was revoked.
func (t APIToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// ErrBadToken: the token presented is not one of the fleet's working API
// tokens (malformed, unknown or revoked). Which of these it was is not
// said to whoever presented it.
var ErrBadToken = errors.New("unknown or revoked API token")

// APITokenPrefix starts every API token, so that one found in a file or a
// log is recognised for what it is.
const APITokenPrefix = "slum_"
