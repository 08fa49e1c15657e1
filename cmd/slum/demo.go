package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/api"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/examples"
	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// demoMarker marks a directory as the demo's own, so that a rerun may wipe
// it and nothing else.
const demoMarker = ".slum-demo"

func (a *app) demoCommand() *cobra.Command {
	var dir, backend, routeAddr, apiAddr string
	var exitWhenConverged bool
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR] [--backend tenement|simulator]",
		Short: "Bring up a local fleet of three servers and watch slum converge it",
		Long: `Demo starts three tenement servers on this machine (real 'ten serve'
processes, each in a network namespace of its own, when tenement is installed
and this runs as root; simulated servers otherwise, and it says which),
applies the example fleet file, runs the controller and shows the fleet
converge. The fleet stays up, kept by slum, until Ctrl-C.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if backend == "auto" {
				backend = ""
			}
			return a.demo(cmd.Context(), dir, backend, routeAddr, apiAddr, exitWhenConverged)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "slum-demo", "where the demo keeps its database, fleet file and servers (wiped on start)")
	cmd.Flags().StringVar(&backend, "backend", "auto", "auto, tenement or simulator")
	cmd.Flags().BoolVar(&exitWhenConverged, "exit-when-converged", false, "stop once the fleet has converged (for scripts)")
	cmd.Flags().StringVar(&routeAddr, "route-addr", "127.0.0.1:8080", "where slum's router listens (127.0.0.1:0 picks a free port)")
	cmd.Flags().StringVar(&apiAddr, "api-addr", "127.0.0.1:9470", "where the fleet API and dashboard listen (empty: none)")
	return cmd
}

func prepareDemoDir(dir string) error {
	err := localfleet.PrepareDir(dir, localfleet.DirMarker{File: demoMarker, What: "a demo directory", Flag: "--dir",
		Note: "made by slum demo; rerunning the demo wipes this directory\n"})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// demoRun is the demo while it runs: its directory, the local fleet, the
// fleet file and database, and the stack on them.
type demoRun struct {
	dir, fleetPath, dbPath, tokenPath string
	fleet                             *localfleet.Fleet
	example                           *desired.File
	st                                *store.Store
	stk                               *stack
}

func (a *app) demo(ctx context.Context, dir, backend, routeAddr, apiAddr string, exitWhenConverged bool) error {
	if err := prepareDemoDir(dir); err != nil {
		return err
	}
	d := &demoRun{}
	d.dir, _ = filepath.Abs(dir)
	d.fleetPath, d.dbPath, d.tokenPath = filepath.Join(d.dir, "fleet.yaml"), filepath.Join(d.dir, "slum.db"), filepath.Join(d.dir, "api.token")
	fmt.Fprintf(a.stdout, "slum demo in %s\n", d.dir)
	if err := a.startDemoFleet(ctx, d, backend); err != nil {
		return err
	}
	defer d.fleet.Close()
	if err := a.applyDemoFleet(ctx, d); err != nil {
		return err
	}
	defer d.st.Close()
	logf, err := os.OpenFile(filepath.Join(d.dir, "slum.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	if err := a.startDemoStack(ctx, d, routeAddr, apiAddr, logf); err != nil {
		return err
	}
	defer func() { _ = d.stk.Stop() }()
	fmt.Fprintf(a.stdout, "running the controller and the router on http://%s (log: %s)\n", d.stk.RouterAddr, filepath.Join(d.dir, "slum.log"))

	start := time.Now()
	if err := a.watchConvergence(ctx, d.st, start); err != nil {
		return err
	}
	converged := time.Since(start)
	waitHealthy(ctx, d.fleet, 5*time.Second)
	if err := a.printWhereThingsRun(ctx, d.st); err != nil {
		return err
	}
	if d.fleet.Backend == localfleet.BackendTenement {
		a.printAnswer(ctx, d.stk.RouterAddr, "alice.example.com")
	}
	a.printDemoHints(ctx, d, converged)
	if exitWhenConverged {
		return nil
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(a.stdout, "\nstopping…")
		return nil
	case err := <-d.stk.done:
		d.stk.done <- err
		return err
	}
}

// startDemoFleet starts the local servers of the example fleet and
// points the fleet file at them.
func (a *app) startDemoFleet(ctx context.Context, d *demoRun, backend string) error {
	example, err := desired.Parse("examples/fleet.yaml", []byte(examples.Fleet))
	if err != nil {
		return fmt.Errorf("demo: the example fleet: %w", err)
	}
	fmt.Fprintf(a.stdout, "starting %d tenement servers…\n", len(example.Servers))
	fleet, err := localfleet.Start(ctx, localfleet.Options{Servers: len(example.Servers), Dir: filepath.Join(d.dir, "servers"), Backend: backend, Names: example.ServerIDs()})
	if err != nil {
		return fmt.Errorf("demo: start the servers: %w", err)
	}
	if fleet.Backend == localfleet.BackendTenement {
		fmt.Fprintf(a.stdout, "using %s\n", fleet.Reason)
	} else {
		fmt.Fprintf(a.stdout, "using SIMULATED tenement servers (slum's own simulator, not tenement): %s\n", fleet.Reason)
	}
	if example, err = localfleet.PointAt(example, fleet.Members); err != nil {
		fleet.Close()
		return err
	}
	for _, s := range example.Servers {
		fmt.Fprintf(a.stdout, "  server %s: %s\n", s.ID, s.URL)
	}
	d.fleet, d.example = fleet, example
	return nil
}

// applyDemoFleet writes the fleet file, for the user to apply again
// later, and applies it to a new database as 'slum apply -f' does.
func (a *app) applyDemoFleet(ctx context.Context, d *demoRun) error {
	if err := os.WriteFile(d.fleetPath, d.example.Text, 0o644); err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, d.dbPath)
	if err != nil {
		return err
	}
	f, err := desired.LoadFile(d.fleetPath)
	var src slum.FileSource
	if err == nil {
		src, err = desired.Send(f)
	}
	var plan *slum.ChangeSet
	if err == nil {
		plan, err = st.Apply(ctx, src, slum.ApplyOptions{})
	}
	if err != nil {
		st.Close()
		return err
	}
	fmt.Fprintf(a.stdout, "applied %s: %s\n", d.fleetPath, plan.Summary())
	d.st = st
	return nil
}

// startDemoStack runs the controller with its router and, with apiAddr,
// the API, as 'slum run' does.
func (a *app) startDemoStack(ctx context.Context, d *demoRun, routeAddr, apiAddr string, logf *os.File) error {
	var rf routeFlags
	rf.register(&cobra.Command{}, "route-addr", routeAddr)
	rf.server.Addr = routeAddr
	cfg := reconcile.DefaultConfig()
	cfg.PollInterval = time.Second
	var apiServe *apiServeFlags
	if apiAddr != "" {
		// An admin token for the dashboard and the remote CLI, kept
		// where the demo keeps its database.
		_, secret, err := d.st.CreateAPIToken(ctx, slum.RoleAdmin, "demo")
		if err != nil {
			return err
		}
		if err := os.WriteFile(d.tokenPath, []byte(secret+"\n"), 0o600); err != nil {
			return err
		}
		apiServe = &apiServeFlags{listen: api.ListenConfig{Addr: apiAddr}}
	}
	stk, err := startStack(ctx, d.st, stackOptions{cfg: cfg, route: &rf, api: apiServe, leaseTTL: 15 * time.Second,
		log: slog.New(slog.NewTextHandler(logf, nil))})
	d.stk = stk
	return err
}

// printDemoHints says what to try next.
func (a *app) printDemoHints(ctx context.Context, d *demoRun, converged time.Duration) {
	exe := "slum"
	if p, err := os.Executable(); err == nil && !strings.Contains(p, "go-build") {
		exe = p
		if rel, err := filepath.Rel(mustGetwd(), p); err == nil && !strings.HasPrefix(rel, "..") {
			exe = "./" + rel
		}
	} else {
		exe = "go run ./cmd/slum"
	}
	fmt.Fprintf(a.stdout, "\nThe fleet converged in %.1fs, and slum keeps it so while this runs. In another terminal, try:\n\n", converged.Seconds())
	fmt.Fprintf(a.stdout, "  export SLUM_DB=%s\n", d.dbPath)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  curl -H 'Host: alice.example.com' http://%s/\t# alice's app, through slum's router\n", d.stk.RouterAddr)
	for _, c := range [][2]string{
		{"status", "servers, their health, instance phases"},
		{"instance list", "every instance and where it runs"},
		{"tenant get alice", "who serves alice now: prod, with backup as a warm spare"},
		{"tenant move alice --instance prod --to us-1", "slum starts the new copy, then stops the old; the router follows"},
		{"events --follow", "what slum does, as it does it"},
		{"tenant remove bob", "slum stops bob's instance"},
		{"apply -f " + d.fleetPath, "back to the file (--prune drops the rest)"},
	} {
		fmt.Fprintf(tw, "  %s %s\t# %s\n", exe, c[0], c[1])
	}
	if in, err := d.st.GetInstance(ctx, "alice:prod"); err == nil {
		for _, m := range d.fleet.Members {
			if m.ID == in.ServerID && m.Ten != nil && m.Ten.Pid() > 0 {
				fmt.Fprintf(tw, "  kill -9 %d\t# %s's tenement server dies: alice's backup serves at once, the rest runs elsewhere within seconds\n", m.Ten.Pid(), m.ID)
			}
		}
	}
	_ = tw.Flush()
	// How to start each tenement server again once it is killed: any of
	// them may be, not only the one the hint names.
	told := false
	for _, m := range d.fleet.Members {
		if m.Ten == nil {
			continue
		}
		if !told {
			told = true
			fmt.Fprint(a.stdout, "\nand to start a tenement server again once it is killed (online within a second; what failed over stays where it runs, failback: stay):\n\n")
		}
		fmt.Fprintf(tw, "  %s\t# %s\n", m.Ten.StartCommand(), m.ID)
	}
	_ = tw.Flush()
	if d.stk.APIURL != "" {
		fmt.Fprintf(a.stdout, "\nThe fleet's API and dashboard: open %s/ and sign in with the token in %s, or use it from the CLI:\n\n", d.stk.APIURL, d.tokenPath)
		fmt.Fprintf(a.stdout, "  %s --api %s --api-token-file %s status\n", exe, d.stk.APIURL, d.tokenPath)
	}
	fmt.Fprintln(a.stdout, "\nCtrl-C stops the demo, the controller and the servers.")
}

// printAnswer shows what a tenant's app answers through the router.
func (a *app) printAnswer(ctx context.Context, routerAddr, domain string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+routerAddr+"/", nil)
	if err != nil {
		return
	}
	req.Host = domain
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(a.stdout, "%s through the router: %v\n", domain, err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	fmt.Fprintf(a.stdout, "%s answers through the router: %d %s\n", domain, resp.StatusCode, strings.TrimSpace(string(body)))
}

// waitHealthy gives tenement's health checks a moment, so the table shows
// their verdict rather than "unknown".
func waitHealthy(ctx context.Context, fleet *localfleet.Fleet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		unknown := 0
		for _, m := range fleet.Members {
			c, err := observed.NewClient(m.URL, m.Token, observed.WithTimeout(time.Second))
			if err != nil {
				return
			}
			list, _ := c.List(ctx)
			for _, in := range list {
				if in.Health == "unknown" {
					unknown++
				}
			}
		}
		if unknown == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}

// settled reports whether an instance's phase is where its desired state
// should leave it.
func settled(in slum.Instance, phase slum.Phase) bool {
	switch {
	case in.DesiredState == slum.StateStopped:
		return phase == slum.PhaseStopped
	case in.Mode == slum.ModeOnDemand:
		return phase == slum.PhaseIdle || phase == slum.PhaseRunning
	}
	return phase == slum.PhaseRunning
}

// watchConvergence shows a progress line until every instance settles.
func (a *app) watchConvergence(ctx context.Context, st *store.Store, start time.Time) error {
	tty := isTerminal(a.stdout)
	last := ""
	deadline := start.Add(2 * time.Minute)
	for {
		ins, err := st.ListInstances(ctx)
		if err != nil {
			return err
		}
		sts, err := st.ListInstanceStatus(ctx)
		if err != nil {
			return err
		}
		phase := map[slum.InstanceKey]slum.Phase{}
		for _, s := range sts {
			phase[s.Key()] = s.Phase
		}
		counts := map[slum.Phase]int{}
		done := 0
		for _, in := range ins {
			p := phase[in.Key()]
			if p == "" {
				p = slum.PhasePending
			}
			counts[p]++
			if settled(in, p) {
				done++
			}
		}
		var parts []string
		for _, p := range slum.Phases {
			if counts[p] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[p], p))
			}
		}
		line := fmt.Sprintf("converging: %d/%d settled (%s)  %.1fs", done, len(ins), strings.Join(parts, ", "), time.Since(start).Seconds())
		if tty {
			fmt.Fprintf(a.stdout, "\r\033[K%s", line)
		} else if line[:strings.Index(line, ")")] != last {
			fmt.Fprintln(a.stdout, line)
			last = line[:strings.Index(line, ")")]
		}
		if done == len(ins) {
			if tty {
				fmt.Fprintln(a.stdout)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("demo: the fleet did not converge in 2 minutes; see the log and 'slum status'")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printWhereThingsRun asks each server what it runs and prints it next to
// the desired state.
func (a *app) printWhereThingsRun(ctx context.Context, st *store.Store) error {
	servers, err := st.ListServers(ctx)
	if err != nil {
		return err
	}
	ins, err := st.ListInstances(ctx)
	if err != nil {
		return err
	}
	byName := map[string]slum.Instance{}
	for _, in := range ins {
		byName[in.ServerID+"/"+in.TenementName()] = in
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(a.stdout)
	fmt.Fprintln(tw, "SERVER\tURL\tRUNNING (as the server reports)\tHEALTH\tTENANT")
	for _, s := range servers {
		url := s.URL
		c, err := observed.NewClient(s.URL, s.Token, observed.WithTimeout(3*time.Second))
		if err != nil {
			return err
		}
		list, err := c.List(ctx)
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\t(cannot list: %v)\t\t\n", s.ID, url, err)
			continue
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		if len(list) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t\t\n", s.ID, url)
		}
		for _, o := range list {
			tenant := "(unmanaged)"
			if in, ok := byName[s.ID+"/"+o.Name]; ok {
				tenant = string(in.Key())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, url, o.Name, o.Health, tenant)
			url = ""
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, in := range ins {
		switch {
		case in.DesiredState == slum.StateStopped:
			fmt.Fprintf(a.stdout, "%s is placed on %s but desired stopped, so it does not run\n", in.Key(), in.ServerID)
		case in.Mode == slum.ModeOnDemand:
			fmt.Fprintf(a.stdout, "%s is on-demand: tenement on %s starts it on its first request\n", in.Key(), in.ServerID)
		}
	}
	return nil
}
