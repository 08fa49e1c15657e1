package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// followed is a 'slum logs -o json -f' running against the fleet: each
// line it prints, with when it was printed.
type followed struct {
	mu    sync.Mutex
	lines []printed
	raw   map[string]int // each printed line's text: how many times
	errs  *os.File       // its stderr
}

type printed struct {
	at   time.Time // when it came out of slum
	line struct {
		Time    time.Time `json:"time"`
		Copy    string    `json:"copy"`
		Level   string    `json:"level"`
		Message string    `json:"message"`
		Gone    string    `json:"gone"`
	}
}

func (e *env) followLogs(args ...string) *followed {
	e.t.Helper()
	errs, err := os.Create(filepath.Join(e.dir, "logs-stderr"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(slumBin, append([]string{"--db", e.db, "-o", "json", "logs", "-f"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = errs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	f := &followed{raw: map[string]int{}, errs: errs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p := printed{at: time.Now()}
			if err := json.Unmarshal(sc.Bytes(), &p.line); err != nil {
				continue
			}
			f.mu.Lock()
			f.lines = append(f.lines, p)
			f.raw[sc.Text()]++
			f.mu.Unlock()
		}
	}()
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		<-done
		_ = cmd.Wait()
		errs.Close()
		if e.t.Failed() {
			b, _ := os.ReadFile(errs.Name())
			e.t.Logf("slum logs -f said:\n%s", b)
		}
	})
	return f
}

// first is the first printed line of copy whose message starts with
// prefix.
func (f *followed) first(copy, prefix string) (printed, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.lines {
		if p.line.Copy == copy && strings.HasPrefix(p.line.Message, prefix) {
			return p, true
		}
	}
	return printed{}, false
}

func (f *followed) twice() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for l, n := range f.raw {
		if n > 1 {
			out = append(out, l)
		}
	}
	return out
}

// hit sends a request to an instance's app on a server, which logs it.
func (e *env) hit(server, id, path string) error {
	m := e.member(server)
	req, _ := http.NewRequest("GET", m.URL+path, nil)
	req.Host = id + ".api." + server + ".fleet.test"
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// TestLogsFollowAcrossFailover: 'slum logs alice -f' while the server
// alice's serving copy runs on is killed. Her spare serves and her
// instance fails over to another server; the lines of the copy that
// replaces it are printed within a second of it serving, and no line is
// printed twice.
func TestLogsFollowAcrossFailover(t *testing.T) {
	e := newEnv(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", failoverTenants))
	e.startRun()
	e.converge(map[string][]string{"s1": {"api:alice--prod", "api:bob--prod", "api:carol--prod"},
		"s2": {"api:alice--backup"}, "s3": {"api:dave--prod"}}, 60*time.Second)
	f := e.followLogs("alice")
	eventually(t, 20*time.Second, "the history of both copies", func() bool {
		_, a := f.first("prod@s1", "alice--prod listening")
		_, b := f.first("backup@s2", "alice--backup listening")
		return a && b
	})
	if err := e.hit("s1", "alice--prod", "/before"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a line of prod@s1 as it comes", func() bool { _, ok := f.first("prod@s1", "GET /before"); return ok })

	s1 := e.member("s1")
	s1.Ten.Kill()
	killed := time.Now()
	defer func() { _ = s1.Ten.Launch(t.Context()) }()
	// The new copy serves once the controller has started it on s3 (a
	// request alone would have tenement start it) and its app answers.
	var serving time.Time
	eventually(t, 30*time.Second, "alice's instance serving on s3", func() bool {
		names, _ := e.running("s3")
		if !slices.Contains(names, "api:alice--prod") || e.hit("s3", "alice--prod", "/after") != nil {
			return false
		}
		serving = time.Now()
		return true
	})
	figure(t, "kill -9 to alice:prod serving on s3", serving.Sub(killed))
	var started, request printed
	eventually(t, 5*time.Second, "the new copy's lines", func() bool {
		var a, b bool
		started, a = f.first("prod@s3", "alice--prod listening")
		request, b = f.first("prod@s3", "GET /after")
		return a && b
	})
	// Its first line, printed when it starts listening, came out this long
	// after tenement read it (the same clock: one machine).
	figure(t, "the new copy's first line: printed after tenement read it", started.at.Sub(started.line.Time))
	figure(t, "the new copy's request line: printed after it was served", request.at.Sub(serving))
	for what, p := range map[string]printed{"first": started, "request": request} {
		if d := p.at.Sub(serving); d > time.Second {
			t.Errorf("the new copy's %s line came %v after it served", what, d)
		}
	}
	// The spare, serving since the death, goes on.
	if err := e.hit("s2", "alice--backup", "/spare"); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	eventually(t, 5*time.Second, "the spare's line", func() bool { _, ok := f.first("backup@s2", "GET /spare"); return ok })
	spare, _ := f.first("backup@s2", "GET /spare")
	figure(t, "the serving spare's line: printed after it was served", spare.at.Sub(asked))
	if twice := f.twice(); len(twice) > 0 {
		t.Fatalf("printed twice: %q", twice)
	}
	said, _ := os.ReadFile(f.errs.Name())
	t.Logf("slum logs -f said:\n%s", said)
	for _, want := range []string{"prod@s1: lost its log stream", "prod@s3: a new copy: following it"} {
		if !strings.Contains(string(said), want) {
			t.Errorf("slum logs -f did not say %q:\n%s", want, said)
		}
	}
}
