package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/desired"
)

func (a *app) applyCommand() *cobra.Command {
	var file string
	var opt desired.ApplyOptions
	var verbose bool
	cmd := &cobra.Command{
		Use:   "apply -f FLEET.yaml [--prune] [--dry-run]",
		Short: "Make the desired state match a fleet file, in one transaction",
		Long: `Apply reads a fleet file (see examples/fleet.yaml), checks all of it, and
makes the database match it in one transaction: a file with any error
changes nothing. Objects the file does not name are kept unless --prune is
given. Applying the same file again changes nothing.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.applyFile(cmd, file, opt, verbose || opt.DryRun)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the fleet file (required)")
	cmd.Flags().BoolVar(&opt.Prune, "prune", false, "delete servers, tenants and instances the file does not name")
	cmd.Flags().BoolVar(&opt.DryRun, "dry-run", false, "print what would change and change nothing")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every change, not just the summary")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func (a *app) diffCommand() *cobra.Command {
	var file string
	var prune bool
	cmd := &cobra.Command{
		Use:   "diff -f FLEET.yaml [--prune]",
		Short: "Print what 'slum apply' would change",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.applyFile(cmd, file, desired.ApplyOptions{Prune: prune, DryRun: true}, true)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the fleet file (required)")
	cmd.Flags().BoolVar(&prune, "prune", false, "include the deletions 'apply --prune' would make")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// applyFile applies (or, with DryRun, diffs) a fleet file and prints the
// plan.
func (a *app) applyFile(cmd *cobra.Command, file string, opt desired.ApplyOptions, detail bool) error {
	f, err := desired.LoadFile(file)
	if err != nil {
		return err
	}
	return a.withStore(func(ctx context.Context, st *desired.Store) error {
		plan, err := st.Apply(ctx, f, opt)
		if err != nil {
			return err
		}
		return a.printPlan(plan, f.Name, opt.DryRun, detail, opt.Prune)
	})(cmd, nil)
}

func (a *app) printPlan(plan *desired.Plan, name string, dryRun, detail, prune bool) error {
	if a.json() {
		changes := plan.Changes
		if changes == nil {
			changes = []desired.Change{}
		}
		return a.printJSON(struct {
			File     string           `json:"file"`
			DryRun   bool             `json:"dry_run"`
			Changes  []desired.Change `json:"changes"`
			Unlisted int              `json:"unlisted"`
		}{name, dryRun, changes, plan.Unlisted})
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
	if plan.Unlisted > 0 && !prune {
		fmt.Fprintf(a.stdout, "%d objects in the database are not in %s and are kept (--prune removes them)\n", plan.Unlisted, name)
	}
	return nil
}
