//go:build race

package main

// raceEnabled: the race detector slows the API (not the browser) several
// times over.
const raceEnabled = true
