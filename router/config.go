package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum/clock"
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid router configuration")

// Config tunes the proxy. Start from DefaultConfig; every duration must be
// positive.
type Config struct {
	// DialTimeout bounds connecting to a tenement server (TCP and, for
	// https backends, the TLS handshake). A copy that cannot be connected
	// to within it is skipped for the next one.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers once the request is sent: 504 after it.
	ResponseHeaderTimeout time.Duration
	// ColdStartAllowance is added to ResponseHeaderTimeout for OnDemand
	// backends, whose first request may have to start the instance.
	ColdStartAllowance time.Duration
	// UpstreamIdleTimeout bounds the silence of an upstream mid-response
	// (or mid-upload) before the exchange is abandoned. Streams that go
	// quiet for longer than this (SSE without heartbeats) are cut.
	UpstreamIdleTimeout time.Duration
	// IdleConnTimeout is how long an unused upstream connection is kept
	// for reuse. Keep it below the upstream's own keep-alive timeout
	// (tenement closes idle connections after 30 s).
	IdleConnTimeout time.Duration
	// RetireGrace is how long an exchange in flight to a server that left
	// the route table (declared dead, or its copies moved away) may still
	// take before it is ended: a replayable request with no answer yet is
	// then retried on the copy that serves now, any other is answered 502
	// (or cut, when its response had begun).
	RetireGrace time.Duration
	// MaxIdleConnsPerBackend caps the idle connections kept per tenement
	// server; more are closed after use.
	MaxIdleConnsPerBackend int
	// MaxBodyBytes is the largest request body accepted (413 beyond it);
	// -1 accepts any size.
	MaxBodyBytes int64
	// RetryAfter is the Retry-After sent with a 503 for a tenant that has
	// no serving copy; whole seconds, 1 to 120.
	RetryAfter time.Duration
	// UpstreamTLS configures connections to https backends; nil uses the
	// system roots. ServerName is set per backend.
	UpstreamTLS *tls.Config
	// Clock tells the time for the route source's state and the table's
	// age; nil is the wall clock.
	Clock clock.Clock
}

// DefaultConfig is the configuration slum route starts from.
func DefaultConfig() Config {
	return Config{
		DialTimeout:            2 * time.Second,
		ResponseHeaderTimeout:  30 * time.Second,
		ColdStartAllowance:     30 * time.Second,
		UpstreamIdleTimeout:    5 * time.Minute,
		IdleConnTimeout:        20 * time.Second,
		RetireGrace:            500 * time.Millisecond,
		MaxIdleConnsPerBackend: 256,
		MaxBodyBytes:           64 << 20,
		RetryAfter:             time.Second,
	}
}

// Validate reports the first setting that is out of range.
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial timeout", c.DialTimeout},
		{"response header timeout", c.ResponseHeaderTimeout},
		{"cold start allowance", c.ColdStartAllowance},
		{"upstream idle timeout", c.UpstreamIdleTimeout},
		{"idle connection timeout", c.IdleConnTimeout},
		{"retire grace", c.RetireGrace},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s must be positive, not %v", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.MaxIdleConnsPerBackend < 0 {
		return fmt.Errorf("%w: max idle connections per backend must not be negative, not %d", ErrInvalidConfig, c.MaxIdleConnsPerBackend)
	}
	if c.MaxBodyBytes == 0 || c.MaxBodyBytes < -1 {
		return fmt.Errorf("%w: max body bytes must be positive or -1 (no limit), not %d", ErrInvalidConfig, c.MaxBodyBytes)
	}
	if c.RetryAfter < time.Second || c.RetryAfter > 2*time.Minute || c.RetryAfter%time.Second != 0 {
		return fmt.Errorf("%w: retry-after must be whole seconds from 1s to 2m, not %v", ErrInvalidConfig, c.RetryAfter)
	}
	return nil
}
