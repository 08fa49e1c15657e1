package main

import (
	"context"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"
)

func (a *app) settingsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:         "settings",
		Annotations: remoteOK,
		Short:       "Show or change the fleet's failure detection and failover settings",
		Long: `The fleet's settings live in its database, so every controller and every
command sees the same ones; a running controller applies a change at once.

  probe_interval      how often each server's health endpoint is probed (1s)
  probe_timeout       a probe without an answer by then has failed (800ms)
  dead_after          failed probes in a row that make a server dead (3)
  partition_fraction  more than this share of servers dead (or failing) at
                      once, or a whole region of two or more, and the
                      controller assumes it is the one cut off: nothing
                      fails over until 'slum approve' (0.55)
  failover_rate       at most this many servers fail over a minute (5)
  stable_after        a server that died takes no new or failed-over
                      instances until it has been back this long (30s)
  failback            stay: failed-over instances stay where they are;
                      return: they go home, make-before-break (stay)
  failback_after      with return, how long home must be healthy first (5m)
  rebalance           on: the controller evens out the fleet by itself, as
                      'slum rebalance --apply' does, one move at a time when
                      nothing else moves (off)
  rebalance_every     with on, at most one move this often (10m)

With these defaults a crashed server (connections refused) is dead within
about half a second and a hung or cut-off one within about three.`,
		Args: exactArgs(),
		RunE: a.withFleet(func(ctx context.Context, st slum.Fleet) error {
			s, err := st.Settings(ctx)
			if err != nil {
				return err
			}
			return a.printSettings(s)
		}),
	}
	cmd.AddCommand(a.settingsSet())
	return cmd
}

func (a *app) printSettings(s slum.Settings) error {
	a.warnSettings(s)
	if a.json() {
		return a.printJSON(s)
	}
	return a.table(nil, []string{"SETTING", "VALUE"}, [][]string{
		{"probe_interval", s.ProbeInterval.String()},
		{"probe_timeout", s.ProbeTimeout.String()},
		{"dead_after", fmt.Sprint(s.DeadAfter)},
		{"partition_fraction", fmt.Sprint(s.PartitionFraction)},
		{"failover_rate", fmt.Sprintf("%d servers/minute", s.FailoverRate)},
		{"stable_after", s.StableAfter.String()},
		{"failback", string(s.Failback)},
		{"failback_after", s.FailbackAfter.String()},
		{"rebalance", string(s.Rebalance)},
		{"rebalance_every", s.RebalanceEvery.String()},
	})
}

// warnSettings warns of settings that are valid but likely not meant.
func (a *app) warnSettings(s slum.Settings) {
	for _, w := range s.Warnings() {
		a.warn("%s", w)
	}
}

func (a *app) settingsSet() *cobra.Command {
	var probeInterval, probeTimeout, stableAfter, failbackAfter, rebalanceEvery time.Duration
	var rebalance string
	var deadAfter, rate int
	var fraction float64
	var failback string
	cmd := &cobra.Command{
		Use:   "set [--probe-interval D] [--probe-timeout D] [--dead-after N] [--partition-fraction F] [--failover-rate N] [--stable-after D] [--failback stay|return] [--failback-after D] [--rebalance off|on] [--rebalance-every D]",
		Short: "Change some of the fleet's settings; the others stay as they are",
		Example: `  slum settings set --probe-interval 2s --dead-after 5      # a slower, more patient fleet
  slum settings set --failback return --failback-after 10m`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.NFlag() == 0 {
				return usageError{fmt.Errorf("nothing to change: give at least one setting (see 'slum settings set --help')")}
			}
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				s, err := st.Settings(ctx)
				if err != nil {
					return err
				}
				if f.Changed("probe-interval") {
					s.ProbeInterval = probeInterval
				}
				if f.Changed("probe-timeout") {
					s.ProbeTimeout = probeTimeout
				}
				if f.Changed("dead-after") {
					s.DeadAfter = deadAfter
				}
				if f.Changed("partition-fraction") {
					s.PartitionFraction = fraction
				}
				if f.Changed("failover-rate") {
					s.FailoverRate = rate
				}
				if f.Changed("stable-after") {
					s.StableAfter = stableAfter
				}
				if f.Changed("failback") {
					s.Failback = slum.FailbackPolicy(failback)
				}
				if f.Changed("failback-after") {
					s.FailbackAfter = failbackAfter
				}
				if f.Changed("rebalance") {
					s.Rebalance = slum.RebalancePolicy(rebalance)
				}
				if f.Changed("rebalance-every") {
					s.RebalanceEvery = rebalanceEvery
				}
				out, err := st.SetSettings(ctx, s)
				if err != nil {
					return err
				}
				return a.printSettings(out)
			})(cmd, args)
		},
	}
	d := slum.DefaultSettings()
	f := cmd.Flags()
	f.DurationVar(&probeInterval, "probe-interval", d.ProbeInterval, "how often each server is probed")
	f.DurationVar(&probeTimeout, "probe-timeout", d.ProbeTimeout, "a probe without an answer by then has failed")
	f.IntVar(&deadAfter, "dead-after", d.DeadAfter, "failed probes in a row that make a server dead")
	f.Float64Var(&fraction, "partition-fraction", d.PartitionFraction, "share of servers dead at once beyond which nothing fails over")
	f.IntVar(&rate, "failover-rate", d.FailoverRate, "servers failed over a minute, at most")
	f.DurationVar(&stableAfter, "stable-after", d.StableAfter, "how long a server that died must be back before it takes instances")
	f.StringVar(&failback, "failback", string(d.Failback), "stay or return")
	f.DurationVar(&failbackAfter, "failback-after", d.FailbackAfter, "with --failback return, how long home must be healthy first")
	f.StringVar(&rebalance, "rebalance", string(d.Rebalance), "on: the controller rebalances by itself; off")
	f.DurationVar(&rebalanceEvery, "rebalance-every", d.RebalanceEvery, "with --rebalance on, at most one move this often")
	return cmd
}
