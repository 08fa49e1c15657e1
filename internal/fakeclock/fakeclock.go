// Package fakeclock is a clock.Clock that moves only when a test says so.
package fakeclock

import (
	"sync"
	"time"

	"github.com/slum-fleet/slum/clock"
)

// Clock is a fake clock. The zero value is not usable; use New.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
	added   chan struct{} // signalled whenever a waiter is added
}

// waiter is a pending After, AfterFunc or tick of a ticker (every > 0:
// it is due again every after it fires).
type waiter struct {
	at      time.Time
	every   time.Duration
	ch      chan time.Time
	fn      func()
	stopped bool
}

var _ clock.Clock = (*Clock)(nil)

// New returns a clock set to start.
func New(start time.Time) *Clock { return &Clock{now: start, added: make(chan struct{}, 1)} }

// Now is the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires when the clock is advanced past now+d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.add(&waiter{at: c.Now().Add(d), ch: ch})
	return ch
}

// AfterFunc calls f when the clock is advanced past now+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	w := &waiter{at: c.Now().Add(d), fn: f}
	c.add(w)
	return timer{c, w}
}

// NewTicker ticks every d of fake time; a tick the reader has not taken
// yet is not doubled, as with time.Ticker.
func (c *Clock) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("fakeclock: non-positive interval for NewTicker")
	}
	w := &waiter{at: c.Now().Add(d), every: d, ch: make(chan time.Time, 1)}
	c.add(w)
	return ticker{timer{c, w}}
}

type timer struct {
	c *Clock
	w *waiter
}

func (t timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.w.stopped
	t.w.stopped = true
	for i, w := range t.c.waiters {
		if w == t.w {
			t.c.waiters = append(t.c.waiters[:i], t.c.waiters[i+1:]...)
			return was
		}
	}
	return false
}

type ticker struct{ t timer }

func (t ticker) C() <-chan time.Time { return t.t.w.ch }
func (t ticker) Stop()               { t.t.Stop() }

func (c *Clock) add(w *waiter) {
	c.mu.Lock()
	if w.every == 0 && !w.at.After(c.now) {
		c.mu.Unlock()
		c.fire(w, w.at)
		return
	}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case c.added <- struct{}{}:
	default:
	}
}

func (c *Clock) fire(w *waiter, at time.Time) {
	if w.ch != nil {
		select {
		case w.ch <- at:
		default: // a ticker's tick not taken yet
		}
	}
	if w.fn != nil {
		go w.fn()
	}
}

// Advance moves the clock by d, firing every waiter that comes due, in
// order of due time (a ticker once per interval passed, its reader
// keeping at most one tick). It returns how many fired.
func (c *Clock) Advance(d time.Duration) (fired int) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	for {
		c.mu.Lock()
		next := -1
		for i, w := range c.waiters {
			if !w.at.After(now) && (next < 0 || w.at.Before(c.waiters[next].at)) {
				next = i
			}
		}
		if next < 0 {
			c.mu.Unlock()
			return fired
		}
		w := c.waiters[next]
		at := w.at
		if w.every > 0 {
			w.at = w.at.Add(w.every)
		} else {
			c.waiters = append(c.waiters[:next], c.waiters[next+1:]...)
		}
		c.mu.Unlock()
		c.fire(w, at)
		fired++
	}
}

// Parked is signalled (at most one signal pending) whenever a timer is
// added: some goroutine went back to waiting on the clock.
func (c *Clock) Parked() <-chan struct{} { return c.added }

// Waiters is how many timers and tickers are pending.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// WaitForWaiters blocks until at least n timers are pending or the
// deadline (real time) passes; it reports whether they are.
func (c *Clock) WaitForWaiters(n int, deadline time.Duration) bool {
	limit := time.After(deadline)
	for {
		if c.Waiters() >= n {
			return true
		}
		select {
		case <-c.added:
		case <-limit:
			return c.Waiters() >= n
		case <-time.After(time.Millisecond):
		}
	}
}
