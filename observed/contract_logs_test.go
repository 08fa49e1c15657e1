package observed_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum/observed"
)

// hit sends a request to an instance's app through the server's subdomain
// routing; slum's test app logs a line for it (see localfleet/app.py).
func hit(t *testing.T, tg target, process, id, path string) {
	t.Helper()
	req, _ := http.NewRequest("GET", tg.url+path, nil)
	req.Host = id + "." + process + "." + tg.domain
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s of %s: %v", path, id, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s of %s: HTTP %d", path, id, resp.StatusCode)
	}
}

func messages(es []observed.LogEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Message
	}
	return out
}

// logsUntil polls the server's lines of q until ok holds (5 s at most).
func logsUntil(t *testing.T, c *observed.Client, q observed.LogQuery, what string, ok func([]observed.LogEntry) bool) []observed.LogEntry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		es, err := c.Logs(context.Background(), q)
		if err != nil {
			t.Fatalf("logs %+v: %v", q, err)
		}
		if ok(es) {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the server keeps %q", what, messages(es))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// next reads the stream's next line, failing after wait.
func next(t *testing.T, s *observed.LogStream, wait time.Duration) observed.LogEntry {
	t.Helper()
	type got struct {
		e   observed.LogEntry
		err error
	}
	ch := make(chan got, 1)
	go func() { e, err := s.Next(); ch <- got{e, err} }()
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatalf("the stream ended: %v", g.err)
		}
		return g.e
	case <-time.After(wait):
		s.Close()
		t.Fatalf("no line on the stream in %v", wait)
	}
	return observed.LogEntry{}
}

// rawStreamLine opens the stream with a raw query and returns the data of
// its first event once fire has run.
func rawStreamLine(t *testing.T, tg target, query string, fire func()) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tg.url+"/api/logs/stream?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+tg.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("raw stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("the stream's Content-Type is %q", ct)
	}
	fire()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return d
		}
	}
	t.Fatalf("raw stream ended: %v", sc.Err())
	return ""
}

