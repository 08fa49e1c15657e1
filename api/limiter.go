package api

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// AuthLimit bounds failed authentications from one client address: a
// token bucket of Burst failures that refills one every Every. An address
// whose bucket is empty gets 429 on every request until it refills; other
// addresses are never affected (a global lock-out would let anyone lock
// everyone out).
type AuthLimit struct {
	Burst int
	Every time.Duration
}

// DefaultAuthLimit allows 10 failures in a row, then one every 6 seconds.
var DefaultAuthLimit = AuthLimit{Burst: 10, Every: 6 * time.Second}

// failLimiter keeps one bucket per client address, as the time at which
// it would be full again (GCRA's "theoretical arrival time"): a single
// number, updated with compare-and-swap, so requests from one address
// never wait on requests from another.
type failLimiter struct {
	burst     time.Duration // (Burst-1) * Every: how far ahead a bucket may run
	every     time.Duration
	buckets   sync.Map // netip.Prefix -> *atomic.Int64 (unix nanoseconds)
	lastSweep atomic.Int64
}

func newFailLimiter(l AuthLimit) *failLimiter {
	if l.Burst < 1 {
		l.Burst = DefaultAuthLimit.Burst
	}
	if l.Every <= 0 {
		l.Every = DefaultAuthLimit.Every
	}
	return &failLimiter{burst: time.Duration(l.Burst-1) * l.Every, every: l.Every}
}

// clientKey is the bucket of a client address: the address itself for
// IPv4, its /64 for IPv6 (one host usually has a whole /64).
func clientKey(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// blocked reports whether the address may not try to authenticate now,
// and when it may.
func (l *failLimiter) blocked(key netip.Prefix, now time.Time) (bool, time.Duration) {
	v, ok := l.buckets.Load(key)
	if !ok {
		return false, 0
	}
	ahead := time.Duration(v.(*atomic.Int64).Load() - now.UnixNano())
	if ahead > l.burst {
		return true, ahead - l.burst
	}
	return false, 0
}

// fail takes one failure from the address's bucket.
func (l *failLimiter) fail(key netip.Prefix, now time.Time) {
	v, _ := l.buckets.LoadOrStore(key, new(atomic.Int64))
	tat := v.(*atomic.Int64)
	for {
		old := tat.Load()
		next := max(old, now.UnixNano()) + int64(l.every)
		if tat.CompareAndSwap(old, next) {
			break
		}
	}
	l.sweep(now)
}

// sweep forgets full buckets, at most once a minute, so addresses that
// failed once long ago take no memory.
func (l *failLimiter) sweep(now time.Time) {
	last := l.lastSweep.Load()
	if now.UnixNano()-last < int64(time.Minute) || !l.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	l.buckets.Range(func(k, v any) bool {
		if v.(*atomic.Int64).Load() < now.UnixNano() {
			l.buckets.Delete(k)
		}
		return true
	})
}
