// Package fleettest holds what tests of slum.Fleet implementations share:
// the contract suite every implementation passes, and helpers for making
// what its operations take.
package fleettest

import (
	"testing"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
)

// Source packs a parsed fleet file (its tokens resolved) for Apply,
// failing the test when it cannot be sent.
func Source(tb testing.TB, f *desired.File) slum.FileSource {
	tb.Helper()
	src, err := desired.Send(f)
	if err != nil {
		tb.Fatal(err)
	}
	return src
}
