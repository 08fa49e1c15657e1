#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is needed, check that
# generated code is fresh and the code is clean, then run every test,
# including the contract suite and the end-to-end suite against real
# tenement servers (which need root for network namespaces), and a
# one-iteration run of every benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.tools/bin:$PATH"

echo "== sqlc: generated code must match queries/ and db/migrations/"
if ! sqlc diff; then
  echo "generated code is stale: run 'sqlc generate' (scripts/setup.sh installs it to .tools/bin)" >&2
  exit 1
fi

echo "== gofmt, go vet, staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...
if [ -x .tools/bin/staticcheck ]; then staticcheck ./...; fi

echo "== tests"
go test -count=1 -timeout 20m $(go list ./... | grep -v /e2e$)

echo "== end to end: real tenement servers in network namespaces (figures below)"
go test -count=1 -timeout 20m -v ./e2e/ 2>&1 | grep -vE '^\s+e2e_test.go:[0-9]+: FIGURE'

echo "== race detector on the concurrent packages"
go test -count=1 -race -timeout 20m ./reconcile/ ./observed/...

echo "== benchmarks, one iteration each (figures: scripts/bench.sh)"
go test -run '^$' -bench . -benchtime 1x -timeout 20m ./desired/ ./reconcile/
