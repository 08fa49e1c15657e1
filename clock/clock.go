// Package clock is the time source slum's long-running parts take, so that
// tests drive time instead of sleeping. Real is the wall clock; a fake for
// tests lives in internal/fakeclock.
package clock

import "time"

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// After sends the time on the returned channel once d has passed.
	After(d time.Duration) <-chan time.Time
	// AfterFunc calls f in its own goroutine once d has passed; Stop on
	// the result cancels it.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker sends the time on its channel every d (d > 0), dropping
	// ticks a slow reader misses, as time.Ticker does.
	NewTicker(d time.Duration) Ticker
}

// Ticker is a running NewTicker.
type Ticker interface {
	C() <-chan time.Time
	// Stop ends the ticks (a tick already sent stays in the channel).
	Stop()
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports whether it was still pending.
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

func (Real) Now() time.Time                         { return time.Now() }
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (Real) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }
