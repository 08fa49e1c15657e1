// Package db owns slum's SQLite database: opening it safely for a CLI and a
// controller that share one file, the numbered schema migrations embedded in
// the binary, and the sqlc-generated queries (queries.go, models.gen.go and
// *.sql.go are generated from ../queries by `sqlc generate`; never edit them).
package db
