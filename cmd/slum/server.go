package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/desired"
)

// tokenFlags read a server token from a file, a variable or stdin, never
// from the command line, where it would show in ps and shell history.
// --no-token says, explicitly, that there is none.
type tokenFlags struct {
	file  string
	env   string
	stdin bool
	none  bool
}

func (t *tokenFlags) register(cmd *cobra.Command, noTokenHelp string) {
	cmd.Flags().StringVar(&t.file, "token-file", "", "read the server's admin API token from this file (e.g. tenement's DATA_DIR/api_token)")
	cmd.Flags().StringVar(&t.env, "token-env", "", "read the server's admin API token from this environment variable")
	cmd.Flags().BoolVar(&t.stdin, "token-stdin", false, "read the server's admin API token from standard input")
	cmd.Flags().BoolVar(&t.none, "no-token", false, noTokenHelp)
}

// given reports whether any of the token flags is on the command line.
func (t *tokenFlags) given(cmd *cobra.Command) bool {
	for _, name := range tokenFlagNames {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

var tokenFlagNames = []string{"token-file", "token-env", "token-stdin", "no-token"}

// readToken reads the token the flags name. An empty or unreadable source
// is an error: a token is never replaced by nothing unless --no-token says
// so.
func (a *app) readToken(cmd *cobra.Command, t *tokenFlags) (string, error) {
	n := 0
	for _, name := range tokenFlagNames {
		if cmd.Flags().Changed(name) {
			n++
		}
	}
	if n > 1 {
		msg := "give one of --token-file, --token-env, --token-stdin and --no-token"
		if a.remote() && cmd.Flags().Changed("token-file") {
			// The global --token-file (the API's, elsewhere) is the
			// server's here.
			msg += " (here --token-file is the server's tenement token; name the API's with --api-token-file)"
		}
		return "", usageError{errors.New(msg)}
	}
	if (cmd.Flags().Changed("no-token") && !t.none) || (cmd.Flags().Changed("token-stdin") && !t.stdin) {
		return "", usageError{errors.New("--no-token and --token-stdin take no value: leave out the one that is false")}
	}
	var raw, source string
	switch {
	case cmd.Flags().Changed("no-token"):
		return "", nil
	case cmd.Flags().Changed("token-file"):
		b, err := os.ReadFile(t.file)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // without the path, shown already
			}
			return "", &slum.FieldError{Field: "--token-file", Value: t.file, Reason: "cannot be read: " + err.Error()}
		}
		if w := desired.TokenFileWarning(t.file); w != "" {
			a.warn("%s", w)
		}
		raw, source = string(b), fmt.Sprintf("token file %q", t.file)
	case cmd.Flags().Changed("token-env"):
		if err := desired.ValidateEnvName("--token-env", t.env); err != nil {
			return "", err
		}
		v, ok := a.lookupEnv(t.env)
		if !ok {
			return "", &slum.FieldError{Field: "--token-env", Value: t.env, Reason: fmt.Sprintf("environment variable is not set: export %s=<the server's admin token> first", t.env)}
		}
		raw, source = v, "environment variable "+t.env
	case cmd.Flags().Changed("token-stdin"):
		b, err := io.ReadAll(io.LimitReader(a.stdin, 8192))
		if err != nil {
			return "", fmt.Errorf("read token from stdin: %w", err)
		}
		raw, source = string(b), "standard input"
	}
	tok := strings.TrimSpace(raw)
	if tok == "" {
		return "", &slum.FieldError{Field: "token", NoValue: true,
			Reason: "the " + source + " is empty; give the server's admin token there (tenement: ten --data-dir DIR token-gen), or --no-token"}
	}
	return tok, nil
}

func (a *app) serverCommand() *cobra.Command {
	cmd := group(&cobra.Command{Use: "server", Annotations: remoteOK, Short: "Add, inspect and schedule tenement servers"})
	cmd.AddCommand(a.serverAdd(), a.serverList(), a.serverGet(), a.serverUpdate(),
		a.serverState("cordon", slum.ServerCordoned, "Stop placing new instances on a server; it keeps what it runs"),
		a.serverState("uncordon", slum.ServerActive, "Let a cordoned or drained server take new instances again"),
		a.serverDrain(), a.serverRemove())
	return cmd
}

