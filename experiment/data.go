package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/examples/replicated"
	"github.com/slum-fleet/slum/internal/replicastore"
	"github.com/slum-fleet/slum/litestream"
	"github.com/slum-fleet/slum/localfleet"
)

// dataProcess is the tenement service the data experiment's tenant runs:
// examples/replicated's app under 'slum guard', with Litestream.
const dataProcess = "data"

// DataOptions describe a data experiment (RunData).
type DataOptions struct {
	Faults   []Fault // of DataFaults
	Trials   int
	Seed     int64
	Servers  int
	Settings slum.Settings
	Dir      string
	// Slum is the slum binary every copy runs as its guard.
	Slum     string
	Launcher Launcher
	Progress func(Progress)
}

// MissingToolsError says which tools a data experiment needs and cannot
// find, and how to install them.
type MissingToolsError struct{ Missing []string }

func (e *MissingToolsError) Error() string {
	return "slum experiment --data runs real Litestream and a real replica store (SeaweedFS), and cannot find: " +
		strings.Join(e.Missing, "; ") + ". scripts/setup.sh installs both"
}

// CheckDataTools reports, as a *MissingToolsError, the tools a data
// experiment needs that cannot be found.
func CheckDataTools() error {
	_, _, err := dataTools()
	return err
}

// dataTools finds litestream and weed.
func dataTools() (ls, weed string, err error) {
	var missing []string
	if ls, err = litestream.Find(); err != nil {
		missing = append(missing, err.Error())
	}
	if weed, err = replicastore.FindWeed(); err != nil {
		missing = append(missing, err.Error()+" (or: go install github.com/seaweedfs/seaweedfs/weed@latest, then put weed on PATH)")
	}
	if len(missing) > 0 {
		return "", "", &MissingToolsError{Missing: missing}
	}
	return ls, weed, nil
}

// RunData runs a data experiment: a replicated tenant (examples/replicated's
// app under 'slum guard', with real Litestream, its replica on a SeaweedFS
// server it starts) on real tenement servers, through each fault's trials
// in turn, writing to it all along and measuring what the writes it
// acknowledged became. It needs root and tenement, litestream and weed.
// When ctx ends it stops cleanly and reports the trials that finished.
func RunData(ctx context.Context, opt DataOptions) (*Report, error) {
	ls, weed, err := dataTools()
	if err != nil {
		return nil, err
	}
	recipe := filepath.Join(opt.Dir, "recipe")
	if err := writeRecipe(recipe); err != nil {
		return nil, err
	}
	opt.progress(Progress{Phase: "starting the replica store (SeaweedFS)"})
	storeDir := filepath.Join(opt.Dir, "replica-store")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, err
	}
	s3, err := replicastore.StartBound(weed, storeDir, "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("start the replica store: %w", err)
	}
	defer s3.Stop()
	// The controller reads and revokes leases on the store: it finds the
	// credentials in its environment, as 'slum run' does.
	undo := setenv(s3.Env())
	defer undo()
	env := map[string]string{}
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	port := s3.Endpoint[strings.LastIndex(s3.Endpoint, ":")+1:]
	command := fmt.Sprintf("%s guard --instance {id} --db {data_dir}/data/{id}/app.db --replica s3://%s/experiment/{tenant}?endpoint=http://{host}:%s --litestream %s --litestream-config %s -- python3 %s",
		opt.Slum, replicastore.Bucket, port, ls, filepath.Join(recipe, "litestream.yml"), filepath.Join(recipe, "app.py"))
	ids := make([]string, opt.Servers)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d", i+1)
	}
	opt.progress(Progress{Phase: "starting the local fleet"})
	fleet, err := localfleet.Start(ctx, localfleet.Options{Servers: opt.Servers, Dir: filepath.Join(opt.Dir, "servers"),
		Backend: localfleet.BackendTenement, Names: ids, Services: []localfleet.Service{{Name: dataProcess, Command: command, Env: env}}})
	if err != nil {
		return nil, fmt.Errorf("start the local fleet (a data experiment needs real tenement servers: root, and ten on PATH): %w", err)
	}
	rep := &Report{Backend: fleet.Backend, BackendReason: fleet.Reason, Servers: opt.Servers, Tenants: 1, Settings: opt.Settings,
		Seed: opt.Seed, TrialsAsked: opt.Trials, Faults: opt.Faults, Started: time.Now(), Trials: []Trial{}, LeftBehind: []string{},
		LoadAverage: []string{loadAverage()}, Data: true}
	defer func() {
		fleet.Close()
		rep.LeftBehind = append(rep.LeftBehind, namespacesLeft(fleet)...)
		rep.LoadAverage = append(rep.LoadAverage, loadAverage())
	}()
	opt.progress(Progress{Phase: fmt.Sprintf("using %d real tenement servers, each in a network namespace of its own", opt.Servers)})
	runTrials(ctx, rep, opt.Faults, opt.Trials, opt.Seed, opt.Dir, opt.progress, func(t trialSpec) Trial {
		r := &dataRun{opt: opt, fleet: fleet, fault: t.fault, k: t.k, tenant: fmt.Sprintf("d%03d", t.n), endpoint: s3.Endpoint,
			rng: t.rng, dir: t.dir}
		return r.run(ctx)
	})
	return rep, nil
}

func (o DataOptions) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// writeRecipe writes the recipe's app and Litestream config into dir.
func writeRecipe(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return errors.Join(os.WriteFile(filepath.Join(dir, "app.py"), replicated.App, 0o644),
		os.WriteFile(filepath.Join(dir, "litestream.yml"), replicated.LitestreamConfig, 0o644))
}

// setenv sets the KEY=VALUE pairs in this process's environment and
// returns what puts the old values back.
func setenv(kvs []string) func() {
	type old struct {
		k, v string
		had  bool
	}
	var olds []old
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		was, had := os.LookupEnv(k)
		olds = append(olds, old{k, was, had})
		_ = os.Setenv(k, v)
	}
	return func() {
		for _, o := range olds {
			if o.had {
				_ = os.Setenv(o.k, o.v)
			} else {
				_ = os.Unsetenv(o.k)
			}
		}
	}
}
