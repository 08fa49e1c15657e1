package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/desired"
)

func (a *app) tenantCommand() *cobra.Command {
	cmd := group(&cobra.Command{Use: "tenant", Annotations: remoteOK, Short: "Add, inspect, move and remove tenants"})
	cmd.AddCommand(a.tenantAdd(), a.tenantList(), a.tenantGet(), a.tenantUpdate(), a.tenantMove(), a.tenantRemove())
	return cmd
}

func (a *app) tenantAdd() *cobra.Command {
	var t slum.Tenant
	var spec slum.InstanceSpec
	cmd := &cobra.Command{
		Use:   "add ID --domain D [--region R] [--failover move|none] [--serving one|all] [--data local|replicated --replica URL] [--process P [--server S] [--memory-mb N]]",
		Short: "Add a tenant, and with --process its first instance 'prod'",
		Long: `Add a tenant: a domain, and the instances that serve it.

--failover says what happens to its instances when their server dies:
move (the default) starts them on a healthy server, without their data,
which stays on the dead server's disk; none leaves them down with their
server, for tenants whose data lives only there (or pair the tenant with
replicated SQLite: see README).

--serving says which running copies take traffic: one (the default; the
lowest-ranked copy that runs serves, the others are warm spares, and a spare
serves at once when the serving copy is lost) or all (active-active).

--data says where its data lives: local (the default: on its server's disk)
or replicated (each copy runs under 'slum guard' with Litestream, as in
examples/replicated; a failed-over copy restores before it serves). A
replicated tenant names its replica with --replica, the s3:// URL its guard
is given (s3://BUCKET/PATH?endpoint=http://HOST:PORT), without credentials:
slum reads and revokes the single-writer lease there, with AWS_ACCESS_KEY_ID
and AWS_SECRET_ACCESS_KEY from its own environment.`,
		Example: `  slum tenant add alice --domain alice.example.com --region eu --process api
  slum tenant add carol --domain carol.example.com --process app --data replicated \
    --replica 's3://slum-replicas/tenants/carol?endpoint=http://127.0.0.1:8333'
  slum tenant add bob --domain bob.example.com   # then: slum instance spawn bob:prod --process api`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t.ID = args[0]
			if spec.Process == "" && (cmd.Flags().Changed("server") || cmd.Flags().Changed("memory-mb")) {
				return usageError{fmt.Errorf("--server and --memory-mb need --process")}
			}
			if err := positive(cmd, "memory-mb", spec.MemoryMB); err != nil {
				return err
			}
			var first []slum.InstanceSpec
			if spec.Process != "" {
				spec.ID = "prod"
				first = append(first, spec)
			}
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				out, ins, err := st.AddTenant(ctx, t, first...)
				if err != nil {
					return err
				}
				if len(ins) == 0 {
					return a.say(out, "tenant %s added for %s", out.ID, out.Domain)
				}
				return a.say(struct {
					slum.Tenant
					Instance slum.Instance `json:"instance"`
				}{out, ins[0]}, "tenant %s added for %s; instance %s placed on %s", out.ID, out.Domain, ins[0].Key(), ins[0].ServerID)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&t.Domain, "domain", "", "the tenant's domain (required, unique)")
	cmd.Flags().StringVar(&t.Region, "region", "", "preferred region for placement")
	cmd.Flags().StringVar((*string)(&t.Failover), "failover", string(slum.FailoverMove), "when its server dies: move (start elsewhere, without the data) or none (stay down)")
	cmd.Flags().StringVar((*string)(&t.Serving), "serving", string(slum.ServingOne), "which running copies serve: one (the others are warm spares) or all")
	cmd.Flags().StringVar((*string)(&t.Data), "data", string(slum.DataLocal), "where its data lives: local (its server's disk) or replicated (slum guard + Litestream)")
	cmd.Flags().StringVar(&t.Replica, "replica", "", "the replica URL of a replicated tenant (s3://BUCKET/PATH?endpoint=...; no credentials)")
	cmd.Flags().StringVar(&spec.Process, "process", "", "also spawn instance 'prod' of this tenement process")
	cmd.Flags().StringVar(&spec.ServerID, "server", "", "server for that instance (default: slum places it)")
	cmd.Flags().Int64Var(&spec.MemoryMB, "memory-mb", slum.DefaultMemoryMB, "memory for that instance, in MB")
	_ = cmd.MarkFlagRequired("domain")
	return cmd
}

func (a *app) tenantList() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  exactArgs(),
		RunE: a.withFleet(func(ctx context.Context, st slum.Fleet) error {
			var ts []slum.Tenant
			var err error
			if server != "" {
				ts, err = st.ListTenantsOnServer(ctx, server)
			} else {
				ts, err = st.ListTenants(ctx)
			}
			if err != nil {
				return err
			}
			rows := make([][]string, len(ts))
			for i, t := range ts {
				rows[i] = []string{t.ID, t.Domain, dash(t.Region)}
			}
			return a.table(append([]slum.Tenant{}, ts...), []string{"ID", "DOMAIN", "REGION"}, rows)
		}),
	}
	cmd.Flags().StringVar(&server, "server", "", "only tenants with an instance on this server")
	return cmd
}

