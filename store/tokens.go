package store

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

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/desired"
)

// Tokens are the API's tokens, kept as digests.
type Tokens struct{ base }

// apiTokenBytes is the randomness in a token: 256 bits, so a digest
// compared in constant time is all a check needs (no slow hash).
const apiTokenBytes = 32

// apiTokenLen is the length of a token: the prefix and the bytes in
// unpadded base64url.
var apiTokenLen = len(slum.APITokenPrefix) + base64.RawURLEncoding.EncodedLen(apiTokenBytes)

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
func (s *Tokens) CreateAPIToken(ctx context.Context, role slum.APIRole, name string) (slum.APIToken, string, error) {
	if err := desired.ValidateAPIRole("role", role); err != nil {
		return slum.APIToken{}, "", err
	}
	if err := desired.ValidateTokenName("name", name); err != nil {
		return slum.APIToken{}, "", err
	}
	b := make([]byte, apiTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return slum.APIToken{}, "", fmt.Errorf("make API token: %w", err)
	}
	secret := slum.APITokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	var out slum.APIToken
	now := ms(s.now())
	err := s.eng.InTx(ctx, func(q db.Querier) error {
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
func (s *Tokens) ListAPITokens(ctx context.Context) ([]slum.APIToken, error) {
	rows, err := s.eng.Read().ListAPITokens(ctx)
	return convert(rows, err, "list API tokens", toAPIToken)
}

// RevokeAPIToken stops the token id from working, at once: every request
// checks the database. Revoking a revoked token is a conflict.
func (s *Tokens) RevokeAPIToken(ctx context.Context, id int64) (slum.APIToken, error) {
	if id <= 0 {
		return slum.APIToken{}, invalid("token id", itoa(id), "must be a positive number (see 'slum token list')")
	}
	var out slum.APIToken
	now := ms(s.now())
	err := s.eng.InTx(ctx, func(q db.Querier) error {
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
func (s *Tokens) VerifyAPIToken(ctx context.Context, token string) (slum.APIToken, error) {
	if len(token) != apiTokenLen || !strings.HasPrefix(token, slum.APITokenPrefix) {
		return slum.APIToken{}, fmt.Errorf("%w: not a slum API token", slum.ErrBadToken)
	}
	want := apiTokenDigest(token)
	// In a read transaction, not a lone statement: the engine classes its
	// errors, so a request while the database cannot be opened (its file
	// deleted, say) is answered 503, not 500.
	var r db.ApiToken
	err := s.eng.InReadTx(ctx, func(q db.Querier) error {
		var err error
		r, err = q.GetAPITokenByDigest(ctx, want)
		return err
	})
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
