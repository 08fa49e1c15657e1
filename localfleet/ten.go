// Package localfleet runs a fleet of tenement servers on this machine, for
// slum's demo and its end-to-end tests: real `ten serve` processes (from
// `pip install tenement==0.2.2`), each in a network namespace of its own so
// their instance ports cannot collide, or in-process simulators when real
// tenement cannot run here.
package localfleet

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

//go:embed app.py
var appPy []byte

// TenementVersion is the release slum's contract is written against.
const TenementVersion = "0.2.2"

// FindTen locates the ten binary: $TEN_BIN, then PATH, then Python's
// scripts directory (where pip puts it, and which pyenv may keep off PATH).
func FindTen() (string, error) {
	if p := os.Getenv("TEN_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("ten"); err == nil {
		return p, nil
	}
	out, err := exec.Command("python3", "-c", `import sysconfig; print(sysconfig.get_path("scripts"))`).Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "ten")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("the tenement binary 'ten' was not found (install it with: pip install tenement==" + TenementVersion + ")")
}

// Service is one [service.NAME] of a tenement.toml.
type Service struct {
	Name        string
	IdleTimeout int // seconds; 0 for none
	// Command replaces the test app ("python3 app.py"); {host} in it
	// becomes the host's address on the server's link (where a store on
	// the host is reached from the server's namespace), {app} the test
	// app's path.
	Command string
	Env     map[string]string // more [service.NAME.env] entries
}

// WriteConfig prepares dir for a tenement server: the tenant app and a
// tenement.toml with the services, checking health every second. Every
// instance gets SLUM_SERVER, the server's id, in its environment (what a
// replicated tenant's guard names in its lease).
func WriteConfig(dir, server string, services []Service) error {
	return writeConfig(dir, server, "127.0.0.1", services)
}

func writeConfig(dir, server, host string, services []Service) error {
	app := filepath.Join(dir, "app.py")
	if err := os.WriteFile(app, appPy, 0o644); err != nil {
		return err
	}
	if len(services) == 0 {
		services = []Service{{Name: "api"}}
	}
	var b strings.Builder
	b.WriteString("[settings]\nhealth_check_interval = 1\n\n")
	for _, s := range services {
		command := "python3 " + app
		if s.Command != "" {
			command = strings.NewReplacer("{host}", host, "{app}", app).Replace(s.Command)
		}
		fmt.Fprintf(&b, "[service.%s]\ncommand = %q\nhealth = \"/health\"\nisolation = \"process\"\n", s.Name, command)
		if s.IdleTimeout > 0 {
			fmt.Fprintf(&b, "idle_timeout = %d\n", s.IdleTimeout)
		}
		fmt.Fprintf(&b, "[service.%s.env]\nTENANT_ID = \"{id}\"\nDATA_DIR = \"{data_dir}\"\nSERVER_ID = %q\nSLUM_SERVER = %q\n", s.Name, server, server)
		keys := make([]string, 0, len(s.Env))
		for k := range s.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %q\n", k, s.Env[k])
		}
		b.WriteString("\n")
	}
	return os.WriteFile(filepath.Join(dir, "tenement.toml"), []byte(b.String()), 0o644)
}

// TenOptions describe one real tenement server.
type TenOptions struct {
	Name     string // the server's id, which its tenants' app reports
	Dir      string // its working directory; created
	Port     int
	Domain   string
	Services []Service
	Netns    string // run inside this network namespace
	HostAddr string // the host's address on the namespace's link; default 127.0.0.1
	URL      string // how slum reaches it; default http://127.0.0.1:Port
}

// Ten is a running `ten serve`.
type Ten struct {
	Opt       TenOptions
	Data      string // --data-dir
	Token     string
	TokenFile string
	URL       string
	ten       string
	cmd       *exec.Cmd
	done      chan struct{}
}

