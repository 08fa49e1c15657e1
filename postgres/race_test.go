//go:build race

package postgres

// raceEnabled: the race detector slows every reader several times over.
const raceEnabled = true
