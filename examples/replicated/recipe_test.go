package replicated_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum/e2e/harness"
	"github.com/slum-fleet/slum/internal/replicastore"
)

// The recipe as shipped (tenement.toml, litestream.yml, app.py), run by
// real tenement servers with a real replica store: a tenant survives
// kill -9 of its server with its data. The two servers run one after the
// other on this host (tenement gives instances the same ports), standing
// for two machines; only the store's endpoint and bucket are edited, as
// the README tells a user to.

func TestMain(m *testing.M) { replicastore.Main(m) }

type tenServer struct {
	t     *testing.T
	dir   string
	port  int
	token string
	cmd   *exec.Cmd
}

func startTen(t *testing.T, ten, name, toml string) *tenServer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"app.py", "litestream.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "tenement.toml"), []byte(toml), 0o644)
	s := &tenServer{t: t, dir: dir, port: freePort(t)}
	gen := exec.Command(ten, "--data-dir", filepath.Join(dir, "data"), "token-gen")
	gen.Dir = dir
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("token-gen: %v %s", err, out)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "data", "api_token"))
	s.token = strings.TrimSpace(string(tok))
	return s
}

func (s *tenServer) serve(ten string, env []string) {
	s.t.Helper()
	s.cmd = exec.Command(ten, "--data-dir", filepath.Join(s.dir, "data"), "serve", "--port", fmt.Sprint(s.port), "--domain", "recipe.test")
	s.cmd.Dir, s.cmd.Env = s.dir, append(env, "RUST_LOG=info", "NO_COLOR=1")
	logf, _ := os.Create(filepath.Join(s.dir, "serve.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		s.cmd.Wait()
		logf.Close()
		if s.t.Failed() {
			b, _ := os.ReadFile(filepath.Join(s.dir, "serve.log"))
			s.t.Logf("%s's log:\n%s", s.dir, b)
		}
	})
	if !waitFor(20*time.Second, func() bool { return get(fmt.Sprintf("http://127.0.0.1:%d/health", s.port)) == nil }) {
		s.t.Fatal("ten serve does not answer")
	}
}

// spawn spawns instance id of service app and returns its port.
func (s *tenServer) spawn(id string) int {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{"process": "app", "id": id})
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/api/instances/spawn", s.port), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct{ Port int }
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil || r.Port == 0 {
		s.t.Fatalf("spawn %s: %s %s", id, resp.Status, b)
	}
	return r.Port
}

func TestRecipeSurvivesKillNineOfItsServer(t *testing.T) {
	ten := harness.RequireTen(t)
	replicastore.RequireLitestream(t)
	srv := replicastore.Shared(t)
	shipped, err := os.ReadFile("tenement.toml")
	if err != nil {
		t.Fatal(err)
	}
	const endpoint, bucket = "http://127.0.0.1:8333", "s3://slum-replicas/"
	if !strings.Contains(string(shipped), endpoint) || !strings.Contains(string(shipped), bucket) {
		t.Fatalf("the recipe's tenement.toml no longer names %s and %s; update this test and the README", endpoint, bucket)
	}
	toml := strings.ReplaceAll(strings.ReplaceAll(string(shipped), endpoint, srv.Endpoint), bucket, "s3://"+replicastore.Bucket+"/"+t.Name()+"/")

	bin := filepath.Join(t.TempDir(), "bin")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "slum"), "../../cmd/slum").CombinedOutput(); err != nil {
		t.Fatalf("build slum: %v\n%s", err, out)
	}
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, srv.Env()...)

	a := startTen(t, ten, "server-a", toml)
	a.serve(ten, env)
	portA := a.spawn("alice--prod")
	app := fmt.Sprintf("http://127.0.0.1:%d", portA)
	if !waitFor(20*time.Second, func() bool { return get(app+"/health") == nil }) {
		t.Fatal("alice--prod does not serve")
	}
	var ids []int
	for i := range 30 {
		ids = append(ids, write(t, app, fmt.Sprint("w", i)))
	}

	killed := time.Now()
	a.cmd.Process.Signal(syscall.SIGKILL) // ten alone: its instance lives on as an orphan
	a.cmd.Wait()
	// the orphan's guard sees its parent die, stops the app, sends the
	// rest and releases the lease
	if !waitFor(10*time.Second, func() bool { return get(app+"/health") != nil }) {
		t.Fatal("the orphaned copy still serves 10 s after its server died")
	}
	b := startTen(t, ten, "server-b", toml)
	b.serve(ten, env)
	appB := fmt.Sprintf("http://127.0.0.1:%d", b.spawn("alice--backup"))
	if !waitFor(20*time.Second, func() bool { return get(appB+"/health") == nil }) {
		t.Fatal("alice--backup does not serve")
	}
	served := time.Since(killed)
	var got struct{ IDs []int }
	if err := getJSON(appB+"/writes", &got); err != nil {
		t.Fatal(err)
	}
	has := map[int]bool{}
	for _, id := range got.IDs {
		has[id] = true
	}
	for _, id := range ids {
		if !has[id] {
			t.Fatalf("write %d, acknowledged before the kill, is lost (the new copy has %v)", id, got.IDs)
		}
	}
	t.Logf("FIGURE recipe: kill -9 of ten → the tenant serves on another server with all %d writes after %s (including starting that server)", len(ids), served.Round(time.Millisecond))
}

func write(t *testing.T, app, body string) int {
	t.Helper()
	resp, err := http.Post(app+"/writes", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ ID int }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.ID == 0 {
		t.Fatalf("write: %s %v", resp.Status, err)
	}
	return r.ID
}

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

func getJSON(url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRecipeChecksHealthEverySecond: slum routes a replicated copy only
// once tenement calls it healthy, so the recipe must not leave tenement's
// 10 s default between checks.
func TestRecipeChecksHealthEverySecond(t *testing.T) {
	b, err := os.ReadFile("tenement.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	set, svc := strings.Index(s, "\n[settings]\nhealth_check_interval = 1\n"), strings.Index(s, "\n[service.app]")
	if set < 0 || svc < 0 || set > svc {
		t.Fatalf("tenement.toml does not set health_check_interval = 1 in [settings] before the service:\n%s", s)
	}
}
