package postgres

import (
	"context"
	"fmt"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/slum-fleet/slum"
)

// schemaName is what FreshSchema accepts: a plain lower-case identifier,
// so it needs no quoting and cannot name anything but a schema.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// SchemaURL is dbURL (a postgres:// URL) with its search_path set to
// schema, so that a fleet opened at it lives in that schema alone.
func SchemaURL(dbURL, schema string) (string, error) {
	if !schemaName.MatchString(schema) {
		return "", &slum.FieldError{Field: "schema", Value: schema, Reason: "must be a lower-case identifier (a-z, 0-9, _)"}
	}
	if !IsURL(dbURL) {
		return "", &slum.FieldError{Field: "--db", Value: Redact(dbURL), Reason: "must be a postgres:// URL"}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", &slum.FieldError{Field: "--db", Value: Redact(dbURL), Reason: "is not a URL"}
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// FreshSchema drops schema (and all in it) from the database at dbURL and
// makes it again, empty; it returns the URL of a fleet in it. It is for
// throwaway fleets (an experiment's trial), never a user's.
func FreshSchema(ctx context.Context, dbURL, schema string) (string, error) {
	out, err := SchemaURL(dbURL, schema)
	if err != nil {
		return "", err
	}
	secret := passwordOf(dbURL)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", hidePassword(fmt.Errorf("connect to %s: %w: %w", Redact(dbURL), ErrUnreachable, err), secret)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, sql := range []string{"DROP SCHEMA IF EXISTS " + schema + " CASCADE", "CREATE SCHEMA " + schema} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return "", hidePassword(fmt.Errorf("%s in %s: %w", sql, Redact(dbURL), err), secret)
		}
	}
	return out, nil
}