func (a *app) serverAdd() *cobra.Command {
	var s slum.Server
	var tok tokenFlags
	cmd := &cobra.Command{
		Use:   "add ID --url URL --capacity-mb N (--token-file F | --token-env V | --token-stdin | --no-token) [--region R] [--domain D]",
		Short: "Add a tenement server to the fleet (creates the fleet database if needed)",
		Example: `  ten --data-dir /srv/ten token-gen
  slum server add eu-1 --url http://10.0.0.5:8080 --capacity-mb 4096 --region eu --token-file /srv/ten/api_token`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.ID = args[0]
			if !tok.given(cmd) {
				return usageError{errors.New("server add needs the server's admin token: --token-file F (tenement's DATA_DIR/api_token), " +
					"--token-env VAR or --token-stdin; or --no-token to add it without one")}
			}
			var err error
			if s.Token, err = a.readToken(cmd, &tok); err != nil {
				return err
			}
			// A bad request must not leave a new database behind.
			if err := desired.ValidateServer(s); err != nil {
				return fmt.Errorf("add server: %w", err)
			}
			return a.withFleetFor(dbMayCreate, func(ctx context.Context, st slum.Fleet) error {
				out, err := st.AddServer(ctx, s)
				if err != nil {
					return err
				}
				note := ""
				if !out.HasToken() {
					note = " (no token: the controller cannot reach it until you set one with 'slum server update --token-file')"
				}
				return a.say(out, "server %s added: %s, %d MB%s", out.ID, out.URL, out.CapacityMB, note)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&s.URL, "url", "", "the server's tenement API, http[s]://host[:port] (required)")
	cmd.Flags().Int64Var(&s.CapacityMB, "capacity-mb", 0, "memory for instances, in MB (required)")
	cmd.Flags().StringVar(&s.Region, "region", "", "region, for placement preferences")
	cmd.Flags().StringVar(&s.Domain, "domain", "", "the domain its tenement routes subdomains of (default: the URL's host)")
	tok.register(cmd, "add the server without a token (the controller cannot reach it until one is set)")
	_ = cmd.MarkFlagRequired("url")
	_ = cmd.MarkFlagRequired("capacity-mb")
	return cmd
}

func serverRow(s slum.Server) []string {
	tok := "no"
	if s.HasToken() {
		tok = "yes"
	}
	return []string{s.ID, s.URL, dash(s.Region), fmt.Sprint(s.CapacityMB), s.Domain, string(s.State), tok}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) serverList() *cobra.Command {
	var region string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List servers (tokens are never shown)",
		Args:  exactArgs(),
		RunE: a.withFleet(func(ctx context.Context, st slum.Fleet) error {
			var servers []slum.Server
			var err error
			if region != "" {
				servers, err = st.ServersInRegion(ctx, region)
			} else {
				servers, err = st.ListServers(ctx)
			}
			if err != nil {
				return err
			}
			stats, err := st.AllServerStats(ctx)
			if err != nil {
				return err
			}
			used := map[string]slum.ServerStats{}
			for _, x := range stats {
				used[x.ServerID] = x
			}
			rows := make([][]string, len(servers))
			for i, s := range servers {
				u := used[s.ID]
				rows[i] = append(serverRow(s), fmt.Sprint(u.UsedMB), fmt.Sprint(u.Instances))
			}
			if servers == nil {
				servers = []slum.Server{}
			}
			return a.table(servers, []string{"ID", "URL", "REGION", "CAPACITY_MB", "DOMAIN", "STATE", "TOKEN", "USED_MB", "INSTANCES"}, rows)
		}),
	}
	cmd.Flags().StringVar(&region, "region", "", "only servers of this region")
	return cmd
}

func (a *app) serverGet() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one server with its capacity use and tenants",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				s, err := st.GetServer(ctx, args[0])
				if err != nil {
					return err
				}
				stats, err := st.ServerStats(ctx, s.ID)
				if err != nil {
					return err
				}
				tenants, err := st.ListTenantsOnServer(ctx, s.ID)
				if err != nil {
					return err
				}
				status, err := st.ServerStatus(ctx, s.ID)
				if err != nil {
					return err
				}
				if a.json() {
					return a.printJSON(struct {
						slum.Server
						Stats   slum.ServerStats  `json:"stats"`
						Status  slum.ServerStatus `json:"status"`
						Tenants []slum.Tenant     `json:"tenants"`
					}{s, stats, status, append([]slum.Tenant{}, tenants...)})
				}
				names := make([]string, len(tenants))
				for i, t := range tenants {
					names[i] = t.ID
				}
				health := string(status.Health)
				if !status.HealthSince.IsZero() {
					health += " since " + status.HealthSince.Local().Format("2006-01-02 15:04:05")
				}
				failover := "-"
				if status.Failover != "" {
					failover = string(status.Failover) + ": " + status.FailoverReason
				}
				fmt.Fprintf(a.stdout, "id:          %s\nurl:         %s\nregion:      %s\ndomain:      %s\nstate:       %s\nhealth:      %s\nfailover:    %s\nlast error:  %s\ntoken:       %s\ncapacity_mb: %d\nused_mb:     %d\nfree_mb:     %d\ninstances:   %d\ntenants:     %s\n",
					s.ID, s.URL, dash(s.Region), s.Domain, s.State, health, failover, dash(status.LastError),
					map[bool]string{true: "set", false: "not set"}[s.HasToken()],
					stats.CapacityMB, stats.UsedMB, stats.FreeMB, stats.Instances, dash(strings.Join(names, ", ")))
				return nil
			})(cmd, args)
		},
	}
}

