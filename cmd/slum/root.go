package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/leader"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes. Scripts can tell a bad request from a failure.
const (
	exitOK       = 0
	exitFailure  = 1 // something went wrong (I/O, database, servers)
	exitUsage    = 2 // bad command line
	exitInvalid  = 3 // bad input: an id, domain, URL or file
	exitNotFound = 4 // no such server, tenant or instance, or no database
	exitConflict = 5 // already exists, conflicts, no capacity, in use
)

// app is one invocation of the CLI.
type app struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)

	dbPath string // --db: a SQLite file's path, or a postgres:// URL
	dbURL  string // SLUM_DB_URL: a postgres:// URL, password and all, that no command line shows
	output string
	api    apiFlags
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
	fmt.Fprintln(stderr, "slum: "+oneLine(err.Error()))
	return exitCode(err)
}

// oneLine escapes control characters, so that no value quoted in an error
// (a file name, say) can split the message or play tricks on a terminal.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func exitCode(err error) int {
	if ce, ok := errors.AsType[interface {
		error
		ExitCode() int
	}](err); ok {
		return ce.ExitCode() // a command with exit codes of its own (guard)
	}
	var ue usageError
	msg := err.Error()
	switch {
	case errors.As(err, &ue), strings.HasPrefix(msg, "required flag"), strings.HasPrefix(msg, "unknown command"),
		strings.HasPrefix(msg, "unknown flag"), strings.HasPrefix(msg, "unknown shorthand flag"):
		return exitUsage
	case errors.Is(err, slum.ErrInvalid):
		return exitInvalid
	case errors.Is(err, slum.ErrNotFound):
		return exitNotFound
	case errors.Is(err, slum.ErrAlreadyExists), errors.Is(err, slum.ErrConflict),
		errors.Is(err, slum.ErrNoCapacity), errors.Is(err, slum.ErrHasActiveTenants):
		return exitConflict
	}
	return exitFailure
}

