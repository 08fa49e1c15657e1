package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/store"

	"github.com/spf13/cobra"
)

func (a *app) copyCommand() *cobra.Command {
	var from, to string
	var replace bool
	cmd := &cobra.Command{
		Use:   "copy --from DB --to DB [--replace]",
		Short: "Copy a fleet from one database to another: SQLite to Postgres, or back",
		Long: `Copy copies everything in the fleet database --from into --to: servers
with their tokens, tenants, instances as they are (failed over, ranked, of
their generation), the ownership ledger and removals, the settings, API
tokens (as their digests, with their ids: the tokens go on working), held
plans, events, the controller's last status and the revisions. Leases and
the change log stay behind; the target's controllers make their own.

A DB is a SQLite file's path or a postgres:// URL. Keep a URL's password off
the command line: PGPASSWORD or ~/.pgpass give it. --from must hold a fleet
(it is only read); --to is made when there is none. A --to that holds a
fleet is refused unless --replace is given: then its fleet is replaced.
The copy is one transaction on --to, and is read back and compared with
--from before the command says it is done; it fails naming the first
difference otherwise.

Stop the controllers of --from first ('slum run'): what they write during
the copy is not in it (the command warns when the source changed).`,
		Example: `  slum copy --from slum.db --to postgres://slum@db.internal/fleet
  slum copy --from postgres://slum@db.internal/fleet --to backup.db
  slum copy --from slum.db --to postgres://slum@db.internal/fleet --replace -o json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.copyFleet(cmd.Context(), from, to, replace)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the fleet database to copy: a SQLite file or a postgres:// URL (required)")
	cmd.Flags().StringVar(&to, "to", "", "the database to copy it into: a SQLite file or a postgres:// URL (required)")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace the fleet --to holds, if it holds one")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (a *app) copyFleet(ctx context.Context, from, to string, replace bool) error {
	if err := sameDatabase(from, to); err != nil {
		return err
	}
	src, err := openStore(ctx, from, false)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	dst, err := openStore(ctx, to, true)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	res, err := store.Copy(ctx, src, dst, replace)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if dst.Created() && !postgres.IsURL(to) {
			// A file this command made holds nothing worth keeping.
			for _, side := range []string{"", "-wal", "-shm"} {
				os.Remove(to + side)
			}
		}
		if errors.Is(err, store.ErrTargetNotEmpty) {
			return fmt.Errorf("%w; give --replace to replace it", err)
		}
		return err
	}
	if res.SourceChanged {
		a.warn("%s was written while it was copied (is a controller running on it?): the copy is the fleet as it was when the copy began; stop its controllers and copy again with --replace", absPath(from))
	}
	return a.sayCopied(absPath(from), absPath(to), res)
}

// sameDatabase refuses a copy of a database onto itself.
func sameDatabase(from, to string) error {
	same := from == to
	if !postgres.IsURL(from) && !postgres.IsURL(to) {
		a, errA := os.Stat(from)
		b, errB := os.Stat(to)
		same = same || (errA == nil && errB == nil && os.SameFile(a, b))
	}
	if same {
		return &slum.FieldError{Field: "--to", Value: absPath(to), Reason: "is the database --from names: a fleet is copied to another"}
	}
	return nil
}

func (a *app) sayCopied(from, to string, res *store.CopyResult) error {
	if a.json() {
		return a.printJSON(struct {
			From string `json:"from"`
			To   string `json:"to"`
			*store.CopyResult
		}{from, to, res})
	}
	var parts []string
	for _, table := range []string{"servers", "tenants", "instances", "placements", "removals", "api_tokens", "holds", "events",
		"instance_status", "server_status", "tenant_status"} {
		parts = append(parts, fmt.Sprintf("%d %s", res.Rows[table], strings.ReplaceAll(table, "_", " ")))
	}
	verb := "copied"
	if res.Replaced {
		verb = "copied, replacing the fleet it held,"
	}
	return a.say(nil, "%s the fleet from %s to %s, and read it back the same: %s; revision %d",
		verb, oneLine(from), oneLine(to), strings.Join(parts, ", "), res.Revision)
}
