package desired

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slum-fleet/slum/db"
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

// ValidateAPIRole checks a role named by a user.
func ValidateAPIRole(field string, r APIRole) error {
	for _, known := range APIRoles {
		if r == known {
			return nil
		}
	}
	return invalid(field, string(r), "must be admin, read or router")
}

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

// APITokenPrefix starts every API token, so that one found in a file or a
// log is recognised for what it is.
const APITokenPrefix = "slum_"

// apiTokenBytes is the randomness in a token: 256 bits, so a digest
// compared in constant time is all a check needs (no slow hash).
const apiTokenBytes = 32

// apiTokenLen is the length of a token: the prefix and the bytes in
// unpadded base64url.
var apiTokenLen = len(APITokenPrefix) + base64.RawURLEncoding.EncodedLen(apiTokenBytes)

// ErrBadToken: the token presented is not one of the fleet's working API
// tokens (malformed, unknown or revoked). Which of these it was is not
// said to whoever presented it.
var ErrBadToken = errors.New("unknown or revoked API token")

// maxTokenName bounds a token's name.
const maxTokenName = 64

// ValidateTokenName checks a token's name: what it is for ("ci",
// "ann's laptop"), printable, at most 64 characters; empty is allowed.
func ValidateTokenName(field, name string) error {
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return invalid(field, name, "must be printable text")
	}
	if utf8.RuneCountInString(name) > maxTokenName {
		return invalid(field, name, fmt.Sprintf("is longer than %d characters", maxTokenName))
	}
	return nil
}

func apiTokenDigest(token string) []byte {
	d := sha256.Sum256([]byte(token))
	return d[:]
}

func toAPIToken(r db.ApiToken) APIToken {
	return APIToken{ID: r.ID, Name: r.Name, Role: APIRole(r.Role), CreatedAt: fromMS(r.CreatedAt), RevokedAt: fromMS(r.RevokedAt)}
}

// CreateAPIToken makes a new API token with role and name. It returns the
// token's record and the token itself, which exists nowhere else: the
// database keeps only its digest.
func (s *Store) CreateAPIToken(ctx context.Context, role APIRole, name string) (APIToken, string, error) {
	if err := ValidateAPIRole("role", role); err != nil {
		return APIToken{}, "", err
	}
	if err := ValidateTokenName("name", name); err != nil {
		return APIToken{}, "", err
	}
	b := make([]byte, apiTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return APIToken{}, "", fmt.Errorf("make API token: %w", err)
	}
	secret := APITokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	var out APIToken
	now := ms(s.now())
	err := s.db.InTx(ctx, func(q *db.Queries) error {
		r, err := q.InsertAPIToken(ctx, db.InsertAPITokenParams{Name: name, Role: string(role), Digest: apiTokenDigest(secret), CreatedAt: now})
		if err != nil {
			return fmt.Errorf("create API token: %w", err)
		}
		out = toAPIToken(r)
		return event(ctx, q, now, "api-token/"+itoa(r.ID), ReasonAdded, fmt.Sprintf("API token %d (%s) created for role %s", r.ID, orDash(name), role))
	})
	if err != nil {
		return APIToken{}, "", err
	}
	return out, secret, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ListAPITokens returns every API token's record, revoked ones too, by id.
func (s *Store) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.db.Queries().ListAPITokens(ctx)
	return convert(rows, err, "list API tokens", toAPIToken)
}

// RevokeAPIToken stops the token id from working, at once: every request
// checks the database. Revoking a revoked token is a conflict.
func (s *Store) RevokeAPIToken(ctx context.Context, id int64) (APIToken, error) {
	if id <= 0 {
		return APIToken{}, invalid("token id", itoa(id), "must be a positive number (see 'slum token list')")
	}
	var out APIToken
	now := ms(s.now())
	err := s.db.InTx(ctx, func(q *db.Queries) error {
		r, err := q.GetAPIToken(ctx, id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("revoke: API token %d %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke API token %d: %w", id, err)
		}
		n, err := q.RevokeAPIToken(ctx, db.RevokeAPITokenParams{RevokedAt: now, ID: id})
		if err != nil {
			return fmt.Errorf("revoke API token %d: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("revoke API token %d: %w: it was revoked already", id, ErrConflict)
		}
		r.RevokedAt = now
		out = toAPIToken(r)
		return event(ctx, q, now, "api-token/"+itoa(id), ReasonRemoved, fmt.Sprintf("API token %d (%s, %s) revoked", id, orDash(r.Name), r.Role))
	})
	return out, err
}

// VerifyAPIToken returns the record of a working token. Anything else
// (malformed, unknown, revoked) fails with an error wrapping ErrBadToken,
// whose text never holds the token. The token is found by its digest and
// the digests are compared in constant time.
func (s *Store) VerifyAPIToken(ctx context.Context, token string) (APIToken, error) {
	if len(token) != apiTokenLen || !strings.HasPrefix(token, APITokenPrefix) {
		return APIToken{}, fmt.Errorf("%w: not a slum API token", ErrBadToken)
	}
	want := apiTokenDigest(token)
	r, err := s.db.Queries().GetAPITokenByDigest(ctx, want)
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, fmt.Errorf("%w: no such token", ErrBadToken)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("check API token: %w", err)
	}
	if subtle.ConstantTimeCompare(r.Digest, want) != 1 {
		return APIToken{}, fmt.Errorf("%w: no such token", ErrBadToken)
	}
	t := toAPIToken(r)
	if t.Revoked() {
		return APIToken{}, fmt.Errorf("%w: token %d was revoked", ErrBadToken, t.ID)
	}
	return t, nil
}
