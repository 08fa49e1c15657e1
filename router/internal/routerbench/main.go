// Command routerbench runs the pieces of scripts/bench-router.sh: a fast
// backend, slum's router in front of it, or a plain httputil.ReverseProxy.
// The script points wrk at each, and at haproxy, in one run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/sqlite"
)

func main() {
	mode := flag.String("mode", "backend", "backend, slum, httputil, or fleet-db (write a fleet database for 'slum route' and exit)")
	dbPath := flag.String("db", "", "fleet-db: the database to write")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	backend := flag.String("backend", "", "backend base URL (slum, httputil)")
	domain := flag.String("domain", "bench.test", "tenant domain the slum router serves (the Host wrk sends)")
	accessLog := flag.Bool("access-log", false, "slum: write the access log (JSON) to stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "routerbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *mode == "fleet-db" {
		if err := fleetDB(*dbPath, *backend, *domain); err != nil {
			fmt.Fprintln(os.Stderr, "routerbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*mode, *listen, *backend, *domain, *accessLog); err != nil {
		fmt.Fprintln(os.Stderr, "routerbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(mode, listen, backend, domain string, accessLog bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	switch mode {
	case "backend":
		body := []byte("hello from the backend\n")
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		})
		return serve(ctx, ln, h)
	case "httputil":
		u, err := url.Parse(backend)
		if err != nil {
			return err
		}
		return serve(ctx, ln, httputil.NewSingleHostReverseProxy(u))
	case "slum":
		var log *slog.Logger
		if accessLog {
			log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
		}
		p, err := router.New(router.DefaultConfig(), log, nil)
		if err != nil {
			return err
		}
		defer p.Close()
		t := routes.New(1, []routes.Route{{Tenant: "bench", Domain: domain,
			Backends: []routes.Backend{{Instance: "bench:prod", Server: "local", URL: backend, Host: "prod.app." + domain}}}})
		if err := p.Set(t); err != nil {
			return err
		}
		srv, err := router.NewServer(router.DefaultServerConfig(), p, nil)
		if err != nil {
			return err
		}
		return srv.Serve(ctx, ln)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// fleetDB writes a fleet database in which tenant "bench" (domain) is
// served by its copy on a server at backend, as a controller would have
// decided it, so that 'slum route --db' routes to the backend.
func fleetDB(path, backend, domain string) error {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.AddServer(ctx, slum.Server{ID: "local", URL: backend, CapacityMB: 1024, Domain: "bench.local", Token: "unused"}); err != nil {
		return err
	}
	if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: "bench", Domain: domain},
		slum.InstanceSpec{ID: "prod", Process: "app", ServerID: "local"}); err != nil {
		return err
	}
	lease, err := st.AcquireLease(ctx, "controller", "routerbench", "", time.Minute)
	if err != nil {
		return err
	}
	defer st.ReleaseLease(ctx, lease.Fence())
	return st.WriteReport(ctx, lease.Fence(), slum.Report{
		Servers: []slum.ServerStatus{{ServerID: "local", Health: slum.HealthOnline, Listed: true, Instances: 1, UpdatedAt: time.Now()}},
		Tenants: []slum.TenantStatus{{TenantID: "bench", Serving: []slum.CopyRef{{Instance: "prod", Server: "local"}}, UpdatedAt: time.Now()}},
	})
}

func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
