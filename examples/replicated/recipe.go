// Package replicated is slum's recipe for a tenant that keeps its SQLite
// data through a failover (see README.md). Its Go side only carries the
// recipe's files, so that 'slum experiment --data' runs the recipe as
// shipped wherever slum is installed.
package replicated

import _ "embed"

// App is app.py, the recipe's test app: it acknowledges a write only once
// its transaction has committed.
//
//go:embed app.py
var App []byte

// LitestreamConfig is litestream.yml, Litestream's part of the recipe.
//
//go:embed litestream.yml
var LitestreamConfig []byte
