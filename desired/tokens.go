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
	"unicode"
	"unicode/utf8"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

// ValidateAPIRole checks a role named by a user.
func ValidateAPIRole(field string, r slum.APIRole) error {
	for _, known := range slum.APIRoles {
		if r == known {
			return nil
		}
	}
	return invalid(field, string(r), "must be admin, read or router")
}

// APITokenPrefix starts every API token, so that one found in a file or a
// log is recognised for what it is.
const APITokenPrefix = "slum_"

// apiTokenBytes is the randomness in a token: 256 bits, so a digest
// compared in constant time is all a check needs (no slow hash).
const apiTokenBytes = 32

// apiTokenLen is the length of a token: the prefix and the bytes in
// unpadded base64url.
var apiTokenLen = len(APITokenPrefix) + base64.RawURLEncoding.EncodedLen(apiTokenBytes)

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

func toAPIToken(r db.ApiToken) slum.APIToken {
	return slum.APIToken{ID: r.ID, Name: r.Name, Role: slum.APIRole(r.Role), CreatedAt: fromMS(r.CreatedAt), RevokedAt: fromMS(r.RevokedAt)}
}

// CreateAPIToken makes a new API token with role and name. It returns the
// token's record and the token itself, which exists nowhere else: the
// database keeps only its digest.
func (s *Store) CreateAPIToken(ctx context.Context, role slum.APIRole, name string) (slum.APIToken, string, error) {
	if err := ValidateAPIRole("role", role); err != nil {
		return slum.APIToken{}, "", err
	}
	if err := ValidateTokenName("name", name); err != nil {
		return slum.APIToken{}, "", err
	}
	b := make([]byte, apiTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return slum.APIToken{}, "", fmt.Errorf("make API token: %w", err)
	}
	secret := APITokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	var out slum.APIToken
	now := ms(s.now())
	err := s.db.InTx(ctx, func(q *db.Queries) error {
		r, err := q.InsertAPIToken(ctx, db.InsertAPITokenParams{Name: name, Role: string(role), Digest: apiTokenDigest(secret), CreatedAt: now})
		if err != nil {
			return fmt.Errorf("create API token: %w", err)
		}
		out = toAPIToken(r)
		return event(ctx, q, now, slum.APITokenRef(r.ID), slum.ReasonAdded, fmt.Sprintf("API token %d (%s) created for role %s", r.ID, orDash(name), role))
	})
	if err != nil {
		return slum.APIToken{}, "", err
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
func (s *Store) ListAPITokens(ctx context.Context) ([]slum.APIToken, error) {
	rows, err := s.db.Queries().ListAPITokens(ctx)
	return convert(rows, err, "list API tokens", toAPIToken)
}

// RevokeAPIToken stops the token id from working, at once: every request
// checks the database. Revoking a revoked token is a conflict.
func (s *Store) RevokeAPIToken(ctx context.Context, id int64) (slum.APIToken, error) {
	if id <= 0 {
		return slum.APIToken{}, invalid("token id", itoa(id), "must be a positive number (see 'slum token list')")
	}
	var out slum.APIToken
	now := ms(s.now())
	err := s.db.InTx(ctx, func(q *db.Queries) error {
		r, err := q.GetAPIToken(ctx, id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("revoke: API token %d %w", id, slum.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke API token %d: %w", id, err)
		}
		n, err := q.RevokeAPIToken(ctx, db.RevokeAPITokenParams{RevokedAt: now, ID: id})
		if err != nil {
			return fmt.Errorf("revoke API token %d: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("revoke API token %d: %w: it was revoked already", id, slum.ErrConflict)
		}
		r.RevokedAt = now
		out = toAPIToken(r)
		return event(ctx, q, now, slum.APITokenRef(id), slum.ReasonRemoved, fmt.Sprintf("API token %d (%s, %s) revoked", id, orDash(r.Name), r.Role))
	})
	return out, err
}

// VerifyAPIToken returns the record of a working token. Anything else
// (malformed, unknown, revoked) fails with an error wrapping ErrBadToken,
// whose text never holds the token. The token is found by its digest and
// the digests are compared in constant time.
func (s *Store) VerifyAPIToken(ctx context.Context, token string) (slum.APIToken, error) {
	if len(token) != apiTokenLen || !strings.HasPrefix(token, APITokenPrefix) {
		return slum.APIToken{}, fmt.Errorf("%w: not a slum API token", slum.ErrBadToken)
	}
	want := apiTokenDigest(token)
	r, err := s.db.Queries().GetAPITokenByDigest(ctx, want)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.APIToken{}, fmt.Errorf("%w: no such token", slum.ErrBadToken)
	}
	if err != nil {
		return slum.APIToken{}, fmt.Errorf("check API token: %w", err)
	}
	if subtle.ConstantTimeCompare(r.Digest, want) != 1 {
		return slum.APIToken{}, fmt.Errorf("%w: no such token", slum.ErrBadToken)
	}
	t := toAPIToken(r)
	if t.Revoked() {
		return slum.APIToken{}, fmt.Errorf("%w: token %d was revoked", slum.ErrBadToken, t.ID)
	}
	return t, nil
}
