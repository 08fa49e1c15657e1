package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ListenConfig says where and how the API listens.
type ListenConfig struct {
	Addr              string // host:port
	CertFile, KeyFile string // PEM; both or neither
	// InsecureNoTLS allows plain HTTP beyond loopback, for when something
	// else (a tunnel, a TLS-terminating proxy) encrypts the traffic.
	InsecureNoTLS bool
	// NoAuth: the API will serve without tokens; allowed only on a
	// loopback address.
	NoAuth bool
}

// ErrUnsafe: a listen configuration the API refuses, such as plain HTTP or
// no authentication beyond loopback.
var ErrUnsafe = errors.New("refused")

// Listener is a listener Listen checked and made: TLS when so configured.
type Listener struct {
	net.Listener
	URL string // e.g. https://127.0.0.1:8443
	TLS bool
}

// isLoopback reports whether host (of a listen address) can only be
// reached from this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen listens for the API. Nothing is served beyond loopback without
// TLS unless InsecureNoTLS says so, and never without authentication.
func Listen(lc ListenConfig) (Listener, error) {
	refuse := func(format string, args ...any) (Listener, error) {
		return Listener{}, fmt.Errorf("%w: "+format, append([]any{ErrUnsafe}, args...)...)
	}
	if (lc.CertFile == "") != (lc.KeyFile == "") {
		return refuse("--tls-cert and --tls-key go together")
	}
	withTLS := lc.CertFile != ""
	if withTLS && lc.InsecureNoTLS {
		return refuse("--insecure-no-tls and --tls-cert contradict each other: give one")
	}
	host, _, err := net.SplitHostPort(lc.Addr)
	if err != nil {
		return refuse("listen address %q: %v", lc.Addr, err)
	}
	loopback := isLoopback(host)
	if lc.NoAuth && !loopback {
		return refuse("serving the API without authentication (--no-auth) is allowed on a loopback address only, not %s", lc.Addr)
	}
	if !withTLS && !loopback && !lc.InsecureNoTLS {
		return refuse("serving the API on %s, beyond loopback, needs TLS: give --tls-cert and --tls-key (or --insecure-no-tls when something else encrypts the traffic)", lc.Addr)
	}
	var cfg *tls.Config
	if withTLS {
		cert, err := tls.LoadX509KeyPair(lc.CertFile, lc.KeyFile)
		if err != nil {
			return refuse("load --tls-cert and --tls-key: %v", err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	ln, err := net.Listen("tcp", lc.Addr)
	if err != nil {
		return Listener{}, fmt.Errorf("api: listen on %s: %w", lc.Addr, err)
	}
	// A host name may resolve beyond loopback: check what was bound.
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && loopback && !tcp.IP.IsLoopback() {
		ln.Close()
		return refuse("%s resolved to %s, which is not a loopback address", lc.Addr, tcp.IP)
	}
	scheme := "http"
	if cfg != nil {
		ln, scheme = tls.NewListener(ln, cfg), "https"
	}
	return Listener{Listener: ln, URL: scheme + "://" + ln.Addr().String(), TLS: cfg != nil}, nil
}
