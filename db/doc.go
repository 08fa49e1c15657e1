// Package db is slum's schema and its queries: the numbered SQLite
// migrations embedded in the binary (Migrations), and the code sqlc
// generates from ../queries (queries.go, querier.gen.go, models.gen.go and
// *.sql.go; never edit them). Its row types and Querier interface are what
// the store reads and writes on either engine: the SQLite engine (package
// sqlite) runs these queries; the Postgres engine runs its own, generated
// for Postgres, and hands back the same rows.
package db

import "embed"

// Migrations holds the SQLite schema's migrations, numbered in their names.
//
//go:embed migrations/*.sql
var Migrations embed.FS
