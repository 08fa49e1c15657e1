package main

import (
	"context"
	"fmt"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"
)

func (a *app) instanceCommand() *cobra.Command {
	cmd := group(&cobra.Command{Use: "instance", Annotations: remoteOK, Short: "Spawn, stop, list and inspect tenant instances"})
	cmd.AddCommand(a.instanceSpawn(), a.instanceStop(), a.instanceRemove(), a.instanceList(), a.instanceStatus())
	return cmd
}

func (a *app) instanceSpawn() *cobra.Command {
	var spec slum.InstanceSpec
	var mode string
	cmd := &cobra.Command{
		Use:   "spawn TENANT:INSTANCE --process P [--server S] [--memory-mb N] [--mode always|on-demand]",
		Short: "Ask for an instance to run (placed by slum unless --server is given)",
		Long: `Spawn declares that an instance should run; the controller starts it. It runs
on its tenement server as PROCESS:TENANT--INSTANCE, so tenement routes
TENANT--INSTANCE.PROCESS.DOMAIN to it. Spawning an existing instance sets it
running again and applies the --memory-mb and --mode given (or, when its
server lacks the memory, changes nothing); it cannot change its process or
server ('slum tenant move' moves it).`,
		Example: "  slum instance spawn alice:backup --process api --memory-mb 512",
		Args:    exactArgs("TENANT:INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := slum.ParseInstanceKey(args[0])
			if err != nil {
				return err
			}
			tenant, id := key.Split()
			if err := positive(cmd, "memory-mb", spec.MemoryMB); err != nil {
				return err
			}
			if cmd.Flags().Changed("mode") && mode == "" {
				return &slum.FieldError{Field: "--mode", Value: mode, Reason: "must be always or on-demand"}
			}
			spec.TenantID, spec.ID, spec.Mode = tenant, id, slum.Mode(mode)
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				in, err := st.SpawnInstance(ctx, spec)
				if err != nil {
					return err
				}
				return a.say(in, "instance %s (%s) is to run on %s", in.Key(), in.TenementName(), in.ServerID)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&spec.Process, "process", "", "the tenement service to run (required)")
	cmd.Flags().StringVar(&spec.ServerID, "server", "", "the server to run on (default: slum places it)")
	cmd.Flags().Int64Var(&spec.MemoryMB, "memory-mb", 0, fmt.Sprintf("memory, in MB, counted against the server's capacity (a new instance: %d)", slum.DefaultMemoryMB))
	cmd.Flags().StringVar(&mode, "mode", "", "always (keep running; a new instance's default) or on-demand (its service scales to zero)")
	_ = cmd.MarkFlagRequired("process")
	return cmd
}

func (a *app) instanceStop() *cobra.Command {
	return &cobra.Command{
		Use:   "stop TENANT:INSTANCE",
		Short: "Set an instance's desired state to stopped (it keeps its placement)",
		Args:  exactArgs("TENANT:INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				in, err := st.StopInstance(ctx, slum.InstanceKey(args[0]))
				if err != nil {
					return err
				}
				return a.say(in, "instance %s is to stop on %s", in.Key(), in.ServerID)
			})(cmd, args)
		},
	}
}

func (a *app) instanceRemove() *cobra.Command {
	return &cobra.Command{
		Use:   "remove TENANT:INSTANCE",
		Short: "Remove an instance from the desired state; the controller stops it",
		Args:  exactArgs("TENANT:INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				if err := st.RemoveInstance(ctx, slum.InstanceKey(args[0])); err != nil {
					return err
				}
				return a.say(map[string]string{"removed": args[0]}, "instance %s removed", args[0])
			})(cmd, args)
		},
	}
}

func (a *app) instanceList() *cobra.Command {
	var server, tenant string
	cmd := &cobra.Command{
		Use:   "list [--server S | --tenant T]",
		Short: "List desired instances with their last observed phase",
		Args:  exactArgs(),
		RunE: a.withFleet(func(ctx context.Context, st slum.Fleet) error {
			var ins []slum.Instance
			var err error
			switch {
			case server != "" && tenant != "":
				return usageError{fmt.Errorf("give --server or --tenant, not both")}
			case server != "":
				ins, err = st.ListInstancesOnServer(ctx, server)
			case tenant != "":
				ins, err = st.ListInstancesOfTenant(ctx, tenant)
			default:
				ins, err = st.ListInstances(ctx)
			}
			if err != nil {
				return err
			}
			sts, err := st.ListInstanceStatus(ctx)
			if err != nil {
				return err
			}
			phase := make(map[slum.InstanceKey]string, len(sts))
			for _, s := range sts {
				phase[s.Key()] = string(s.Phase)
			}
			rows := make([][]string, len(ins))
			for i, in := range ins {
				p := phase[in.Key()]
				if p == "" {
					p = "pending"
				}
				server := in.ServerID
				if in.FailedOver() {
					server += " (home " + in.HomeServerID + ")"
				}
				rows[i] = []string{string(in.Key()), in.Process, server, fmt.Sprint(in.MemoryMB), string(in.Mode), string(in.DesiredState), p, fmt.Sprint(in.Generation)}
			}
			return a.table(append([]slum.Instance{}, ins...), []string{"INSTANCE", "PROCESS", "SERVER", "MEMORY_MB", "MODE", "DESIRED", "PHASE", "GEN"}, rows)
		}),
	}
	cmd.Flags().StringVar(&server, "server", "", "only instances placed on this server")
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's instances")
	return cmd
}

func (a *app) instanceStatus() *cobra.Command {
	return &cobra.Command{
		Use:   "status TENANT:INSTANCE",
		Short: "Show what the controller last observed of an instance",
		Args:  exactArgs("TENANT:INSTANCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				in, err := st.GetInstance(ctx, slum.InstanceKey(args[0]))
				if err != nil {
					return err
				}
				s, err := st.InstanceStatus(ctx, slum.InstanceKey(args[0]))
				if err != nil {
					return err
				}
				if a.json() {
					return a.printJSON(struct {
						Instance slum.Instance       `json:"instance"`
						Status   slum.InstanceStatus `json:"status"`
					}{in, s})
				}
				updated := "never"
				if !s.UpdatedAt.IsZero() {
					updated = s.UpdatedAt.Format("2006-01-02 15:04:05Z07:00")
				}
				fmt.Fprintf(a.stdout, "instance:            %s\ntenement name:       %s\nserver:              %s\nhome server:         %s\ndesired:             %s (%s), generation %d\nphase:               %s\nhealth:              %s\nmessage:             %s\nobserved generation: %d\nattempts:            %d\nlast error:          %s\nupdated:             %s\n",
					in.Key(), in.TenementName(), in.ServerID, in.HomeServerID, in.DesiredState, in.Mode, in.Generation,
					s.Phase, dash(string(s.Health)), dash(s.Message), s.ObservedGeneration, s.Attempts, dash(s.LastError), updated)
				return nil
			})(cmd, args)
		},
	}
}
