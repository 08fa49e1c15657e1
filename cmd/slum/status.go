package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/desired"
)

// fleetStatus is the overview 'slum status' prints.
type fleetStatus struct {
	// ReportedAt is when a controller last wrote server status; zero when
	// none ever has.
	ReportedAt time.Time        `json:"reported_at"`
	Servers    []serverOverview `json:"servers"`
	Tenants    int              `json:"tenants"`
	Instances  int              `json:"instances"`
	Phases     map[string]int   `json:"phases"`
}

type serverOverview struct {
	desired.ServerStats
	State     desired.ServerState `json:"state"`
	Health    string              `json:"health"`
	LastError string              `json:"last_error"`
	Running   int64               `json:"running"`
	Unmanaged int64               `json:"unmanaged"`
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "A fleet overview: servers, their health and use, and instance phases",
		Args:  exactArgs(),
		RunE: a.withStore(func(ctx context.Context, st *desired.Store) error {
			fs, err := collectStatus(ctx, st)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(fs)
			}
			rows := make([][]string, len(fs.Servers))
			for i, s := range fs.Servers {
				rows[i] = []string{s.ServerID, string(s.State), s.Health, fmt.Sprintf("%d/%d", s.UsedMB, s.CapacityMB),
					fmt.Sprint(s.Instances), fmt.Sprint(s.Running), fmt.Sprint(s.Unmanaged), dash(s.LastError)}
			}
			if err := a.table(nil, []string{"SERVER", "STATE", "HEALTH", "USED_MB", "INSTANCES", "RUNNING", "UNMANAGED", "LAST_ERROR"}, rows); err != nil {
				return err
			}
			switch {
			case fs.ReportedAt.IsZero():
				fmt.Fprintln(a.stdout, "\nno controller has reported yet: start one with 'slum run'")
			case time.Since(fs.ReportedAt) > time.Minute:
				fmt.Fprintf(a.stdout, "\nthe controller last reported %s ago: is 'slum run' running?\n", time.Since(fs.ReportedAt).Round(time.Second))
			}
			fmt.Fprintf(a.stdout, "\n%d tenants, %d instances:", fs.Tenants, fs.Instances)
			for _, p := range []string{"running", "pending", "failed", "unknown", "stopped", "idle"} {
				if n := fs.Phases[p]; n > 0 {
					fmt.Fprintf(a.stdout, " %d %s", n, p)
				}
			}
			fmt.Fprintln(a.stdout)
			return nil
		}),
	}
}

func collectStatus(ctx context.Context, st *desired.Store) (*fleetStatus, error) {
	servers, err := st.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := st.AllServerStats(ctx)
	if err != nil {
		return nil, err
	}
	sstat, err := st.ListServerStatus(ctx)
	if err != nil {
		return nil, err
	}
	tenants, err := st.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	ins, err := st.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	ist, err := st.ListInstanceStatus(ctx)
	if err != nil {
		return nil, err
	}
	byServer := map[string]desired.ServerStatus{}
	for _, s := range sstat {
		byServer[s.ServerID] = s
	}
	phase := map[string]string{}
	for _, s := range ist {
		phase[s.TenantID+":"+s.InstanceID] = s.Phase
	}
	running := map[string]int64{}
	fs := &fleetStatus{Servers: []serverOverview{}, Tenants: len(tenants), Instances: len(ins), Phases: map[string]int{}}
	for _, in := range ins {
		p := phase[in.Key()]
		if p == "" {
			p = "pending"
		}
		fs.Phases[p]++
		if p == "running" {
			running[in.ServerID]++
		}
	}
	for i, s := range servers {
		o := serverOverview{ServerStats: stats[i], State: s.State, Health: "unknown"}
		if ss, ok := byServer[s.ID]; ok {
			o.Health, o.LastError, o.Unmanaged = ss.Health, ss.LastError, ss.Unmanaged
			if ss.UpdatedAt.After(fs.ReportedAt) {
				fs.ReportedAt = ss.UpdatedAt
			}
		}
		o.Running = running[s.ID]
		fs.Servers = append(fs.Servers, o)
	}
	return fs, nil
}

func (a *app) eventsCommand() *cobra.Command {
	var n int64
	var follow bool
	cmd := &cobra.Command{
		Use:   "events [-n N] [--follow]",
		Short: "Show the event log: placements, moves, server health changes, failures",
		Args:  exactArgs(),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if n < 0 {
				return &desired.FieldError{Field: "-n", Value: fmt.Sprint(n), Reason: "must be 0 or more"}
			}
			return nil
		},
		RunE: a.withStore(func(ctx context.Context, st *desired.Store) error {
			evs, err := st.RecentEvents(ctx, n)
			if err != nil {
				return err
			}
			if a.json() && !follow {
				return a.printJSON(append([]desired.Event{}, evs...))
			}
			var last int64
			show := func(evs []desired.Event) {
				for _, e := range evs {
					if a.json() {
						_ = a.printJSON(e)
					} else {
						fmt.Fprintf(a.stdout, "%s  %-28s %-14s %s\n", e.At.Local().Format("15:04:05.000"), e.Object, e.Reason, e.Message)
					}
					last = e.ID
				}
			}
			show(evs)
			for follow {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
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
