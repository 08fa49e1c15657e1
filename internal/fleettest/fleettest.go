// Package fleettest is the contract every slum.Fleet passes, whatever it
// runs on: the store on each engine, and the API client in front of one.
// An implementation's own tests call Run (the Fleet's operations) and,
// for a store, RunStore (what the controller reads and writes), with a
// function that opens a new, empty fleet for each test.
package fleettest

import (
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/store"
)

// Subject is a fleet under test: the Fleet the tests drive, and the store
// behind it, for what only the controller does (its ledger, reports and
// failover moves) and for looking behind the Fleet. For a store, both are
// the store; for an API client, Store is the API's.
type Subject struct {
	slum.Fleet
	Store *store.Store
	// Stored is everything the engine keeps, as bytes, to show what it
	// keeps of a secret (its digest, never the secret).
	Stored func(testing.TB) []byte
}

// Opener opens a new, empty fleet for one test; the test's cleanup closes
// it.
type Opener func(t testing.TB) Subject

// StoreOpener opens a new, empty store for one test, with the clock now
// (nil: the real one).
type StoreOpener func(t testing.TB, now func() time.Time) *store.Store

// Run runs the Fleet contract: every operation's behaviour and errors.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Opener)
	}{
		{"ApplyNewServerNeedsAToken", ApplyNewServerNeedsAToken},
		{"ApplyErrorsFromTheDatabaseNameTheEntry", ApplyErrorsFromTheDatabaseNameTheEntry},
		{"PruneObeysTheRulesOfServerRemove", PruneObeysTheRulesOfServerRemove},
		{"MassPruneNeedsConfirmation", MassPruneNeedsConfirmation},
		{"DiffAndApplyAgree", DiffAndApplyAgree},
		{"ApplyCreatesThenChangesNothing", ApplyCreatesThenChangesNothing},
		{"ApplyUpdatesMovesAndPrunes", ApplyUpdatesMovesAndPrunes},
		{"ApplyRejectsAndChangesNothing", ApplyRejectsAndChangesNothing},
		{"ApplyDomainConflictWithUnlistedTenant", ApplyDomainConflictWithUnlistedTenant},
		{"ApplyDoesNotUndoAFailover", ApplyDoesNotUndoAFailover},
		{"ApplySettings", ApplySettings},
		{"ServerIntegrity", ServerIntegrity},
		{"TenantIntegrity", TenantIntegrity},
		{"ReplicatedData", ReplicatedData},
		{"InstanceIntegrity", InstanceIntegrity},
		{"Placement", Placement},
		{"DrainAndMove", DrainAndMove},
		{"RevisionBumpsOnDesiredWritesOnly", RevisionBumpsOnDesiredWritesOnly},
		{"RespawnAppliesEveryGivenFieldOrNothing", RespawnAppliesEveryGivenFieldOrNothing},
		{"APITokens", APITokens},
		{"APITokenInputIsChecked", APITokenInputIsChecked},
		{"OverviewCounts", OverviewCounts},
		{"SnapshotSharesRepeatedStrings", SnapshotSharesRepeatedStrings},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open) })
	}
}

// RunStore runs the store's contract: what the controller reads and
// writes, leases and the change log.
func RunStore(t *testing.T, open StoreOpener) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, StoreOpener)
	}{
		{"Lease", Lease},
		{"LeaseEpochFencesWrites", LeaseEpochFencesWrites},
		{"Leadership", Leadership},
		{"ChangedSinceReadsOnlyWhatChanged", ChangedSinceReadsOnlyWhatChanged},
		{"ChangedSinceRefusesWhatItCannotTell", ChangedSinceRefusesWhatItCannotTell},
		{"TokenNeverInJSON", TokenNeverInJSON},
		{"Rollouts", Rollouts},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open) })
	}
}

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
