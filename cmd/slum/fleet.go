package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/desired"
)

// apiFlags say how to reach a fleet through its API instead of --db.
type apiFlags struct {
	url       string
	tokenFile string
	caFile    string
	insecure  bool
}

// remoteAnnotation marks commands that work through the API too; every
// other command refuses --api.
const remoteAnnotation = "slum/remote"

var remoteOK = map[string]string{remoteAnnotation: "yes"}

func (f *apiFlags) register(root *cobra.Command, lookupEnv func(string) (string, bool)) {
	env := func(name string) string { v, _ := lookupEnv(name); return v }
	pf := root.PersistentFlags()
	pf.StringVar(&f.url, "api", env("SLUM_API"), "drive the fleet through its API at this URL (https://host:port) instead of --db (env SLUM_API)")
	pf.StringVar(&f.tokenFile, "api-token-file", env("SLUM_API_TOKEN_FILE"), "with --api: the file holding the API token (env SLUM_API_TOKEN_FILE)")
	// The short name the issue uses. 'server add' and 'server update'
	// have a --token-file of their own (the server's token): there only
	// --api-token-file names the API's.
	pf.StringVar(&f.tokenFile, "token-file", env("SLUM_API_TOKEN_FILE"), "with --api: same as --api-token-file")
	pf.StringVar(&f.caFile, "api-ca", env("SLUM_API_CA"), "with --api: trust the API's certificate from this PEM file (a self-signed one, say) (env SLUM_API_CA)")
	pf.BoolVar(&f.insecure, "api-insecure", false, "with --api: allow plain http:// beyond loopback, sending the token unencrypted")
}

// remote reports whether the commands go through the API.
func (a *app) remote() bool { return a.api.url != "" }

// checkRemote refuses --api where it does not belong: with --db, and on
// commands that work on the database only.
func (a *app) checkRemote(cmd *cobra.Command) error {
	f := cmd.Flags()
	apiGiven := f.Changed("api")
	if apiGiven && f.Changed("db") {
		return usageError{errors.New("give --db or --api, not both")}
	}
	if !apiGiven && f.Changed("db") {
		a.api.url = "" // an explicit --db beats SLUM_API
	}
	if !a.remote() {
		if f.Changed("api-token-file") || f.Changed("api-ca") {
			return usageError{errors.New("--api-token-file and --api-ca go with --api (or SLUM_API)")}
		}
		return nil
	}
	if !cmd.HasParent() {
		return nil // slum alone: help, or an unknown command
	}
	for c := cmd; c != nil; c = c.Parent() {
		if c.Annotations[remoteAnnotation] != "" || c.Name() == "help" || c.Name() == "completion" {
			return nil
		}
	}
	return usageError{fmt.Errorf("'%s' works on the fleet database only and takes no --api: run it where the database is (unset SLUM_API)", cmd.CommandPath())}
}

// client makes the API client --api and its flags describe.
func (a *app) client() (*client.Client, error) {
	return a.clientFor(a.api, apiFlagNames{url: "--api", token: "--api-token-file", env: " (or SLUM_API_TOKEN_FILE)", ca: "--api-ca"})
}

// apiFlagNames name the flags an API's URL, token file and CA came from,
// for errors.
type apiFlagNames struct{ url, token, env, ca string }

// clientFor makes a client of the API f describes.
func (a *app) clientFor(f apiFlags, names apiFlagNames) (*client.Client, error) {
	if f.tokenFile == "" {
		return nil, usageError{fmt.Errorf("%s needs the API token: %s F%s; make one with 'slum token create'", names.url, names.token, names.env)}
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return nil, &slum.FieldError{Field: names.token, Value: f.tokenFile, Reason: "cannot be read: " + pathErrorCause(err)}
	}
	if w := desired.TokenFileWarning(f.tokenFile); w != "" {
		a.warn("%s", w)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, &slum.FieldError{Field: names.token, Value: f.tokenFile, Reason: "is empty; put the token 'slum token create' printed there"}
	}
	opt := client.Options{InsecureNoTLS: f.insecure, UserAgent: "slum-cli"}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, &slum.FieldError{Field: names.ca, Value: f.caFile, Reason: "cannot be read: " + pathErrorCause(err)}
		}
		opt.RootCAs = x509.NewCertPool()
		if !opt.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &slum.FieldError{Field: names.ca, Value: f.caFile, Reason: "holds no PEM certificate"}
		}
	}
	c, err := client.New(f.url, tok, opt)
	if err != nil {
		var fe *slum.FieldError
		if errors.As(err, &fe) && fe.Field == "API URL" {
			fe.Field = names.url
		}
		return nil, err
	}
	return c, nil
}

func pathErrorCause(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// withFleet runs fn on the fleet: the existing database, or the API.
func (a *app) withFleet(fn func(ctx context.Context, f slum.Fleet) error) func(*cobra.Command, []string) error {
	return a.withFleetFor(dbMustExist, fn)
}

// withFleetFor runs fn on the fleet, with the database opened for use
// (a fleet behind an API always exists).
func (a *app) withFleetFor(use dbUse, fn func(ctx context.Context, f slum.Fleet) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if a.remote() {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			return fn(cmd.Context(), c)
		}
		s, err := a.open(cmd.Context(), use)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(cmd.Context(), s)
	}
}