func (a *app) tenantGet() *cobra.Command {
	var byDomain bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a tenant and its instances (--domain: look it up by domain)",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				var t slum.Tenant
				var err error
				if byDomain {
					t, err = st.GetTenantByDomain(ctx, args[0])
				} else {
					t, err = st.GetTenant(ctx, args[0])
				}
				if err != nil {
					return err
				}
				ins, err := st.ListInstancesOfTenant(ctx, t.ID)
				if err != nil {
					return err
				}
				ts, err := st.TenantStatus(ctx, t.ID)
				if err != nil {
					return err
				}
				if a.json() {
					return a.printJSON(struct {
						slum.Tenant
						Instances []slum.Instance   `json:"instances"`
						Status    slum.TenantStatus `json:"status"`
					}{t, append([]slum.Instance{}, ins...), ts})
				}
				parts := make([]string, len(ins))
				for i, in := range ins {
					where := in.ServerID
					if in.FailedOver() {
						where += ", failed over from " + in.HomeServerID
					}
					parts[i] = fmt.Sprintf("%s (%s on %s, %s)", in.ID, in.Process, where, in.DesiredState)
				}
				serving := copyList(ts.Serving)
				if serving == "" {
					serving = "nothing: " + ts.Reason
				}
				fmt.Fprintf(a.stdout, "id:        %s\ndomain:    %s\nregion:    %s\nfailover:  %s\ndata:      %s\nserving:   %s (policy %s)\nspares:    %s\ninstances: %s\n",
					t.ID, t.Domain, dash(t.Region), t.Failover, dataDesc(t), serving, t.Serving, dash(copyList(ts.Spares)), dash(strings.Join(parts, "; ")))
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&byDomain, "domain", false, "the argument is a domain, not an id")
	return cmd
}

func (a *app) tenantUpdate() *cobra.Command {
	var domain, region, failover, serving, data, replicaURL string
	cmd := &cobra.Command{
		Use:   "update ID [--domain D] [--region R] [--failover move|none] [--serving one|all] [--data local|replicated] [--replica URL]",
		Short: "Change a tenant's domain, region or policies",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u slum.TenantUpdate
			f := cmd.Flags()
			if f.Changed("domain") {
				u.Domain = &domain
			}
			if f.Changed("region") {
				u.Region = &region
			}
			if f.Changed("failover") {
				p := slum.FailoverPolicy(failover)
				u.Failover = &p
			}
			if f.Changed("serving") {
				p := slum.ServingPolicy(serving)
				u.Serving = &p
			}
			if f.Changed("data") {
				p := slum.DataPolicy(data)
				u.Data = &p
			}
			if f.Changed("replica") {
				u.Replica = &replicaURL
			}
			if u == (slum.TenantUpdate{}) {
				return usageError{fmt.Errorf("nothing to update: give --domain, --region, --failover, --serving, --data or --replica")}
			}
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				t, err := st.UpdateTenant(ctx, args[0], u)
				if err != nil {
					return err
				}
				return a.say(t, "tenant %s updated", t.ID)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&domain, "domain", "", "new domain")
	cmd.Flags().StringVar(&region, "region", "", "new preferred region (empty for none)")
	cmd.Flags().StringVar(&failover, "failover", "", "when its server dies: move or none")
	cmd.Flags().StringVar(&serving, "serving", "", "which running copies serve: one or all")
	cmd.Flags().StringVar(&data, "data", "", "where its data lives: local or replicated (local drops the replica)")
	cmd.Flags().StringVar(&replicaURL, "replica", "", "the replica URL of a replicated tenant (no credentials)")
	return cmd
}

func (a *app) tenantMove() *cobra.Command {
	var to, instance string
	cmd := &cobra.Command{
		Use:   "move ID [--to SERVER] [--instance I]",
		Short: "Move a tenant's instance to another server",
		Long: `Move places a tenant's instance on another server: --to, or where slum
chooses. The controller starts the new copy, then stops the old one.
Stopping the old copy deletes its data where the tenement service has
storage_persist = false: copy what must survive first.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("to") {
				if err := desired.ValidateID("--to", to); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("instance") {
				if err := desired.ValidateID("--instance", instance); err != nil {
					return err
				}
			}
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				if instance == "" {
					ins, err := st.ListInstancesOfTenant(ctx, args[0])
					if err != nil {
						return err
					}
					switch len(ins) {
					case 0:
						return fmt.Errorf("move tenant %s: %w: it has no instances", args[0], slum.ErrNotFound)
					case 1:
						instance = ins[0].ID
					default:
						ids := make([]string, len(ins))
						for i, in := range ins {
							ids[i] = in.ID
						}
						return usageError{fmt.Errorf("tenant %s has %d instances (%s): name one with --instance", args[0], len(ins), strings.Join(ids, ", "))}
					}
				}
				key := slum.KeyOf(args[0], instance)
				in, err := st.GetInstance(ctx, key)
				if err != nil {
					return err
				}
				if in.ServerID != to {
					a.warnStops(stopsOfMoves([]slum.Instance{in}))
				}
				mv, err := st.MoveInstance(ctx, key, to)
				if err != nil {
					return err
				}
				return a.say(mv, "%s moves %s -> %s; the old copy is stopped once the new one runs", mv.Instance, mv.From, mv.To)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the server to move to (default: slum chooses)")
	cmd.Flags().StringVar(&instance, "instance", "", "which instance (default: the tenant's only one)")
	return cmd
}

func (a *app) tenantRemove() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a tenant and its instances; the controller stops them",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				if err := st.RemoveTenant(ctx, args[0]); err != nil {
					return err
				}
				return a.say(map[string]string{"removed": args[0]}, "tenant %s removed; the controller stops its instances", args[0])
			})(cmd, args)
		},
	}
}

// copyList shows copies as "prod@s1, backup@s2".
func copyList(cs []slum.CopyRef) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// dataDesc is a tenant's data policy with its replica.
func dataDesc(t slum.Tenant) string {
	if t.Data == slum.DataReplicated {
		return fmt.Sprintf("%s (%s)", t.Data, t.Replica)
	}
	return string(t.Data)
}
