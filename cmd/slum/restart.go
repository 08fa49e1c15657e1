package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/rollout"

	"github.com/spf13/cobra"
)

// restartCallTimeout bounds each call a rolling restart makes to a
// tenement server (a restart gets tenement's longest backoff more).
const restartCallTimeout = 10 * time.Second

// restartFlags are what 'slum restart' is asked.
type restartFlags struct {
	spec                    slum.RestartSpec
	resume, abandon, status bool
	id                      int64
}

func (a *app) restartCommand() *cobra.Command {
	var f restartFlags
	cmd := &cobra.Command{
		Use:         "restart [TENANT] [--process P] [--server S] [--all] [--parallel N] [--dry-run] | --resume | --abandon | --status",
		Annotations: remoteOK,
		Short:       "Restart copies one at a time, each healthy before the next (after shipping new code, say)",
		Long: `Restart restarts a tenant's copies (with --process, only those of that
process), every copy on a server (--server), or every copy in the fleet
(--all), through tenement (POST /api/instances/{process}:{id}/restart): one
at a time, or --parallel N at once (never two of one tenant), each waiting
for tenement to report it healthy before the next.

A tenant's copies that do not serve go first. Before the copy that serves
is restarted, the controller ('slum run' must be running) moves serving to
another healthy copy, a warm spare: with one, the tenant loses no request.
A tenant with one copy is down for its restart. The serving copy changes
back only if it should (the copy that serves keeps serving while it is up).

The first copy that is not healthy again within --timeout halts the
rollout: the copies after it are left untouched, the message says which
copy and why, and restart exits 1. --dry-run prints the order and changes
nothing.

Progress is shown on stderr (a bar on a terminal), as events ('slum
events': RolloutStarted, Restarted, RestartFailed, RolloutDone) and in
'slum status'. The rollout is kept in the fleet's database: interrupted
(Ctrl-C, a crash), 'slum restart --resume' goes on where it stopped, the
copy interrupted mid-restart restarted again. One rollout runs at a time;
--abandon gives an unfinished one up. --status shows the latest.

Locally the restarts run in this process with the servers' tokens from the
database; with --api they run in the API server, which keeps the tokens
(Ctrl-C then stops following, not the rollout). Exits 4 when nothing
matches, 5 while another rollout is unfinished.`,
		Example: `  slum restart alice
  slum restart --all --dry-run
  slum restart --server eu-1 --process api --parallel 2
  slum restart --resume`,
		Args: cobra.MaximumNArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if err := desired.ValidateID("tenant id", args[0]); err != nil {
					return err
				}
				f.spec.Tenant = args[0]
			}
			if f.spec.Server != "" {
				if err := desired.ValidateID("--server", f.spec.Server); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("parallel") && f.spec.Parallel < 1 {
				return &slum.FieldError{Field: "--parallel", Value: fmt.Sprint(f.spec.Parallel), Reason: "must be at least 1"}
			}
			modes := 0
			for _, m := range []bool{f.resume, f.abandon, f.status} {
				if m {
					modes++
				}
			}
			if modes > 1 || modes == 1 && (f.spec.Tenant != "" || f.spec.Server != "" || f.spec.All) {
				return usageError{errors.New("--resume, --abandon and --status go alone (with --id)")}
			}
			if modes == 0 {
				return f.spec.Validate()
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withRestarts(cmd, func(ctx context.Context, rs slum.Restarts, wait func()) error {
				return a.restart(ctx, rs, f, wait)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.spec.Process, "process", "", "only copies of this process")
	fl.StringVar(&f.spec.Server, "server", "", "every copy on this server")
	fl.BoolVar(&f.spec.All, "all", false, "every copy in the fleet")
	fl.IntVar(&f.spec.Parallel, "parallel", 1, "copies restarted at once (never two of one tenant)")
	fl.DurationVar(&f.spec.Timeout, "timeout", slum.DefaultRestartTimeout, "how long each copy has to be healthy again")
	fl.BoolVar(&f.spec.DryRun, "dry-run", false, "print the order; restart nothing")
	fl.BoolVar(&f.resume, "resume", false, "go on with the interrupted rollout")
	fl.BoolVar(&f.abandon, "abandon", false, "give the unfinished rollout up; copies not restarted stay untouched")
	fl.BoolVar(&f.status, "status", false, "show the latest rollout (or --id)")
	fl.Int64Var(&f.id, "id", 0, "the rollout --resume, --abandon or --status is about (default: the unfinished, or latest, one)")
	return cmd
}

// withRestarts runs fn with the fleet's rolling restarts: run in this
// process over the database (wait waits for them to stop), or by the API.
func (a *app) withRestarts(cmd *cobra.Command, fn func(ctx context.Context, rs slum.Restarts, wait func()) error) error {
	if a.remote() {
		c, err := a.client()
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(cmd.Context(), c, func() {})
	}
	st, err := a.open(cmd.Context(), dbMustExist)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := rollout.NewService(cmd.Context(), st, rollout.HTTPDial(restartCallTimeout), rollout.Config{})
	defer svc.Wait()
	return fn(cmd.Context(), svc, svc.Wait)
}

func (a *app) restart(ctx context.Context, rs slum.Restarts, f restartFlags, wait func()) error {
	var r slum.Rollout
	var err error
	switch {
	case f.status:
		if r, err = rs.GetRollout(ctx, f.id); err != nil {
			return err
		}
		return a.showRollout(r)
	case f.abandon:
		if r, err = rs.AbandonRollout(ctx, f.id); err != nil {
			return err
		}
		return a.say(r, "rollout %d abandoned; %d copies not restarted are untouched", r.ID, r.Counts()[slum.StepPending]+r.Counts()[slum.StepRestarting])
	case f.resume:
		r, err = rs.ResumeRollout(ctx, f.id)
	default:
		r, err = rs.Restart(ctx, f.spec)
	}
	if err != nil {
		return err
	}
	if f.spec.DryRun {
		return a.showRollout(r)
	}
	r, err = a.followRollout(ctx, rs, r)
	wait()
	if err != nil {
		return err
	}
	if a.json() {
		if perr := a.printJSON(r); perr != nil {
			return perr
		}
	}
	if r.State == slum.RolloutFailed {
		return fmt.Errorf("rollout %d halted: %s", r.ID, r.Message)
	}
	if !a.json() {
		fmt.Fprintf(a.stdout, "rollout %d %s: %s\n", r.ID, r.State, r.Message)
	}
	return nil
}

// followRollout shows r's progress until it finishes or ctx ends.
func (a *app) followRollout(ctx context.Context, rs slum.Restarts, r slum.Rollout) (slum.Rollout, error) {
	bar := newRolloutBar(a.stderr)
	defer bar.end()
	for {
		bar.show(r)
		if r.State.Finished() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			if a.remote() {
				return r, fmt.Errorf("stopped following rollout %d, which goes on in the API ('slum restart --status'): %w", r.ID, ctx.Err())
			}
			return r, fmt.Errorf("interrupted: rollout %d is unfinished; 'slum restart --resume' goes on where it stopped", r.ID)
		case <-time.After(200 * time.Millisecond):
		}
		next, err := rs.GetRollout(context.WithoutCancel(ctx), r.ID)
		if err != nil {
			return r, err
		}
		r = next
	}
}

// showRollout prints a rollout's steps in order (a dry run's: the plan).
func (a *app) showRollout(r slum.Rollout) error {
	rows := make([][]string, len(r.Steps))
	for i, s := range r.Steps {
		took := ""
		if !s.FinishedAt.IsZero() && !s.StartedAt.IsZero() {
			took = s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		}
		state := string(s.State)
		if r.ID == 0 {
			state = "planned"
		}
		rows[i] = []string{fmt.Sprint(i + 1), string(s.Instance), s.Server, yesNo(s.Serving), state, took, s.Message}
	}
	if err := a.table(r, []string{"ORDER", "INSTANCE", "SERVER", "SERVING", "STATE", "TOOK", "MESSAGE"}, rows); err != nil {
		return err
	}
	if !a.json() && r.ID != 0 {
		fmt.Fprintf(a.stdout, "rollout %d (%s): %s %s\n", r.ID, r.Spec, r.State, r.Message)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// rolloutBar shows a rollout's progress on stderr: a bar redrawn in place
// on a terminal, a line per copy finished otherwise.
type rolloutBar struct {
	w    io.Writer
	tty  bool
	seen map[slum.InstanceKey]slum.StepState
}

func newRolloutBar(w io.Writer) *rolloutBar {
	return &rolloutBar{w: w, tty: isTerminal(w), seen: map[slum.InstanceKey]slum.StepState{}}
}

func (b *rolloutBar) show(r slum.Rollout) {
	c := r.Counts()
	finished := c[slum.StepDone] + c[slum.StepSkipped] + c[slum.StepFailed]
	for i, s := range r.Steps {
		if b.seen[s.Instance] == s.State {
			continue
		}
		b.seen[s.Instance] = s.State
		var line string
		switch s.State {
		case slum.StepDone:
			line = fmt.Sprintf("restarted %s on %s: healthy after %s", s.Instance, s.Server, s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond))
		case slum.StepSkipped:
			line = fmt.Sprintf("skipped %s: %s", s.Instance, s.Message)
		case slum.StepFailed:
			line = fmt.Sprintf("%s on %s failed: %s", s.Instance, s.Server, s.Message)
		default:
			continue
		}
		b.line(fmt.Sprintf("slum: [%d/%d] %s", i+1, len(r.Steps), line))
	}
	if b.tty {
		const width = 30
		n := width * finished / max(len(r.Steps), 1)
		now := strings.Join(keys(r.Restarting()), ", ")
		fmt.Fprintf(b.w, "\r\033[Krestart [%s%s] %d/%d %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), finished, len(r.Steps), now)
	}
}

func (b *rolloutBar) line(s string) {
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s\n", s)
		return
	}
	fmt.Fprintln(b.w, s)
}

func (b *rolloutBar) end() {
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

func keys(ks []slum.InstanceKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}
