package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/leader"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/traffic"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "status",
		Annotations: remoteOK,
		Short:       "A fleet overview: servers, their health, use and failover state, instance phases, held plans",
		Args:        exactArgs(),
		RunE: a.withFleet(func(ctx context.Context, st slum.Fleet) error {
			o, err := st.Overview(ctx)
			if err != nil {
				return err
			}
			tw, err := trafficNow(ctx, st, traffic.Query{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(struct {
					*slum.Overview
					Traffic *traffic.Window `json:"traffic,omitempty"`
				}{o, tw})
			}
			rows := make([][]string, len(o.Servers))
			for i, s := range o.Servers {
				running := "?"
				if s.Running != nil {
					running = fmt.Sprint(*s.Running)
				}
				failover := "-"
				if s.Failover != "" {
					failover = string(s.Failover) + ": " + s.FailoverReason
				}
				rows[i] = []string{s.ServerID, string(s.State), string(s.Health), fmt.Sprintf("%d/%d", s.UsedMB, s.CapacityMB),
					fmt.Sprint(s.Instances), running, fmt.Sprint(s.Unmanaged), fmt.Sprint(s.PendingStops), failover, dash(s.LastError)}
			}
			if err := a.table(nil, []string{"SERVER", "STATE", "HEALTH", "USED_MB", "INSTANCES", "RUNNING", "UNMANAGED", "PENDING_STOPS", "FAILOVER", "LAST_ERROR"}, rows); err != nil {
				return err
			}
			a.printController(o.Controller)
			switch {
			case o.ReportedAt.IsZero():
				fmt.Fprintln(a.stdout, "\nno controller has reported yet: start one with 'slum run'")
			case time.Since(o.ReportedAt) > time.Minute:
				fmt.Fprintf(a.stdout, "\nthe controller last reported %s ago: is 'slum run' running?\n", time.Since(o.ReportedAt).Round(time.Second))
			}
			fmt.Fprintf(a.stdout, "\n%d tenants, %d instances:", o.Tenants, o.Instances)
			for _, p := range slum.Phases {
				if n := o.Phases[p]; n > 0 {
					fmt.Fprintf(a.stdout, " %d %s", n, p)
				}
			}
			if o.FailedOver > 0 {
				fmt.Fprintf(a.stdout, "; %d failed over (away from their home server)", o.FailedOver)
			}
			fmt.Fprintln(a.stdout)
			printTraffic(a.stdout, tw)
			if r := o.Rollout; r != nil {
				c := r.Counts()
				fmt.Fprintf(a.stdout, "\nrolling restart %d of %s: %s, %d of %d copies restarted", r.ID, r.Spec, r.State, c[slum.StepDone], len(r.Steps))
				if now := r.Restarting(); len(now) > 0 {
					fmt.Fprintf(a.stdout, ", restarting %s", strings.Join(keys(now), ", "))
				}
				if r.Message != "" {
					fmt.Fprintf(a.stdout, " (%s)", r.Message)
				}
				fmt.Fprintln(a.stdout, "; 'slum restart --status'")
			}
			for _, h := range o.Holds {
				state := "HELD"
				if h.State == slum.HoldApproved {
					state = "APPROVED, being carried out"
				}
				fmt.Fprintf(a.stdout, "\n%s plan %d (%s, since %s): %s\n", state, h.ID, h.Kind, h.CreatedAt.Local().Format("15:04:05"), h.Summary)
				if h.State == slum.HoldHeld {
					fmt.Fprintf(a.stdout, "  see what it would do: slum approve %d --show; let it go ahead once: slum approve %d\n", h.ID, h.ID)
				}
			}
			return nil
		}),
	}
}