func (a *app) serverUpdate() *cobra.Command {
	var url, region, domain string
	var capacity int64
	var tok tokenFlags
	cmd := &cobra.Command{
		Use:   "update ID [--url U] [--capacity-mb N] [--region R] [--domain D] [--token-file F]",
		Short: "Change a server's settings",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u slum.ServerUpdate
			f := cmd.Flags()
			if f.Changed("url") {
				u.URL = &url
			}
			if f.Changed("region") {
				u.Region = &region
			}
			if f.Changed("domain") {
				u.Domain = &domain
			}
			if f.Changed("capacity-mb") {
				u.CapacityMB = &capacity
			}
			if tok.given(cmd) {
				t, err := a.readToken(cmd, &tok)
				if err != nil {
					return err
				}
				u.Token = &t
			}
			if u == (slum.ServerUpdate{}) {
				return usageError{fmt.Errorf("nothing to update: give at least one of --url, --capacity-mb, --region, --domain, --token-*, --no-token")}
			}
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				s, err := st.UpdateServer(ctx, args[0], u)
				if err != nil {
					return err
				}
				return a.say(s, "server %s updated", s.ID)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the server's tenement API")
	cmd.Flags().Int64Var(&capacity, "capacity-mb", 0, "memory for instances, in MB")
	cmd.Flags().StringVar(&region, "region", "", "region (empty for none)")
	cmd.Flags().StringVar(&domain, "domain", "", "the domain its tenement routes subdomains of")
	tok.register(cmd, "remove the stored token")
	return cmd
}

func (a *app) serverState(verb string, state slum.ServerState, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				s, err := st.SetServerState(ctx, args[0], state)
				if err != nil {
					return err
				}
				return a.say(s, "server %s is %s", s.ID, s.State)
			})(cmd, args)
		},
	}
}

func (a *app) serverDrain() *cobra.Command {
	return &cobra.Command{
		Use:   "drain ID",
		Short: "Move every instance off a server and take no new ones",
		Long: `Drain cordons a server and places each of its instances on another server,
in one transaction: if any instance fits nowhere, nothing changes. The
running controller then starts the new copies and stops the old ones once the
new ones run. Stopping an old copy deletes its data where the tenement
service has storage_persist = false.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				ins, err := st.ListInstancesOnServer(ctx, args[0])
				if err != nil {
					return err
				}
				a.warnStops(stopsOfMoves(ins))
				moves, err := st.Drain(ctx, args[0])
				if err != nil {
					return err
				}
				if a.json() {
					return a.printJSON(append([]slum.Move{}, moves...))
				}
				for _, m := range moves {
					fmt.Fprintf(a.stdout, "%s: %s -> %s\n", m.Instance, m.From, m.To)
				}
				fmt.Fprintf(a.stdout, "server %s is draining: %d instances placed elsewhere\n", args[0], len(moves))
				return nil
			})(cmd, args)
		},
	}
}

func (a *app) serverRemove() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a server that has no instances",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				if err := st.RemoveServer(ctx, args[0], force); err != nil {
					return err
				}
				return a.say(map[string]string{"removed": args[0]}, "server %s removed", args[0])
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove even while the controller has copies there still to stop (they are left running)")
	return cmd
}
