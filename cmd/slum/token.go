package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/desired"
)

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (a *app) tokenCommand() *cobra.Command {
	cmd := group(&cobra.Command{Use: "token", Annotations: remoteOK, Short: "Make, list and revoke tokens of the fleet's HTTP API",
		Long: `Tokens let programs and people use the fleet's HTTP API ('slum serve',
'slum run --api-addr'), the remote CLI (--api) and the dashboard. A token
has one role:

  admin   everything the CLI does
  read    read everything: status, desired state, events, tokens; change nothing
  router  read the route table and watch it: for 'slum route --api' elsewhere

A token is shown once, when it is made; the database keeps only its SHA-256
digest. A revoked token stops working at once.`})
	cmd.AddCommand(a.tokenCreate(), a.tokenList(), a.tokenRevoke())
	return cmd
}

func (a *app) tokenCreate() *cobra.Command {
	var role, name, out string
	cmd := &cobra.Command{
		Use:   "create --role admin|read|router [--name N] [--out FILE]",
		Short: "Make an API token and print it, once",
		Example: `  slum token create --role admin --name ann --out ~/.config/slum/token   # written 0600, never shown
  slum token create --role router --name edge-1 > router.token && chmod 600 router.token`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := slum.APIRole(role)
			if err := desired.ValidateAPIRole("--role", r); err != nil {
				return err
			}
			if err := desired.ValidateTokenName("--name", name); err != nil {
				return err
			}
			var file *os.File
			if out != "" {
				// Made before the token, so a path that cannot take it
				// leaves no token behind.
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return &slum.FieldError{Field: "--out", Value: out, Reason: "cannot be created (it must not exist): " + pathErrorCause(err)}
				}
				file = f
				defer file.Close()
			}
			err := a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				rec, secret, err := st.CreateAPIToken(ctx, r, name)
				if err != nil {
					return err
				}
				what := fmt.Sprintf("API token %d (%s", rec.ID, rec.Role)
				if rec.Name != "" {
					what += fmt.Sprintf(", %q", rec.Name)
				}
				what += ")"
				if file != nil {
					if _, err := fmt.Fprintln(file, secret); err != nil {
						return fmt.Errorf("write %s: %w", out, err)
					}
					if err := file.Close(); err != nil {
						return fmt.Errorf("write %s: %w", out, err)
					}
					return a.say(rec, "%s created and written to %s (mode 0600)", what, oneLine(out))
				}
				if a.json() {
					return a.printJSON(struct {
						slum.APIToken
						Token string `json:"token"`
					}{rec, secret})
				}
				fmt.Fprintln(a.stdout, secret)
				fmt.Fprintf(a.stderr, "slum: %s created; it is shown only this once: keep it in a file only you can read (chmod 600)\n", oneLine(what))
				return nil
			})(cmd, args)
			if err != nil && file != nil {
				file.Close()
				os.Remove(out)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "admin, read or router (required)")
	cmd.Flags().StringVar(&name, "name", "", "what the token is for, shown in lists and in the event log")
	cmd.Flags().StringVar(&out, "out", "", "write the token to this new file (mode 0600) instead of printing it")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func (a *app) tokenList() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List API tokens (the tokens themselves are never kept or shown)",
		Args:  exactArgs(),
		RunE: a.withFleet(func(ctx context.Context, st slum.Fleet) error {
			ts, err := st.ListAPITokens(ctx)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ts))
			for i, t := range ts {
				state := "active"
				if t.Revoked() {
					state = "revoked " + t.RevokedAt.Local().Format("2006-01-02 15:04")
				}
				rows[i] = []string{fmt.Sprint(t.ID), dash(t.Name), string(t.Role), t.CreatedAt.Local().Format("2006-01-02 15:04"), state}
			}
			return a.table(append([]slum.APIToken{}, ts...), []string{"ID", "NAME", "ROLE", "CREATED", "STATE"}, rows)
		}),
	}
}

func (a *app) tokenRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token: it stops working at once",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return &slum.FieldError{Field: "token id", Value: args[0], Reason: "must be the number 'slum token list' shows"}
			}
			return a.withFleet(func(ctx context.Context, st slum.Fleet) error {
				t, err := st.RevokeAPIToken(ctx, id)
				if err != nil {
					return err
				}
				return a.say(t, "API token %d (%s, %s) revoked; it no longer works", t.ID, oneLine(dash(t.Name)), t.Role)
			})(cmd, args)
		},
	}
}
