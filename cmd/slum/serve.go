package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/api"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/rollout"
	"github.com/slum-fleet/slum/store"
	"github.com/slum-fleet/slum/traffic"
)

// apiServeFlags are the API server's settings, shared by 'slum serve'
// (plain names) and 'slum run' (names prefixed api-, beside the router's).
type apiServeFlags struct {
	listen api.ListenConfig
	// traffic is the history the API serves; nil: its own, which routers
	// report to through the API.
	traffic *traffic.History
}

func (f *apiServeFlags) register(cmd *cobra.Command, prefix, addrFlag, addrDefault string) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen.Addr, addrFlag, addrDefault, "where the fleet API and dashboard listen (host:port); beyond loopback it needs TLS")
	fl.StringVar(&f.listen.CertFile, prefix+"tls-cert", "", "serve the API over HTTPS with this PEM certificate; give --"+prefix+"tls-key too")
	fl.StringVar(&f.listen.KeyFile, prefix+"tls-key", "", "the PEM key of --"+prefix+"tls-cert")
	fl.BoolVar(&f.listen.InsecureNoTLS, prefix+"insecure-no-tls", false, "serve plain HTTP beyond loopback (only when something else encrypts the traffic)")
	fl.BoolVar(&f.listen.NoAuth, prefix+"no-auth", false, "serve without API tokens: everyone is admin (loopback addresses only)")
}

// start serves the API over st until ctx ends; done yields Serve's end.
func (f *apiServeFlags) start(ctx context.Context, st *store.Store, log *slog.Logger) (url string, done <-chan error, err error) {
	ln, err := api.Listen(f.listen)
	if errors.Is(err, api.ErrUnsafe) {
		return "", nil, usageError{err}
	}
	if err != nil {
		return "", nil, err
	}
	// Rolling restarts asked through the API run here, with the store's
	// server tokens; one interrupted by a stop is resumed with --resume.
	restarts := rollout.NewService(ctx, st, rollout.HTTPDial(restartCallTimeout), rollout.Config{Log: log})
	srv := api.New(st, api.Config{NoAuth: f.listen.NoAuth, Traffic: f.traffic, Log: log, Restarts: restarts})
	ch := make(chan error, 1)
	go func() { ch <- srv.Serve(ctx, ln) }()
	log.Info("serving the fleet API and dashboard", "url", ln.URL+"/", "tls", ln.TLS)
	if f.listen.NoAuth {
		log.Warn("the fleet API serves without authentication: anyone on this machine may change the fleet")
	}
	return ln.URL, ch, nil
}

func (a *app) serveCommand() *cobra.Command {
	var sf apiServeFlags
	var logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR] [--tls-cert F --tls-key F] [--insecure-no-tls] [--no-auth]",
		Short: "Serve the fleet's HTTP API and dashboard over the database (no controller needed)",
		Long: `Serve serves the fleet's HTTP API, its watch stream and the dashboard (at /)
over the fleet database, for a fleet whose controller runs elsewhere or not
at all; 'slum run --api-addr' serves the same inside the controller.

Every request needs an API token ('slum token create'): a read token may
read everything, a router token the route table only, an admin token may do
all the CLI does. Failed authentications are limited per client address.

Nothing is served beyond loopback without TLS (--tls-cert, --tls-key)
unless --insecure-no-tls says so, and never without tokens: --no-auth works
on loopback addresses only. SIGTERM lets requests in flight finish.`,
		Example: `  slum token create --role admin --out admin.token
  slum serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
  slum --api https://fleet.example.com:8443 --api-token-file admin.token status`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(os.Stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := a.open(ctx, dbMustExist)
			if err != nil {
				return err
			}
			defer st.Close()
			_, done, err := sf.start(ctx, st, log)
			if err != nil {
				return err
			}
			if st.Engine() == "sqlite" { // Postgres has no file to follow
				fctx, stop := context.WithCancel(ctx)
				followed := make(chan struct{})
				go func() { followDatabase(fctx, st, log, clock.Real{}, time.Second); close(followed) }()
				defer func() { stop(); <-followed }() // before the store closes
			}
			if err := <-done; err != nil {
				return fmt.Errorf("serve the API: %w", err)
			}
			log.Info("stopped")
			return nil
		},
	}
	sf.register(cmd, "", "listen", "127.0.0.1:9470")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// followDatabase checks the fleet database every interval until ctx ends,
// for a process with no controller (whose elector does the same): it says
// loudly when the file cannot be written (deleted or replaced: writes are
// refused, 503 through the API, while reads answer from the connections
// open to the old file;
// read-only or full: writes fail), once a minute while that lasts and
// whenever the cause changes, and opens a file put in its place
// (restored, say) by itself.
func followDatabase(ctx context.Context, st *store.Store, log *slog.Logger, clk clock.Clock, every time.Duration) {
	t := clk.NewTicker(every)
	defer t.Stop()
	var down time.Time // since when the file is unusable; zero while it is fine
	var told time.Time
	var last string // the error last logged
	for {
		reopened, err := st.Refresh(ctx)
		if reopened {
			log.Warn("opened the fleet database again: its file had changed")
		}
		now := clk.Now()
		switch {
		case err == nil && !down.IsZero():
			log.Info("the fleet database can be written again", "after", now.Sub(down).Round(time.Millisecond))
			down = time.Time{}
		case err != nil && ctx.Err() == nil && (down.IsZero() || now.Sub(told) >= time.Minute || err.Error() != last):
			if down.IsZero() {
				down = now
			}
			log.Warn("the fleet database cannot be written: changes through the API fail until it can", "err", err.Error(), "since", down)
			told, last = now, err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}
