// Package harness finds and runs real tenement servers (`ten serve`, from
// `pip install tenement==0.2.2`) for slum's contract and end-to-end tests,
// optionally inside a network namespace of the test's own.
package harness

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

//go:embed app.py
var appPy []byte

// Version is the tenement release slum's contract is written against.
const Version = "0.2.2"

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
	return "", errors.New("the tenement binary 'ten' was not found (install it with: pip install tenement==" + Version + ")")
}

// RequireTen returns the ten binary. In CI (CI set) a missing binary fails
// the test; elsewhere the test is skipped, loudly.
func RequireTen(t testing.TB) string {
	t.Helper()
	p, err := FindTen()
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI requires real tenement: %v", err)
	}
	t.Skipf("SKIPPING REAL-TENEMENT TEST (outside CI only): %v", err)
	return ""
}

// Service is one [service.NAME] of a tenement.toml.
type Service struct {
	Name        string
	IdleTimeout int // seconds; 0 for none
}

// Options configure a server.
type Options struct {
	Port      int
	Domain    string
	Services  []Service // default: one "api" service
	Netns     string    // run inside this network namespace
	LogPrefix string
}

// Server is a running `ten serve`.
type Server struct {
	Dir   string // working directory with tenement.toml
	Data  string // --data-dir
	Token string
	URL   string // as seen from where it is reachable (set by the caller for netns)
	opt   Options
	ten   string
	cmd   *exec.Cmd
	done  chan struct{}
	t     testing.TB
}

// WriteConfig prepares dir for a tenement server: the tenant app and a
// tenement.toml with the services, checking health every second.
func WriteConfig(dir string, services []Service) error {
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
		fmt.Fprintf(&b, "[service.%s]\ncommand = \"python3 %s\"\nhealth = \"/health\"\nisolation = \"process\"\n", s.Name, app)
		if s.IdleTimeout > 0 {
			fmt.Fprintf(&b, "idle_timeout = %d\n", s.IdleTimeout)
		}
		fmt.Fprintf(&b, "[service.%s.env]\nTENANT_ID = \"{id}\"\nDATA_DIR = \"{data_dir}\"\n\n", s.Name)
	}
	return os.WriteFile(filepath.Join(dir, "tenement.toml"), []byte(b.String()), 0o644)
}

// Start runs a tenement server in a temporary directory and waits until it
// answers. It is stopped (SIGTERM) when the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	ten := RequireTen(t)
	if opt.Domain == "" {
		opt.Domain = "fleet.test"
	}
	dir := t.TempDir()
	if err := WriteConfig(dir, opt.Services); err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, Data: filepath.Join(dir, "data"), opt: opt, ten: ten, t: t,
		URL: fmt.Sprintf("http://127.0.0.1:%d", opt.Port)}
	gen := exec.Command(ten, "--data-dir", s.Data, "token-gen")
	gen.Dir = dir
	out, err := gen.CombinedOutput()
	if err != nil {
		t.Fatalf("ten token-gen: %v: %s", err, out)
	}
	tok, err := os.ReadFile(filepath.Join(s.Data, "api_token"))
	if err != nil {
		t.Fatalf("read token: %v", err)
	}
	s.Token = strings.TrimSpace(string(tok))
	s.Launch()
	t.Cleanup(s.Stop)
	return s
}

// Launch starts the server process (again) and waits for /health.
func (s *Server) Launch() {
	s.t.Helper()
	args := []string{s.ten, "--data-dir", s.Data, "serve", "--port", fmt.Sprint(s.opt.Port), "--domain", s.opt.Domain}
	if s.opt.Netns != "" {
		args = append([]string{"ip", "netns", "exec", s.opt.Netns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "RUST_LOG=warn", "NO_COLOR=1")
	logf, err := os.Create(filepath.Join(s.Dir, "serve.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start ten serve: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); logf.Close(); close(done) }(s.done)
	if err := s.waitHealthy(20 * time.Second); err != nil {
		s.Stop()
		s.t.Fatalf("ten serve on port %d: %v; log:\n%s", s.opt.Port, err, s.Log())
	}
}

// Healthy probes /health once.
func (s *Server) Healthy() bool {
	if s.opt.Netns != "" {
		return exec.Command("ip", "netns", "exec", s.opt.Netns, "python3", "-c",
			fmt.Sprintf("import urllib.request; urllib.request.urlopen('http://127.0.0.1:%d/health', timeout=1)", s.opt.Port)).Run() == nil
	}
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(s.URL + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func (s *Server) waitHealthy(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("it exited")
		default:
		}
		if s.Healthy() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("no answer on /health")
}

// Log returns what the server printed.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "serve.log"))
	return string(b)
}

// Signal sends sig to the server process (through ip netns exec, which
// execs it, so the pid is the server's).
func (s *Server) Signal(sig syscall.Signal) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Stop ends the server with SIGTERM, which stops its instances, and waits.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart stops and starts the server: tenement forgets every instance.
func (s *Server) Restart() {
	s.Stop()
	s.Launch()
}

// Ctx is a context bounded by the test's deadline.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
