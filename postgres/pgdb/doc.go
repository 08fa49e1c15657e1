// Package pgdb is the code sqlc generates from ../queries for the Postgres
// engine (never edited by hand; sqlc.yaml says how). Package postgres
// reaches it only through the db.Querier adapter internal/genquerier (at the module root) writes.
package pgdb
