package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/logs"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed"

	"github.com/spf13/cobra"
)

func (a *app) logsCommand() *cobra.Command {
	var since, grep, level string
	var q logs.Query
	cmd := &cobra.Command{
		Use:         "logs TENANT[:INSTANCE] [-f] [--since DURATION|TIME] [--grep TEXT] [--level stdout|stderr] [-n N]",
		Annotations: remoteOK,
		Short:       "Show a tenant's log lines from every copy, merged in time order; -f follows them across failovers and moves",
		Long: `Logs shows the lines tenement keeps of a tenant's copies (or of one
instance's, with TENANT:INSTANCE): every copy's, read from the servers they
run on, merged in time order, each labelled with its copy (instance@server).
A copy is the instance on the server it is placed on, another the controller
reports running (the old copy of a move), and its home server's after a
failover. Lines of a copy whose server is dead or not answering, or that is
no longer where its instance runs, are marked so, in brackets after the copy.

tenement keeps the newest 10,000 lines of each server, all its instances
together, in memory: a restarted server has none. Its times are its own
clock's, to the millisecond.

With -f (--follow) slum keeps printing new lines until interrupted,
following the fleet: when a copy fails over, moves or is added, its lines
come within a second; a connection lost is said on stderr and made again;
no line is printed twice. What slum says about the reading (a copy lost,
found, unreadable, lines dropped) goes to stderr; the lines to stdout.

--since keeps lines from a time on: a duration back from now (10m, 1h30m),
an RFC 3339 time, or a local time (2026-05-01 12:00). --grep keeps lines
containing TEXT (case-sensitive; tenement's search). --level keeps stdout or
stderr lines. -n keeps the newest N lines (before following).

-o json prints one JSON object a line: time, instance, server, copy, level,
message, and gone for marked lines.

Locally it reads the servers' tokens from the fleet database; with --api a
read token is enough: the API reads the servers and never sends their
tokens. Exits 4 when the tenant or instance does not exist, 1 when no copy
could be read.

Examples:
  slum logs alice
  slum logs alice:prod -f
  slum logs alice --since 10m --grep "GET /api" --level stderr -o json`,
		Args: exactArgs("TENANT[:INSTANCE]"),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			tenant, instance, _ := strings.Cut(args[0], ":")
			q.Tenant, q.Instance, q.Grep, q.Level = tenant, instance, grep, observed.LogLevel(level)
			if strings.Contains(args[0], ":") && instance == "" {
				return &slum.FieldError{Field: "instance id", Value: instance, Reason: names.IDProblem(instance)}
			}
			if since != "" {
				t, err := logs.ParseSince(since, time.Now())
				if err != nil {
					return err
				}
				q.Since = t
			}
			return q.Validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := bufio.NewWriter(a.stdout)
			defer w.Flush()
			out := a.logOutput(w, q.Follow)
			if a.remote() {
				c, err := a.client()
				if err != nil {
					return err
				}
				defer c.Close()
				return c.Logs(cmd.Context(), q, out)
			}
			st, err := a.open(cmd.Context(), dbMustExist)
			if err != nil {
				return err
			}
			defer st.Close()
			return logs.Read(cmd.Context(), st, q, logs.Options{}, out)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&q.Follow, "follow", "f", false, "keep printing new lines, across failovers and moves, until interrupted")
	f.StringVar(&since, "since", "", "lines from then on: a duration back (10m) or a time")
	f.StringVar(&grep, "grep", "", "lines that contain TEXT (case-sensitive)")
	f.StringVar(&level, "level", "", "stdout or stderr lines only")
	f.IntVarP(&q.Lines, "lines", "n", 0, "the newest N lines (before following); 0: all the servers keep")
	return cmd
}

// logOutput prints lines to w (flushed after each when following) and
// notices to stderr.
func (a *app) logOutput(w *bufio.Writer, follow bool) logs.Output {
	enc := json.NewEncoder(w)
	return logs.Output{
		Line: func(l logs.Line) error {
			var err error
			if a.json() {
				err = enc.Encode(l)
			} else {
				err = writeLogLine(w, l)
			}
			if err == nil && follow {
				err = w.Flush()
			}
			return err
		},
		Notice: func(n logs.Notice) error {
			if err := w.Flush(); err != nil {
				return err
			}
			_, err := fmt.Fprintln(a.stderr, "slum: "+oneLine(n.String()))
			return err
		},
	}
}

// writeLogLine prints a line as the table shows it: local time to the
// millisecond, copy (marked when gone), level, message (its control
// characters escaped: an app's output must not play tricks on the
// terminal).
func writeLogLine(w io.Writer, l logs.Line) error {
	label := l.Copy
	if l.Gone != "" {
		label += " [" + l.Gone + "]"
	}
	_, err := fmt.Fprintf(w, "%s  %-14s  %-6s  %s\n", l.Time.Local().Format("2006-01-02 15:04:05.000"), label, l.Level, oneLine(l.Message))
	return err
}
