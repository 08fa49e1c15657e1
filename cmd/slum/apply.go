package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

func (a *app) applyCommand() *cobra.Command {
	var file string
	var opt slum.ApplyOptions
	var verbose bool
	cmd := &cobra.Command{
		Use:         "apply -f FLEET.yaml [--prune [--allow-mass-prune]] [--dry-run]",
		Annotations: remoteOK,
		Short:       "Make the desired state match a fleet file, in one transaction",
		Long: `Apply reads a fleet file (see examples/fleet.yaml; -f - reads standard
input), checks all of it, and makes the database match it in one
transaction: a file with any error changes nothing. Objects the file does
not name are kept unless --prune is given. Applying the same file again
changes nothing. Apply creates the fleet database when there is none.

A prune that would delete more than half of the fleet's servers, tenants or
instances is refused unless --allow-mass-prune is given: an incomplete file
would otherwise empty the fleet. A server the controller has yet to stop
copies on is never pruned, as with 'slum server remove'.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.applyFile(cmd, file, opt, verbose || opt.DryRun)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the fleet file, or - for standard input (required)")
	cmd.Flags().BoolVar(&opt.Prune, "prune", false, "delete servers, tenants and instances the file does not name")
	cmd.Flags().BoolVar(&opt.AllowMassPrune, "allow-mass-prune", false, "let --prune delete more than half of the servers, tenants or instances")
	cmd.Flags().BoolVar(&opt.DryRun, "dry-run", false, "print what would change and change nothing")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every change, not just the summary")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func (a *app) diffCommand() *cobra.Command {
	var file string
	opt := slum.ApplyOptions{DryRun: true}
	cmd := &cobra.Command{
		Use:         "diff -f FLEET.yaml [--prune [--allow-mass-prune]]",
		Annotations: remoteOK,
		Short:       "Print what 'slum apply' would change",
		Long: `Diff prints what 'slum apply' with the same flags would change, and fails
as that apply would (the same checks run, and nothing is written). Without
a fleet database it compares the file with an empty fleet.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.applyFile(cmd, file, opt, true)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the fleet file, or - for standard input (required)")
	cmd.Flags().BoolVar(&opt.Prune, "prune", false, "include the deletions 'apply --prune' would make")
	cmd.Flags().BoolVar(&opt.AllowMassPrune, "allow-mass-prune", false, "as with apply: let --prune delete more than half of the fleet")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// loadFleetFile reads the fleet file named by -f: a path, or - for
// standard input (token_file paths are then relative to the working
// directory).
func (a *app) loadFleetFile(path string) (*desired.File, error) {
	var f *desired.File
	var err error
	if path == "-" {
		f, err = desired.Load("stdin", a.stdin, ".", a.lookupEnv)
	} else {
		r, oerr := os.Open(path)
		if oerr != nil {
			// Bad input, as a --token-file that cannot be read is.
			reason := oerr.Error()
			if pe, ok := errors.AsType[*fs.PathError](oerr); ok {
				reason = pe.Err.Error()
			}
			return nil, &slum.FieldError{Field: "-f", Value: path, Reason: "cannot be read: " + reason}
		}
		defer r.Close()
		f, err = desired.Load(path, r, filepath.Dir(path), a.lookupEnv)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range f.Warnings {
		a.warn("%s", w)
	}
	return f, nil
}

// applyFile applies (or, with DryRun, diffs) a fleet file and prints the
// plan.
func (a *app) applyFile(cmd *cobra.Command, file string, opt slum.ApplyOptions, detail bool) error {
	f, err := a.loadFleetFile(file)
	if err != nil {
		return err
	}
	src, err := desired.Send(f)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	st, fresh, done, err := a.applyTarget(ctx, src, opt)
	if err != nil {
		return err
	}
	defer done()
	if f.Settings != nil {
		// What the file's settings make (or would make) of the fleet's.
		if cur, err := st.Settings(ctx); err == nil {
			a.warnSettings(f.Settings.Over(cur))
		}
	}
	if !opt.DryRun && !fresh { // a new database has nothing to stop
		stops, unchanged := previewApply(ctx, st, src, opt)
		// Over the API the apply goes on: it is where an admin token is
		// asked for, and the dry run takes a read token.
		if unchanged != nil && !a.remote() {
			return a.printPlan(unchanged, f.Name, false, detail, opt.Prune)
		}
		a.warnStops(stops)
	}
	plan, err := st.Apply(ctx, src, opt)
	if opt.DryRun && plan != nil {
		a.warnStops(plan.Stops)
	}
	var mass *slum.MassPruneError
	if errors.As(err, &mass) {
		if perr := a.printPlan(plan, f.Name, true, true, opt.Prune); perr != nil {
			return perr
		}
		return fmt.Errorf("%w; is the file complete? If this is meant, add --allow-mass-prune", err)
	}
	if err != nil {
		return err
	}
	return a.printPlan(plan, f.Name, opt.DryRun, detail, opt.Prune)
}

// applyTarget is the fleet an apply or diff of f goes to: the API's, or
// the database, which a dry run never creates (it compares with an empty
// fleet instead) and an apply creates only for a file that applies; fresh
// says it was made just now, empty.
func (a *app) applyTarget(ctx context.Context, f slum.FileSource, opt slum.ApplyOptions) (_ slum.Fleet, fresh bool, _ func(), _ error) {
	if a.remote() {
		c, err := a.client()
		if err != nil {
			return nil, false, nil, err
		}
		return c, false, func() { c.Close() }, nil
	}
	var st *store.Store
	var err error
	if opt.DryRun {
		st, err = a.open(ctx, dbMustExist)
		if errors.Is(err, slum.ErrNotFound) {
			// Nothing to compare with: compare with an empty fleet, and
			// create nothing.
			fmt.Fprintf(a.stderr, "slum: no fleet database at %s yet: comparing %s with an empty fleet\n", oneLine(absPath(a.dbPath)), oneLine(f.Name))
			st, err = sqlite.Open(ctx, ":memory:")
		}
	} else {
		if _, serr := os.Stat(a.dbPath); errors.Is(serr, fs.ErrNotExist) && !postgres.IsURL(a.dbPath) {
			// A file apply would reject must not leave a new database
			// behind: try it on an empty fleet first.
			if err := rehearse(ctx, f, opt); err != nil {
				return nil, false, nil, err
			}
		}
		st, err = a.open(ctx, dbMayCreate)
	}
	if err != nil {
		return nil, false, nil, err
	}
	return st, st.Created(), func() { st.Close() }, nil
}

// rehearse applies f to an empty fleet in memory.
func rehearse(ctx context.Context, f slum.FileSource, opt slum.ApplyOptions) error {
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		return err
	}
	defer st.Close()
	opt.DryRun = true
	_, err = st.Apply(ctx, f, opt)
	return err
}

func (a *app) printPlan(plan *slum.ChangeSet, name string, dryRun, detail, prune bool) error {
	if a.json() {
		changes := plan.Changes
		if changes == nil {
			changes = []slum.Change{}
		}
		return a.printJSON(struct {
			File     string        `json:"file"`
			DryRun   bool          `json:"dry_run"`
			Changes  []slum.Change `json:"changes"`
			Notes    []string      `json:"notes"`
			Unlisted int           `json:"unlisted"`
		}{name, dryRun, changes, append([]string{}, plan.Notes...), plan.Unlisted})
	}
	if plan.Empty() {
		fmt.Fprintf(a.stdout, "no changes: the database already matches %s\n", name)
	} else {
		if detail {
			for _, c := range plan.Changes {
				fmt.Fprintln(a.stdout, c.String())
			}
		}
		verb := "applied"
		if dryRun {
			verb = "would apply"
		}
		fmt.Fprintf(a.stdout, "%s %s: %s\n", verb, name, plan.Summary())
	}
	for _, n := range plan.Notes {
		fmt.Fprintln(a.stdout, "note: "+n)
	}
	if plan.Unlisted > 0 && !prune {
		fmt.Fprintf(a.stdout, "%d objects in the database are not in %s and are kept (--prune removes them)\n", plan.Unlisted, name)
	}
	return nil
}