// runLogContract pins what tenement does with its instances' output.
func runLogContract(t *testing.T, tg target, c *observed.Client) {
	ctx := context.Background()
	lana := observed.LogQuery{LogFilter: observed.LogFilter{ID: "lana--prod"}}
	before := time.Now()
	t.Run("logs: every line of an instance, oldest first, with a millisecond timestamp", func(t *testing.T) {
		if _, err := c.Spawn(ctx, "api", "lana--prod"); err != nil {
			t.Fatal(err)
		}
		logsUntil(t, c, lana, "the app's first line", func(es []observed.LogEntry) bool { return len(es) == 1 })
		for _, p := range []string{"/a", "/b", "/stderr/c"} {
			hit(t, tg, "api", "lana--prod", p)
		}
		want := []string{"lana--prod listening on port", "GET /a hits=1", "GET /b hits=2", "GET /stderr/c hits=3"}
		es := logsUntil(t, c, lana, "four lines", func(es []observed.LogEntry) bool { return len(es) == 4 })
		after := time.Now()
		for i, e := range es {
			if !strings.HasPrefix(e.Message, want[i]) || e.Process != "api" || e.ID != "lana--prod" {
				t.Fatalf("line %d = %+v, want %q of api lana--prod", i, e, want[i])
			}
			if i > 0 && e.Timestamp < es[i-1].Timestamp {
				t.Fatalf("line %d is older than the one before: %v", i, es)
			}
			if e.Time().Before(before.Add(-time.Second)) || e.Time().After(after.Add(time.Second)) {
				t.Fatalf("line %d's timestamp %v is not between %v and %v", i, e.Time(), before, after)
			}
		}
		if levels := []observed.LogLevel{es[0].Level, es[1].Level, es[2].Level, es[3].Level}; !slices.Equal(levels,
			[]observed.LogLevel{observed.LogStdout, observed.LogStdout, observed.LogStdout, observed.LogStderr}) {
			t.Fatalf("levels %v", levels)
		}
	})
	t.Run("logs: filters and the limit keep the newest", func(t *testing.T) {
		for _, tc := range []struct {
			q    observed.LogQuery
			want []string
		}{
			{observed.LogQuery{LogFilter: observed.LogFilter{ID: "lana--prod", Level: observed.LogStderr}}, []string{"GET /stderr/c hits=3"}},
			{observed.LogQuery{LogFilter: observed.LogFilter{ID: "lana--prod"}, Search: "GET /b"}, []string{"GET /b hits=2"}},
			{observed.LogQuery{LogFilter: observed.LogFilter{ID: "lana--prod"}, Search: "get /b"}, []string{}}, // case-sensitive
			{observed.LogQuery{LogFilter: observed.LogFilter{ID: "lana--prod"}, Limit: 2}, []string{"GET /b hits=2", "GET /stderr/c hits=3"}},
			{observed.LogQuery{LogFilter: observed.LogFilter{Process: "idle", ID: "lana--prod"}}, []string{}},
			{observed.LogQuery{LogFilter: observed.LogFilter{ID: "lana"}}, []string{}}, // the whole id, not a prefix
		} {
			es, err := c.Logs(ctx, tc.q)
			if err != nil || !slices.Equal(messages(es), tc.want) {
				t.Errorf("logs %+v = %q, %v; want %q", tc.q, messages(es), err, tc.want)
			}
		}
		// A level tenement does not know is no filter at all: the client
		// never sends one.
		if _, err := c.Logs(ctx, observed.LogQuery{LogFilter: observed.LogFilter{Level: "info"}}); !errors.Is(err, observed.ErrBadRequest) {
			t.Fatalf("level info: %v", err)
		}
		raw := rawGet(t, tg, "/api/logs?id=lana--prod&level=info")
		if strings.Count(raw, `"instance_id"`) != 4 {
			t.Fatalf("level=info answered %s", raw)
		}
		if code, body := rawStatus(t, tg, "/api/logs?limit=x"); code != 400 {
			t.Fatalf("limit=x: %d %s", code, body)
		}
		for _, bad := range []observed.LogFilter{{ID: "../x"}, {Process: "A"}, {Level: "warn"}} {
			if _, err := c.Logs(ctx, observed.LogQuery{LogFilter: bad}); !errors.Is(err, observed.ErrBadRequest) {
				t.Errorf("logs %+v: %v", bad, err)
			}
			if _, err := c.OpenLogStream(ctx, bad, 0); !errors.Is(err, observed.ErrBadRequest) {
				t.Errorf("stream %+v: %v", bad, err)
			}
		}
	})
	runLogStreamContract(t, tg, c)
	runLogBufferContract(t, tg, c)
}

