package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServerConfig says where and how the proxy listens.
type ServerConfig struct {
	Addr string // host:port to listen on (the caller listens and passes Serve the listener)
	// TLSCertFile and TLSKeyFile (PEM) turn TLS on, with HTTP/2 offered
	// by ALPN. Both or neither.
	TLSCertFile, TLSKeyFile string
	// ReadHeaderTimeout bounds reading a request's headers (slow-loris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes client keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the size of a request's headers.
	MaxHeaderBytes int
	// ShutdownTimeout is how long in-flight requests may take to finish
	// once the server is told to stop; after it they are cut.
	ShutdownTimeout time.Duration
	// FastPath serves plain HTTP/1.1 requests without net/http's server
	// (see fastServer); TLS, HTTP/2, upgrades and anything unusual still
	// go to net/http. Off: net/http serves everything.
	FastPath bool
}

// DefaultServerConfig listens on loopback only, in plain HTTP.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Addr:              "127.0.0.1:8080",
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ShutdownTimeout:   30 * time.Second,
		FastPath:          true,
	}
}

// Server runs a Proxy on a listener. There are no request or write
// timeouts for whole exchanges: streams and large uploads may run long;
// the proxy's upstream timeouts bound the silence instead.
type Server struct {
	cfg   ServerConfig
	proxy *Proxy
	log   *slog.Logger
	tls   *tls.Config
}

// NewServer checks cfg and loads the TLS key pair, if any.
func NewServer(cfg ServerConfig, p *Proxy, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadHeaderTimeout <= 0 || cfg.IdleTimeout <= 0 || cfg.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("%w: read header, idle and shutdown timeouts must be positive", ErrInvalidConfig)
	}
	if cfg.MaxHeaderBytes <= 0 {
		return nil, fmt.Errorf("%w: max header bytes must be positive, not %d", ErrInvalidConfig, cfg.MaxHeaderBytes)
	}
	s := &Server{cfg: cfg, proxy: p, log: log}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, fmt.Errorf("%w: TLS needs both a certificate and a key file", ErrInvalidConfig)
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: TLS key pair %s, %s: %w", ErrInvalidConfig, cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	return s, nil
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish within ShutdownTimeout and
// ends upgraded connections. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.proxy,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	srv.RegisterOnShutdown(s.proxy.CloseTunnels)
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.Info("router listening", "addr", scheme+"://"+ln.Addr().String(), "fast_path", s.cfg.FastPath && s.tls == nil)
	served := make(chan error, 2)
	var fast *fastServer
	switch {
	case s.tls != nil:
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	case s.cfg.FastPath:
		slow := newHandoff(ln.Addr())
		fast = newFastServer(s.cfg, s.proxy, s.log, slow)
		go func() { served <- srv.Serve(slow) }()
		go func() {
			err := fast.serve(ln)
			if ctx.Err() == nil {
				srv.Close()
				<-served
				served <- err
			}
		}()
	default:
		go func() { served <- srv.Serve(ln) }()
	}
	select {
	case err := <-served:
		return fmt.Errorf("router: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var fastErr error
	if fast != nil {
		ln.Close()
		fastErr = fast.shutdown(sctx)
	}
	err := srv.Shutdown(sctx)
	if errors.Is(fastErr, context.DeadlineExceeded) && err == nil {
		err = fastErr
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("router shutdown: requests still in flight were cut", "after", s.cfg.ShutdownTimeout)
		srv.Close()
		err = nil
	}
	<-served // http.ErrServerClosed
	if err != nil {
		return fmt.Errorf("router: shutdown: %w", err)
	}
	return nil
}