// StartTen prepares and starts a tenement server and waits until it
// answers.
func StartTen(ctx context.Context, opt TenOptions) (*Ten, error) {
	ten, err := FindTen()
	if err != nil {
		return nil, err
	}
	if opt.Domain == "" {
		opt.Domain = "fleet.test"
	}
	if opt.URL == "" {
		opt.URL = fmt.Sprintf("http://127.0.0.1:%d", opt.Port)
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, err
	}
	host := opt.HostAddr
	if host == "" {
		host = "127.0.0.1"
	}
	if err := writeConfig(opt.Dir, opt.Name, host, opt.Services); err != nil {
		return nil, err
	}
	t := &Ten{Opt: opt, Data: filepath.Join(opt.Dir, "data"), URL: opt.URL, ten: ten}
	t.TokenFile = filepath.Join(t.Data, "api_token")
	gen := exec.CommandContext(ctx, ten, "--data-dir", t.Data, "token-gen")
	gen.Dir = opt.Dir
	if out, err := gen.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ten token-gen: %v: %s", err, out)
	}
	tok, err := os.ReadFile(t.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	t.Token = strings.TrimSpace(string(tok))
	if err := t.Launch(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// serveArgs is the command line of the server process, run in Opt.Dir.
func (t *Ten) serveArgs() []string {
	args := []string{t.ten, "--data-dir", t.Data, "serve", "--port", fmt.Sprint(t.Opt.Port), "--domain", t.Opt.Domain}
	if t.Opt.Netns != "" {
		args = append([]string{"ip", "netns", "exec", t.Opt.Netns}, args...)
	}
	return args
}

// StartCommand is a shell command that starts the server process again
// by hand, as Launch does (without its log file).
func (t *Ten) StartCommand() string {
	quoted := []string{"cd", shellQuote(t.Opt.Dir), "&&"}
	for _, a := range t.serveArgs() {
		quoted = append(quoted, shellQuote(a))
	}
	return strings.Join(quoted, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Launch starts the server process (again) and waits for /health.
func (t *Ten) Launch(ctx context.Context) error {
	args := t.serveArgs()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = t.Opt.Dir
	cmd.Env = append(os.Environ(), "RUST_LOG=warn", "NO_COLOR=1")
	logf, err := os.OpenFile(filepath.Join(t.Opt.Dir, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start ten serve: %w", err)
	}
	t.cmd = cmd
	t.done = make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); logf.Close(); close(done) }(t.done)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-t.done:
			return fmt.Errorf("ten serve on port %d exited; log:\n%s", t.Opt.Port, t.Log())
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		default:
		}
		if t.Healthy() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Stop()
	return fmt.Errorf("ten serve on port %d: no answer on /health; log:\n%s", t.Opt.Port, t.Log())
}

// Healthy probes /health once, from where slum runs.
func (t *Ten) Healthy() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(t.URL + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Log returns what the server printed.
func (t *Ten) Log() string {
	b, _ := os.ReadFile(filepath.Join(t.Opt.Dir, "serve.log"))
	return string(b)
}

// Pid is the server process's id, or 0 when it is not running.
func (t *Ten) Pid() int {
	if t.cmd == nil || t.cmd.Process == nil {
		return 0
	}
	return t.cmd.Process.Pid
}

// Signal sends sig to the server process (ip netns exec execs it, so the
// pid is the server's).
func (t *Ten) Signal(sig syscall.Signal) error {
	if t.cmd == nil || t.cmd.Process == nil {
		return errors.New("not running")
	}
	return t.cmd.Process.Signal(sig)
}

// Stop ends the server with SIGTERM, which stops its instances, and waits.
func (t *Ten) Stop() {
	if t.cmd == nil {
		return
	}
	_ = t.cmd.Process.Signal(syscall.SIGCONT) // in case it was stopped
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
	t.cmd = nil
}

// Kill ends the server with SIGKILL, as a crash would: its instances keep
// running until it starts again (tenement then kills them).
func (t *Ten) Kill() {
	if t.cmd == nil {
		return
	}
	_ = t.cmd.Process.Signal(syscall.SIGKILL)
	<-t.done
	t.cmd = nil
}

// Running reports whether the server process is up.
func (t *Ten) Running() bool {
	if t.cmd == nil {
		return false
	}
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

// Restart stops and starts the server: tenement forgets every instance.
func (t *Ten) Restart(ctx context.Context) error {
	t.Stop()
	return t.Launch(ctx)
}