// runLogStreamContract pins the log stream (after runLogContract's lines).
func runLogStreamContract(t *testing.T, tg target, c *observed.Client) {
	ctx := context.Background()
	t.Run("log stream: only lines after it opened, filtered, search ignored", func(t *testing.T) {
		s, err := c.OpenLogStream(ctx, observed.LogFilter{ID: "lana--prod"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		hit(t, tg, "api", "lana--prod", "/d")
		if e := next(t, s, 5*time.Second); e.Message != "GET /d hits=4" || e.Level != observed.LogStdout || e.ID != "lana--prod" || e.Timestamp == 0 {
			t.Fatalf("the stream's first line: %+v (no history before it)", e)
		}
		s.Close()
		s, err = c.OpenLogStream(ctx, observed.LogFilter{ID: "lana--prod", Level: observed.LogStderr}, 0)
		if err != nil {
			t.Fatal(err)
		}
		hit(t, tg, "api", "lana--prod", "/e")
		hit(t, tg, "api", "lana--prod", "/stderr/f")
		if e := next(t, s, 5*time.Second); e.Message != "GET /stderr/f hits=6" {
			t.Fatalf("stderr stream: %+v", e)
		}
		s.Close()
		got := rawStreamLine(t, tg, "id=lana--prod&search=nothing-like-it", func() { hit(t, tg, "api", "lana--prod", "/g") })
		if !strings.Contains(got, "GET /g hits=7") {
			t.Fatalf("a stream with a search sent %s", got)
		}
	})
}

// runLogBufferContract pins what the server keeps of lines, and for how
// long (after runLogStreamContract's lines).
func runLogBufferContract(t *testing.T, tg target, c *observed.Client) {
	ctx := context.Background()
	lana := observed.LogQuery{LogFilter: observed.LogFilter{ID: "lana--prod"}}
	t.Run("logs: lines can share a millisecond", func(t *testing.T) {
		hit(t, tg, "api", "lana--prod", "/burst/50")
		es := logsUntil(t, c, observed.LogQuery{LogFilter: lana.LogFilter, Search: "burst "}, "50 lines", func(es []observed.LogEntry) bool { return len(es) == 50 })
		shared := false
		for i := 1; i < len(es); i++ {
			if es[i].Timestamp < es[i-1].Timestamp || es[i].Message != fmt.Sprintf("burst %d/50", i+1) {
				t.Fatalf("burst line %d: %+v after %+v", i, es[i], es[i-1])
			}
			shared = shared || es[i].Timestamp == es[i-1].Timestamp
		}
		if !shared {
			t.Fatal("50 lines printed at once got 50 timestamps")
		}
	})
	t.Run("logs: a stopped instance's lines stay", func(t *testing.T) {
		if err := c.Stop(ctx, "api", "lana--prod"); err != nil {
			t.Fatal(err)
		}
		if es, err := c.Logs(ctx, lana); err != nil || len(es) < 58 {
			t.Fatalf("after the stop: %d lines, %v", len(es), err)
		}
	})
	t.Run("logs: the server keeps its newest 10,000 lines, of every instance together", func(t *testing.T) {
		if _, err := c.Spawn(ctx, "api", "burt--prod"); err != nil {
			t.Fatal(err)
		}
		hit(t, tg, "api", "burt--prod", fmt.Sprintf("/burst/%d", observed.MaxLogLines+50))
		last := fmt.Sprintf("burst %d/%d", observed.MaxLogLines+50, observed.MaxLogLines+50)
		es := logsUntil(t, c, observed.LogQuery{}, "the burst", func(es []observed.LogEntry) bool {
			return len(es) > 0 && es[len(es)-1].Message == last
		})
		if len(es) != observed.MaxLogLines || es[0].Message != "burst 51/10050" {
			t.Fatalf("the server keeps %d lines from %q", len(es), es[0].Message)
		}
		if es, _ := c.Logs(ctx, observed.LogQuery{Limit: 3 * observed.MaxLogLines}); len(es) != observed.MaxLogLines {
			t.Fatalf("a larger limit: %d lines", len(es))
		}
		if es, _ := c.Logs(ctx, lana); len(es) != 0 {
			t.Fatalf("lana's older lines are still kept: %d", len(es))
		}
		if err := c.Stop(ctx, "api", "burt--prod"); err != nil {
			t.Fatal(err)
		}
	})
}

func rawStatus(t *testing.T, tg target, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", tg.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+tg.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func rawGet(t *testing.T, tg target, path string) string {
	t.Helper()
	code, body := rawStatus(t, tg, path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

// runRestartContract pins instance restarts, telemetry and storage.
func runRestartContract(t *testing.T, c *observed.Client) {
	ctx := context.Background()
	t.Run("restart of an absent instance starts it; the next one backs off", func(t *testing.T) {
		start := time.Now()
		if res, err := c.Restart(ctx, "api", "rita--prod"); err != nil || res.Instance != "api:rita--prod" {
			t.Fatalf("restart of an absent instance: %+v, %v", res, err)
		}
		first := time.Since(start)
		if !slices.Contains(names(t, c), "api:rita--prod") {
			t.Fatal("the restart did not start it")
		}
		start = time.Now()
		if _, err := c.Restart(ctx, "api", "rita--prod"); err != nil {
			t.Fatal(err)
		}
		second := time.Since(start)
		if first > 900*time.Millisecond || second < 900*time.Millisecond {
			t.Fatalf("restarts took %v then %v; want no wait, then tenement's 1 s backoff", first, second)
		}
		if _, err := c.Restart(ctx, "nope", "x--y"); !errors.Is(err, observed.ErrUnknownProcess) || !observed.IsPermanent(err) {
			t.Fatalf("restart of an unknown process: %v", err)
		}
		if _, err := c.Restart(ctx, "api", "../x"); !errors.Is(err, observed.ErrBadRequest) {
			t.Fatalf("restart of a bad id: %v", err)
		}
	})
	t.Run("telemetry lists the running instances, with no token needed", func(t *testing.T) {
		resp, err := http.Get(c.URL() + "/api/telemetry")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("telemetry without a token: %v %v", resp, err)
		}
		resp.Body.Close()
		tel, err := c.Telemetry(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(tel.Instances, func(it observed.InstanceTelemetry) bool { return it.Name == "api:rita--prod" })
		if i < 0 || tel.Summary.TotalInstances != len(tel.Instances) || tel.Summary.TotalInstances != len(names(t, c)) {
			t.Fatalf("telemetry %+v", tel)
		}
		if it := tel.Instances[i]; it.Process != "api" || it.ID != "rita--prod" || it.Weight != 100 || it.Health == "" {
			t.Fatalf("rita's entry %+v", it)
		}
	})
	t.Run("storage of a running instance; none for an absent one", func(t *testing.T) {
		st, err := c.Storage(ctx, "api", "rita--prod")
		if err != nil || st.Path == "" || st.QuotaBytes != nil || st.UsagePercent != nil {
			t.Fatalf("storage = %+v, %v", st, err)
		}
		if _, err := c.Storage(ctx, "api", "nobody--prod"); !errors.Is(err, observed.ErrNoInstance) || observed.IsPermanent(err) {
			t.Fatalf("storage of an absent instance: %v", err)
		}
		if _, err := c.Storage(ctx, "api", "a/b"); !errors.Is(err, observed.ErrBadRequest) {
			t.Fatalf("storage of a bad id: %v", err)
		}
		if err := c.Stop(ctx, "api", "rita--prod"); err != nil {
			t.Fatal(err)
		}
	})
}

// runServerEndContract pins what a server's end does to its log streams.
func runServerEndContract(t *testing.T, tg target, c *observed.Client) {
	ctx := context.Background()
	t.Run("a killed server ends its log streams and comes back with no lines", func(t *testing.T) {
		if _, err := c.Spawn(ctx, "api", "kim--prod"); err != nil {
			t.Fatal(err)
		}
		logsUntil(t, c, observed.LogQuery{}, "a line", func(es []observed.LogEntry) bool { return len(es) > 0 })
		s, err := c.OpenLogStream(ctx, observed.LogFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ended := make(chan error, 1)
		go func() {
			_, err := s.Next()
			ended <- err
		}()
		tg.kill()
		select {
		case err := <-ended:
			if !errors.Is(err, observed.ErrUnavailable) {
				t.Fatalf("the stream ended with %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the stream outlived the server")
		}
		fresh, _ := observed.NewClient(tg.url, tg.token)
		if es, err := fresh.Logs(ctx, observed.LogQuery{}); err != nil || len(es) != 0 {
			t.Fatalf("after the restart: %d lines, %v", len(es), err)
		}
	})
	t.Run("SIGTERM: instances stop, but the server waits for open log streams", func(t *testing.T) {
		if _, err := c.Spawn(ctx, "api", "tom--prod"); err != nil {
			t.Fatal(err)
		}
		s, err := c.OpenLogStream(ctx, observed.LogFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ended := make(chan error, 1)
		go func() {
			_, err := s.Next()
			ended <- err
		}()
		tg.terminate()
		deadline := time.Now().Add(5 * time.Second)
		for c.Ping(ctx) == nil {
			if time.Now().After(deadline) {
				t.Fatal("the server still answers 5 s after SIGTERM")
			}
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case err := <-ended:
			t.Fatalf("the stream ended (or sent a line) after SIGTERM: %v", err)
		case <-time.After(2 * time.Second):
		}
		if tg.running != nil && !tg.running() {
			t.Fatal("tenement exited with a log stream open")
		}
		s.Close()
		deadline = time.Now().Add(10 * time.Second)
		for tg.running != nil && tg.running() {
			if time.Now().After(deadline) {
				t.Fatal("the server did not exit once its last log stream closed")
			}
			time.Sleep(50 * time.Millisecond)
		}
		tg.relaunch()
		if got := names(t, c); len(got) != 0 {
			t.Fatalf("after SIGTERM and a start: %v", got)
		}
	})
}
