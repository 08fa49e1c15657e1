package observed

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// streamOf serves body as a log stream, then holds the connection open
// until the client leaves.
func streamOf(t *testing.T, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, body)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, "secret-token")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLogStreamReadsEvents(t *testing.T) {
	c := streamOf(t, ":\n\n"+ // a keepalive
		"data: {\"timestamp\":5,\"level\":\"stderr\",\"process\":\"api\",\"instance_id\":\"a--b\",\"message\":\"one\"}\n\n"+
		"id: 7\nevent: log\ndata:{\"timestamp\":6,\"level\":\"stdout\",\r\ndata: \"message\":\"two\"}\r\n\r\n"+
		"data: not json\n\n")
	s, err := c.OpenLogStream(context.Background(), LogFilter{Process: "api"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.Next()
	if err != nil || e != (LogEntry{Timestamp: 5, Level: LogStderr, Process: "api", ID: "a--b", Message: "one"}) {
		t.Fatalf("first: %+v, %v", e, err)
	}
	// Data lines of one event join with a newline, which JSON takes as
	// white space.
	if e, err := s.Next(); err != nil || e.Message != "two" || e.Timestamp != 6 {
		t.Fatalf("second: %+v, %v", e, err)
	}
	if _, err := s.Next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a broken event: %v", err)
	}
}

func TestLogStreamEndsWhenSilent(t *testing.T) {
	c := streamOf(t, "")
	s, err := c.OpenLogStream(context.Background(), LogFilter{}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Next()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "silent for 50ms") || time.Since(start) > 5*time.Second {
		t.Fatalf("a silent stream: %v after %v", err, time.Since(start))
	}
}

func TestLogStreamRefusals(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  error
	}{{401, ErrUnauthorized}, {429, ErrRateLimited}, {503, ErrUnavailable}} {
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.WriteHeader(tc.status)
		}))
		c, _ := NewClient(srv.URL, "secret-token")
		for i := 0; i < 2; i++ {
			_, err := c.OpenLogStream(context.Background(), LogFilter{}, 0)
			if !errors.Is(err, tc.class) || strings.Contains(err.Error(), "secret-token") {
				t.Fatalf("HTTP %d: %v", tc.status, err)
			}
		}
		// A rejected token and a lock-out are not sent again.
		if want := map[int]int{401: 1, 429: 1, 503: 2}[tc.status]; calls != want {
			t.Fatalf("HTTP %d: %d requests, want %d", tc.status, calls, want)
		}
		srv.Close()
	}
}

func TestLogsQuery(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RawQuery
		_, _ = io.WriteString(w, `[{"timestamp":1,"level":"stdout","process":"api","instance_id":"a--b","message":"x y"}]`)
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL, "t")
	es, err := c.Logs(context.Background(), LogQuery{LogFilter: LogFilter{Process: "api", ID: "a--b", Level: LogStderr}, Search: "a&b c", Limit: 5})
	if err != nil || len(es) != 1 || es[0].Message != "x y" {
		t.Fatalf("logs = %+v, %v", es, err)
	}
	if want := "id=a--b&level=stderr&limit=5&process=api&search=a%26b+c"; got != want {
		t.Fatalf("query %q, want %q", got, want)
	}
	if _, err := c.Logs(context.Background(), LogQuery{}); err != nil || got != "" {
		t.Fatalf("no filter: query %q, %v", got, err)
	}
	for _, bad := range []LogQuery{{Limit: -1}, {Search: strings.Repeat("x", MaxLogSearch+1)}, {LogFilter: LogFilter{ID: "a b"}}} {
		if _, err := c.Logs(context.Background(), bad); !errors.Is(err, ErrBadRequest) || !IsPermanent(err) {
			t.Errorf("logs %+v: %v", bad, err)
		}
	}
}

// FuzzLogStream: whatever a server sends, Next returns lines or an error,
// never panics or hangs.
func FuzzLogStream(f *testing.F) {
	f.Add("data: {\"timestamp\":1,\"message\":\"m\"}\n\n")
	f.Add(":\n\ndata: x\ndata: y\n\n")
	f.Add("data: {}\r\n\r\nevent: e\n")
	f.Fuzz(func(t *testing.T, body string) {
		s := &LogStream{server: "fuzz", body: io.NopCloser(strings.NewReader(body)), idle: time.Minute}
		s.br = newStreamReader(s.body)
		s.dog = time.AfterFunc(time.Hour, func() {})
		for i := 0; i <= len(body); i++ {
			if _, err := s.Next(); err != nil {
				return
			}
		}
		t.Fatalf("more lines than bytes from %q", body)
	})
}