func (a *app) eventsCommand() *cobra.Command {
	var n int64
	var follow bool
	cmd := &cobra.Command{
		Use:         "events [-n N] [--follow]",
		Annotations: remoteOK,
		Short:       "Show the event log: placements, moves, server health changes, failures",
		Args:        exactArgs(),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if n < 0 {
				return &slum.FieldError{Field: "-n", Value: fmt.Sprint(n), Reason: "must be 0 or more"}
			}
			return nil
		},
		RunE: a.withFleet(func(ctx context.Context, st slum.Fleet) error {
			evs, err := st.RecentEvents(ctx, n)
			if err != nil {
				return err
			}
			if a.json() && !follow {
				return a.printJSON(append([]slum.Event{}, evs...))
			}
			var last int64
			show := func(evs []slum.Event) {
				for _, e := range evs {
					if a.json() {
						_ = a.printJSON(e)
					} else {
						fmt.Fprintf(a.stdout, "%s  %-28s %-18s %s\n", e.At.Local().Format("15:04:05.000"), e.Object, e.Reason, e.Message) // the longest reason: ServerUnauthorized
					}
					last = e.ID
				}
			}
			show(evs)
			file, _ := st.(fileFollower)
			gone := false
			for follow {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				if file != nil {
					var moved bool
					if moved, gone = followFile(ctx, file, gone, a.stderr); moved {
						// A restored file may hold fewer events than were
						// shown: go on from its newest.
						newest, err := st.RecentEvents(ctx, 1)
						if err != nil {
							return err
						}
						if len(newest) == 0 || newest[0].ID < last {
							last = 0
							if len(newest) > 0 {
								last = newest[0].ID
							}
						}
					}
				}
				evs, err := st.Events(ctx, last, 1000)
				if err != nil {
					return err
				}
				show(evs)
			}
			return nil
		}),
	}
	cmd.Flags().Int64VarP(&n, "lines", "n", 50, "how many recent events")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	return cmd
}

// fileFollower is a local fleet database whose file can be deleted or
// replaced under a command that follows it.
type fileFollower interface {
	Refresh(ctx context.Context) (reopened bool, err error)
}

// followFile checks a followed database once: it says on stderr when the
// file was deleted or replaced by what cannot be opened (once; gone says
// it was already) and when it is back, and opens a file put in its place,
// reporting moved.
func followFile(ctx context.Context, f fileFollower, gone bool, stderr io.Writer) (moved, stillGone bool) {
	reopened, err := f.Refresh(ctx)
	switch {
	case reopened:
		fmt.Fprintln(stderr, "slum: the fleet database's file changed; following the file now at the path")
	case errors.Is(err, store.ErrMoved):
		if !gone {
			fmt.Fprintf(stderr, "slum: %s; no new events until a fleet database is back at the path\n", oneLine(err.Error()))
		}
		return false, true
	case gone: // usable again, or unusable only for writes
		fmt.Fprintln(stderr, "slum: the fleet database's file is back; following it again")
	}
	return reopened, false
}

// printController says who leads (its epoch, how long since it renewed
// its lease), or that no controller acts on the fleet, and the standbys:
// the controllers the database heard from lately and, for a SQLite fleet
// on this host, any other 'slum run' waiting on its file.
func (a *app) printController(l *slum.Leadership) {
	round := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	switch {
	case l == nil:
		fmt.Fprintln(a.stdout, "\ncontroller: none has ever led this fleet")
	case l.Leader == "":
		fmt.Fprintln(a.stdout, "\ncontroller: NO LEADER, nothing acts on the fleet: the last one gave its lease up")
	case l.Live && !l.RenewedAt.IsZero():
		fmt.Fprintf(a.stdout, "\ncontroller: %s leads (epoch %d; renewed %s ago, its lease runs %s more)\n", l.Leader, l.Epoch,
			round(l.Ago(l.RenewedAt)), round(l.For()))
	case l.Live:
		fmt.Fprintf(a.stdout, "\ncontroller: %s leads (epoch %d; its lease runs %s more)\n", l.Leader, l.Epoch, round(l.For()))
	default:
		fmt.Fprintf(a.stdout, "\ncontroller: NO LIVE LEADER, nothing acts on the fleet: the lease of %s (epoch %d) lapsed %s ago\n",
			l.Leader, l.Epoch, round(l.For()))
	}
	listed := map[string]bool{}
	if l != nil {
		for _, c := range l.Standbys {
			listed[c.Holder] = true
			fmt.Fprintf(a.stdout, "standby: %s (seen %s ago, since %s)\n", c.Holder, round(l.Ago(c.SeenAt)), c.StartedAt.Local().Format("15:04:05"))
		}
	}
	if a.remote() || postgres.IsURL(a.dbPath) {
		return
	}
	ms, _ := sqlite.RunMarkers(a.dbPath)
	for _, m := range ms {
		switch {
		case leader.HolderGone(m.Holder) || m.Leading:
		case l != nil && l.Live && m.Holder == l.Leader:
			fmt.Fprintf(a.stdout, "controller: BUT IT STANDS BY, not acting on the fleet (since %s): %s\n", m.Updated.Local().Format("15:04:05"), oneLine(m.Reason))
		case listed[m.Holder]: // named from the database already
		default:
			fmt.Fprintf(a.stdout, "standby: %s (pid %d, since %s): %s\n", m.Holder, m.PID, m.Updated.Local().Format("15:04:05"), oneLine(m.Reason))
		}
	}
}
