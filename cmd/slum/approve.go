package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/user"
	"strconv"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"
)

func (a *app) approveCommand() *cobra.Command {
	var show bool
	cmd := &cobra.Command{
		Use:         "approve ID [--show]",
		Annotations: remoteOK,
		Short:       "Let a plan a safety rule held back go ahead, once",
		Long: `The controller holds back a plan that would stop much of the fleet for
instances that vanished from the database (the mass-stop guard), and
failovers while most servers look dead at once (it may be the one cut off).
'slum status' lists held plans by id; --show prints what one would do.

Approving lets that exact plan go ahead once. If the plan changes before the
controller carries it out (another server dies, the database changes), it is
a new plan and is held again: an approval never weakens the guard.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return &slum.FieldError{Field: "hold id", Value: args[0], Reason: "must be the number 'slum status' shows"}
			}
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				if show {
					return a.showHold(ctx, st, id)
				}
				who := "unknown"
				if u, err := user.Current(); err == nil {
					who = u.Username
				}
				h, err := st.ApproveHold(ctx, id, who+" (cli)")
				if err != nil {
					return err
				}
				return a.say(h, "plan %d approved once: %s\nthe running controller carries it out now ('slum events -f' to watch)", h.ID, h.Summary)
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&show, "show", false, "print what the held plan would do, and approve nothing")
	return cmd
}

func (a *app) showHold(ctx context.Context, st slum.Fleet, id int64) error {
	holds, err := st.RecentHolds(ctx, 1000)
	if err != nil {
		return err
	}
	for _, h := range holds {
		if h.ID != id {
			continue
		}
		if a.json() {
			return a.printJSON(h)
		}
		var detail struct {
			Servers []string `json:"servers"`
			Actions []string `json:"actions"`
		}
		_ = json.Unmarshal([]byte(h.Detail), &detail)
		fmt.Fprintf(a.stdout, "plan %d (%s), %s: %s\n", h.ID, h.Kind, h.State, h.Summary)
		for _, s := range detail.Actions {
			fmt.Fprintln(a.stdout, "  "+s)
		}
		return nil
	}
	return fmt.Errorf("hold %d %w", id, slum.ErrNotFound)
}
