package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/desired"
)

// Exit codes. Scripts can tell a bad request from a failure.
const (
	exitOK       = 0
	exitFailure  = 1 // something went wrong (I/O, database, servers)
	exitUsage    = 2 // bad command line
	exitInvalid  = 3 // bad input: an id, domain, URL or file
	exitNotFound = 4 // no such server, tenant or instance
	exitConflict = 5 // already exists, conflicts, no capacity, in use
)

// app is one invocation of the CLI.
type app struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)

	dbPath string
	output string
}

type usageError struct{ error }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "slum: "+err.Error())
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	msg := err.Error()
	switch {
	case errors.As(err, &ue), strings.HasPrefix(msg, "required flag"), strings.HasPrefix(msg, "unknown command"),
		strings.HasPrefix(msg, "unknown flag"), strings.HasPrefix(msg, "unknown shorthand flag"):
		return exitUsage
	case errors.Is(err, desired.ErrInvalid):
		return exitInvalid
	case errors.Is(err, desired.ErrNotFound):
		return exitNotFound
	case errors.Is(err, desired.ErrAlreadyExists), errors.Is(err, desired.ErrConflict),
		errors.Is(err, desired.ErrNoCapacity), errors.Is(err, desired.ErrHasActiveTenants):
		return exitConflict
	}
	return exitFailure
}

func (a *app) rootCommand() *cobra.Command {
	defaultDB := "slum.db"
	if v, ok := a.lookupEnv("SLUM_DB"); ok && v != "" {
		defaultDB = v
	}
	root := &cobra.Command{
		Use:   "slum",
		Short: "A fleet controller for tenement servers",
		Long: `slum makes many tenement servers one fleet. Declare servers, tenants and
their instances (by command or with a fleet file), and 'slum run' keeps the
real servers matching that desired state.

Exit codes: 0 ok, 1 failure, 2 bad usage, 3 invalid input, 4 not found,
5 conflict (already exists, in use, no capacity).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("-o must be table or json, not %q", a.output)}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&a.dbPath, "db", defaultDB, "the fleet database (env SLUM_DB)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(a.serverCommand(), a.tenantCommand(), a.instanceCommand(),
		a.applyCommand(), a.diffCommand(), a.statusCommand(), a.eventsCommand(), a.approveCommand(), a.settingsCommand(), a.runCommand(), a.simCommand(), a.demoCommand())
	return root
}

// open opens the fleet database named by --db.
func (a *app) open(ctx context.Context) (*desired.Store, error) {
	return desired.Open(ctx, a.dbPath)
}

// withStore runs fn with the database open.
func (a *app) withStore(fn func(ctx context.Context, s *desired.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		s, err := a.open(cmd.Context())
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(cmd.Context(), s)
	}
}

func (a *app) json() bool { return a.output == "json" }

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header, or v as JSON with -o json.
func (a *app) table(v any, header []string, rows [][]string) error {
	if a.json() {
		return a.printJSON(v)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// say prints a confirmation in table mode, or v as JSON.
func (a *app) say(v any, format string, args ...any) error {
	if a.json() {
		return a.printJSON(v)
	}
	_, err := fmt.Fprintf(a.stdout, format+"\n", args...)
	return err
}

// exactArgs is cobra.ExactArgs with a usage error naming the arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageError{fmt.Errorf("%s takes %d argument(s): %s (got %d); see --help",
				cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))}
		}
		return nil
	}
}