func (a *app) rootCommand() *cobra.Command {
	defaultDB := "slum.db"
	if v, ok := a.lookupEnv("SLUM_DB"); ok && v != "" {
		defaultDB = v
	}
	a.dbURL, _ = a.lookupEnv("SLUM_DB_URL")
	root := &cobra.Command{
		Use:   "slum",
		Short: "A fleet controller for tenement servers",
		Long: `slum makes many tenement servers one fleet. Declare servers, tenants and
their instances (by command or with a fleet file), and 'slum run' keeps the
real servers matching that desired state.

The fleet database (--db) is created by 'slum init', 'slum server add' and
'slum apply'; every other command needs it to exist. It is a SQLite file,
or a Postgres database for a fleet run from several hosts:
--db postgres://user@host/db (SLUM_DB_URL holds a URL with its password
off every command line; PGPASSWORD and ~/.pgpass work too).

With --api https://host:port and --api-token-file F (or SLUM_API and
SLUM_API_TOKEN_FILE) the commands drive a fleet elsewhere through its API
('slum serve', 'slum run --api-addr'), with the same output and exit codes.

Exit codes: 0 ok, 1 failure, 2 bad usage, 3 invalid input, 4 not found,
5 conflict (already exists, in use, no capacity).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("-o must be table or json, not %q", a.output)}
			}
			if err := a.chooseDB(cmd); err != nil {
				return err
			}
			return a.checkRemote(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{flagError(err)} })
	root.PersistentFlags().StringVar(&a.dbPath, "db", defaultDB, "the fleet database: a SQLite file, or a postgres:// URL (env SLUM_DB, or SLUM_DB_URL)")
	// Help shows the default, which SLUM_DB may have made a URL.
	root.PersistentFlags().Lookup("db").DefValue = postgres.Redact(defaultDB)
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	a.api.register(root, a.lookupEnv)
	root.AddCommand(a.initCommand(), a.serverCommand(), a.tenantCommand(), a.instanceCommand(),
		a.applyCommand(), a.diffCommand(), a.statusCommand(), a.eventsCommand(), a.approveCommand(), a.settingsCommand(),
		a.tokenCommand(), a.runCommand(), a.routeCommand(), a.serveCommand(), a.simCommand(), a.demoCommand(), a.experimentCommand())
	root.AddCommand(a.guardCommand())
	root.AddCommand(a.copyCommand())
	root.AddCommand(a.logsCommand())
	root.AddCommand(a.restartCommand(), a.rebalanceCommand())
	group(root)
	return root
}

// group makes cmd, a command that only holds subcommands, show its help
// when called alone and reject an unknown subcommand as a usage error.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		} else {
			msg += fmt.Sprintf("; see '%s --help'", cmd.CommandPath())
		}
		return usageError{errors.New(msg)}
	}
	return cmd
}

// flagError rewords pflag's complaint about a flag's value, which quotes
// the strconv error beneath it, for people.
func flagError(err error) error {
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return err
	}
	f := iv.GetFlag()
	why := "is not valid"
	switch f.Value.Type() {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		why = "must be a whole number"
	case "float32", "float64":
		why = "must be a number"
	case "duration":
		why = "must be a duration such as 500ms, 10s or 1m30s"
	case "bool":
		why = "must be true or false"
	}
	if errors.Is(err, strconv.ErrRange) {
		why = "is out of range"
	}
	return fmt.Errorf("invalid value %q for --%s: %s", iv.GetValue(), f.Name, why)
}

// dbUse says whether a command may create the fleet database.
type dbUse int

const (
	dbMustExist dbUse = iota // it reads or changes a fleet that exists
	dbMayCreate              // it makes a fleet: init, server add, apply
)

// chooseDB takes SLUM_DB_URL for --db unless --db is given: the URL's
// password stays off the command line.
func (a *app) chooseDB(cmd *cobra.Command) error {
	if a.dbURL == "" || cmd.Flags().Changed("db") {
		return nil
	}
	if !postgres.IsURL(a.dbURL) {
		return usageError{errors.New("SLUM_DB_URL must be a postgres:// URL; name a SQLite file with --db or SLUM_DB")}
	}
	if v, _ := a.lookupEnv("SLUM_DB"); v != "" && v != a.dbURL {
		return usageError{errors.New("SLUM_DB and SLUM_DB_URL name two databases: unset one, or give --db")}
	}
	a.dbPath = a.dbURL
	return nil
}

// openStore opens the fleet database db, a postgres:// URL or a SQLite
// file's path, creating the fleet only when create is set.
func openStore(ctx context.Context, db string, create bool) (*store.Store, error) {
	switch {
	case postgres.IsURL(db) && create:
		return postgres.Open(ctx, db)
	case postgres.IsURL(db):
		return postgres.OpenExisting(ctx, db)
	case create:
		return sqlite.Open(ctx, db)
	}
	return sqlite.OpenExisting(ctx, db)
}

// open opens the fleet database named by --db. Only commands that make a
// fleet create it, and say so; the others fail when it is missing, so
// that a mistyped path is not taken for an empty fleet.
func (a *app) open(ctx context.Context, use dbUse) (*store.Store, error) {
	if err := deletedUnderController(a.dbPath, use); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, a.dbPath, use == dbMayCreate)
	if errors.Is(err, slum.ErrNotFound) {
		return nil, fmt.Errorf("%w; create the fleet with 'slum init' (or 'slum server add', 'slum apply -f FILE'), "+
			"or point --db, SLUM_DB or SLUM_DB_URL at the fleet database", err)
	}
	if err != nil {
		return nil, err
	}
	if st.Engine() == "postgres" {
		if st.Created() {
			fmt.Fprintf(a.stderr, "slum: created the fleet in the database %s (it holds server tokens: let few read it)\n", oneLine(st.Where()))
		}
		return st, nil
	}
	if st.Created() {
		fmt.Fprintf(a.stderr, "slum: created the fleet database %s (mode 0600: it holds server tokens)\n", oneLine(absPath(a.dbPath)))
	} else if fi, err := os.Stat(a.dbPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		a.warn("the fleet database %q is open to other users (mode %04o) and holds server tokens: chmod 600 %q", a.dbPath, fi.Mode().Perm(), a.dbPath)
	}
	return st, nil
}

func (a *app) warn(format string, args ...any) {
	fmt.Fprintln(a.stderr, "slum: warning: "+oneLine(fmt.Sprintf(format, args...)))
}

// absPath is how messages name a database: a file by its absolute path,
// a URL without its password.
func absPath(p string) string {
	if postgres.IsURL(p) {
		return postgres.Redact(p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create an empty fleet database at --db (or SLUM_DB)",
		Long: `Init creates the fleet database, mode 0600 as it holds server tokens. On an
existing fleet database it changes nothing but bringing its schema up to
date. 'slum server add' and 'slum apply' also create the database; every
other command needs it to exist.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.open(cmd.Context(), dbMayCreate)
			if err != nil {
				return err
			}
			defer st.Close()
			path := absPath(st.Where())
			msg := "fleet database %s is ready (it existed)"
			if st.Created() {
				msg = "fleet database %s is ready (created, empty)"
			}
			return a.say(map[string]any{"db": path, "created": st.Created()}, msg, path)
		},
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

// positive checks a number flag the user gave: it must be at least 1.
func positive(cmd *cobra.Command, name string, v int64) error {
	if cmd.Flags().Changed(name) && v <= 0 {
		return &slum.FieldError{Field: "--" + name, Value: strconv.FormatInt(v, 10), Reason: "must be a positive whole number"}
	}
	return nil
}

// deletedUnderController refuses a SQLite database that is missing where a
// 'slum run' noted it used one (sqlite.RunMarker): it was deleted or moved
// under that controller. Creating an empty one there would let a second
// controller act on the fleet, knowing nothing of what runs on it, so no
// command creates it, and none suggests it.
func deletedUnderController(path string, use dbUse) error {
	if postgres.IsURL(path) {
		return nil
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ms, err := sqlite.RunMarkers(path)
	if err != nil || len(ms) == 0 {
		return nil
	}
	m := ms[0]
	who := fmt.Sprintf("'slum run' (pid %d, started %s) still runs on it", m.PID, m.Started.Format(time.RFC3339))
	if leader.HolderGone(m.Holder) {
		who = fmt.Sprintf("'slum run' (pid %d, started %s, no longer running) used it", m.PID, m.Started.Format(time.RFC3339))
	}
	class, verb := slum.ErrNotFound, "there is"
	if use == dbMayCreate {
		class, verb = slum.ErrConflict, "refusing to create a new one: there is"
	}
	return classedError{class, fmt.Sprintf("%s no fleet database at %s, but %s: the file was deleted or moved. "+
		"Put it (or its backup) back at that path: a running controller opens it again by itself. "+
		"A new, empty database would know nothing of what runs on the servers, and a second controller would act on them; "+
		"to start a new fleet there anyway, stop that controller and remove %s",
		verb, oneLine(absPath(path)), who, oneLine(m.Path))}
}

// classedError is a message of one of slum's error classes (exit codes).
type classedError struct {
	class error
	msg   string
}

func (e classedError) Error() string { return e.msg }
func (e classedError) Unwrap() error { return e.class }
