package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/rebalance"

	"github.com/spf13/cobra"
)

// rebalanceResult is what 'slum rebalance' prints with -o json.
type rebalanceResult struct {
	Moves   []rebalance.Move `json:"moves"`
	Servers []rebalance.Load `json:"servers"`
	Applied bool             `json:"applied"`
}

func (a *app) rebalanceCommand() *cobra.Command {
	var maxMoves int
	var apply, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:         "rebalance [--max-moves N] [--apply [--wait=false] [--timeout D]]",
		Annotations: remoteOK,
		Short:       "Show (or make, with --apply) the moves that even out the fleet",
		Long: `Rebalance plans moves that even out the fleet: each server's placed memory
and instance count, as shares of its capacity. It keeps to the placement
rules: the tenant's region first (a copy in its region stays in it), never
two copies of a tenant's process on one server, never onto a server that is
cordoned, draining, not online, fencing or back from the dead for less than
stable_after, never beyond capacity; a spare moves before a serving copy
that would do as well, and a copy moves at most once. At most --max-moves.
A plan never leaves the fleet less even.

Without --apply it only prints the plan and each server's load before and
after. With --apply it warns what the moves stop (the data warnings of
'tenant move'), then moves each instance as 'tenant move' does: the
controller starts the new copy, then stops the old one (make-before-break),
and it becomes the instance's home. --apply waits (--timeout) until every
moved copy runs at its new server, unless --wait=false.

The fleet setting rebalance: on ('slum settings set --rebalance on') lets
the controller do this by itself, one move at a time at most every
rebalance_every (default 10m), when nothing else is moving. Exits 0 with
nothing to do too.`,
		Example: `  slum rebalance
  slum rebalance --max-moves 3 --apply
  slum -o json rebalance`,
		Args: exactArgs(),
		PreRunE: func(*cobra.Command, []string) error {
			if maxMoves < 1 || maxMoves > 10000 {
				return &slum.FieldError{Field: "--max-moves", Value: fmt.Sprint(maxMoves), Reason: "must be between 1 and 10000"}
			}
			return nil
		},
		RunE: a.withFleet(func(ctx context.Context, f slum.Fleet) error {
			in, err := rebalance.Read(ctx, f, time.Now())
			if err != nil {
				return err
			}
			moves := rebalance.Plan(in, maxMoves)
			res := rebalanceResult{Moves: moves, Servers: rebalance.Loads(in, moves)}
			if moves == nil {
				res.Moves = []rebalance.Move{}
			}
			if apply && len(moves) > 0 {
				if err := a.applyMoves(ctx, f, moves); err != nil {
					return err
				}
				res.Applied = true
			}
			if err := a.showRebalance(res); err != nil {
				return err
			}
			if res.Applied && wait {
				return a.waitMoves(ctx, f, moves, timeout)
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&maxMoves, "max-moves", 10, "at most this many moves")
	cmd.Flags().BoolVar(&apply, "apply", false, "make the moves (make-before-break, through the controller)")
	cmd.Flags().BoolVar(&wait, "wait", true, "with --apply, wait until every moved copy runs at its new server")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --apply waits")
	return cmd
}

// applyMoves warns what the moves stop, then makes them, as tenant move.
func (a *app) applyMoves(ctx context.Context, f slum.Fleet, moves []rebalance.Move) error {
	var ins []slum.Instance
	for _, m := range moves {
		in, err := f.GetInstance(ctx, m.Instance)
		if err != nil {
			return err
		}
		ins = append(ins, in)
	}
	a.warnStops(stopsOfMoves(ins))
	for i, m := range moves {
		if _, err := f.MoveInstance(ctx, m.Instance, m.To); err != nil {
			return fmt.Errorf("rebalance: %d of %d moves made; %s -> %s: %w", i, len(moves), m.Instance, m.To, err)
		}
	}
	return nil
}

func (a *app) showRebalance(res rebalanceResult) error {
	if a.json() {
		return a.printJSON(res)
	}
	if len(res.Moves) == 0 {
		fmt.Fprintln(a.stdout, "the fleet is as even as the rules allow: no move")
	} else {
		rows := make([][]string, len(res.Moves))
		for i, m := range res.Moves {
			rows[i] = []string{string(m.Instance), m.From, m.To, fmt.Sprint(m.MemoryMB)}
		}
		if err := a.table(nil, []string{"INSTANCE", "FROM", "TO", "MEMORY_MB"}, rows); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout)
	}
	rows := make([][]string, len(res.Servers))
	for i, l := range res.Servers {
		takes := "yes"
		if !l.Takes {
			takes = "no: " + l.Why
		}
		rows[i] = []string{l.Server, fmt.Sprintf("%d -> %d", l.Instances, l.InstancesNow),
			fmt.Sprintf("%d -> %d/%d", l.UsedMB, l.UsedMBNow, l.CapacityMB), takes}
	}
	if err := a.table(nil, []string{"SERVER", "INSTANCES", "USED_MB", "TAKES_COPIES"}, rows); err != nil {
		return err
	}
	if res.Applied {
		fmt.Fprintf(a.stdout, "%d moves made; the controller starts each new copy, then stops the old one\n", len(res.Moves))
	}
	return nil
}

// waitMoves waits until every moved copy runs at its new server.
func (a *app) waitMoves(ctx context.Context, f slum.Fleet, moves []rebalance.Move, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		left := 0
		for _, m := range moves {
			st, err := f.InstanceStatus(ctx, m.Instance)
			if err != nil && !errors.Is(err, slum.ErrNotFound) {
				return err
			}
			if st.ServerID != m.To || st.Phase != slum.PhaseRunning {
				left++
			}
		}
		if left == 0 {
			if !a.json() {
				fmt.Fprintf(a.stdout, "every moved copy runs at its new server\n")
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rebalance: %d of %d moved copies not running at their new server after %s ('slum status'): %w", left, len(moves), timeout, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
