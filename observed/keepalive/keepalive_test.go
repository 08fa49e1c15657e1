package keepalive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is an httptest server that counts the connections it accepts.
type server struct {
	*httptest.Server
	conns atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) host() string { return strings.TrimPrefix(s.URL, "http://") }

func call(t *testing.T, p *Pool, req *Request) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var body bytes.Buffer
	status, err := p.Do(ctx, req, &body, 1<<20)
	return status, body.String(), err
}

func TestSendsRequestsOnOneKeptConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+string(b))
	})
	p := NewPool()
	defer p.CloseIdle()
	for i := range 20 {
		req := &Request{Method: http.MethodPost, Host: s.host(), Path: "/api/instances/spawn?x=1",
			Header: []byte("Authorization: Bearer t0k\r\n"), Body: []byte(`{"id":"a"}`)}
		if i%2 == 1 {
			req = &Request{Method: http.MethodGet, Host: s.host(), Path: "/health"}
		}
		status, body, err := call(t, p, req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		want := `POST /api/instances/spawn?x=1 Bearer t0k {"id":"a"}`
		if i%2 == 1 {
			want = "GET /health  "
		}
		if status != http.StatusCreated || body != want {
			t.Fatalf("call %d: %d %q, want 201 %q", i, status, body, want)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Fatalf("20 calls in turn took %d connections, want 1", n)
	}
	if n := p.Idle(s.host()); n != 1 {
		t.Fatalf("%d idle connections after the calls, want 1", n)
	}
}

func TestReadsAnyOtherAnswerAsNetHTTPDoes(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "one ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "two")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}
	})
	p := NewPool()
	defer p.CloseIdle()
	for _, tc := range []struct {
		path, body string
		status     int
		pooled     int
	}{
		{"/chunked", "one two", 200, 1},
		{"/empty", "", 204, 1},
		{"/close", "bye", 200, 0},
	} {
		status, body, err := call(t, p, &Request{Method: http.MethodGet, Host: s.host(), Path: tc.path})
		if err != nil || status != tc.status || body != tc.body {
			t.Fatalf("%s: %d %q %v, want %d %q", tc.path, status, body, err, tc.status, tc.body)
		}
		if n := p.Idle(s.host()); n != tc.pooled {
			t.Fatalf("%s: %d idle connections after, want %d", tc.path, n, tc.pooled)
		}
	}
}

// rawServer answers each connection with fn, which reads the requests and
// writes what it likes.
func rawServer(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// readRequest reads one request's head and body off br.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, r.Body)
	return r, nil
}

// TestSendsAgainOnlyWhatMayBeSentTwice: a server that closes each
// connection after one answer, without saying so, turns every kept
// connection stale. An idempotent call goes out again on a new one; any
// other fails without being sent twice.
func TestSendsAgainOnlyWhatMayBeSentTwice(t *testing.T) {
	var requests atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		requests.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// closes without Connection: close
	})
	p := NewPool()
	defer p.CloseIdle()
	get := &Request{Method: http.MethodGet, Host: addr, Path: "/", Idempotent: true}
	if _, _, err := call(t, p, get); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, p, addr)
	status, body, err := call(t, p, get)
	if err != nil || status != 200 || body != "ok" {
		t.Fatalf("idempotent call on a stale connection: %d %q %v, want it sent again", status, body, err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("server saw %d requests, want 2", n)
	}
	waitClosed(t, p, addr)
	once := &Request{Method: http.MethodPost, Host: addr, Path: "/restart", Body: []byte("{}")}
	if _, _, err := call(t, p, once); err == nil {
		t.Fatal("a call that may not be sent twice succeeded on a stale connection: was it sent again?")
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("server saw %d requests, want still 2", n)
	}
}

// waitClosed waits until the server's close of the idle connection to
// addr has reached this side (a read would see it).
func waitClosed(t *testing.T, p *Pool, addr string) {
	t.Helper()
	p.mu.Lock()
	list := p.idle[addr]
	p.mu.Unlock()
	if len(list) != 1 {
		t.Fatalf("%d idle connections, want 1", len(list))
	}
	c := list[0]
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.br.Peek(1); err == nil {
		t.Fatal("the server sent bytes nobody asked for")
	}
	c.nc.SetReadDeadline(time.Time{})
}

func TestEndsAtTheDeadlineOrCancellation(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := NewPool()
	defer p.CloseIdle()
	req := &Request{Method: http.MethodGet, Host: s.host(), Path: "/", Idempotent: true}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Do(ctx, req, new(bytes.Buffer), 1<<20); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past the deadline: %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := p.Do(ctx, req, new(bytes.Buffer), 1<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v, want context.Canceled", err)
	}
	if n := p.Idle(s.host()); n != 0 {
		t.Fatalf("%d connections kept after calls that ended unanswered, want 0", n)
	}
}

func TestRefusesWhatItCannotRead(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		r, err := readRequest(br)
		if err != nil {
			return
		}
		switch r.URL.Path {
		case "/garbage":
			io.WriteString(c, "HELLO\r\n\r\n")
		case "/big":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789a")
		case "/big-chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n0123456789a\r\n0\r\n\r\n")
		case "/short":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n0123")
		case "/interim":
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	p := NewPool()
	defer p.CloseIdle()
	for _, tc := range []struct {
		path string
		want error
	}{
		{"/garbage", ErrMalformed},
		{"/big", ErrTooLarge},
		{"/big-chunked", ErrTooLarge},
		{"/short", io.ErrUnexpectedEOF},
		{"/interim", ErrMalformed},
	} {
		var body bytes.Buffer
		_, err := p.Do(context.Background(), &Request{Method: http.MethodGet, Host: addr, Path: tc.path}, &body, 10)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.path, err, tc.want)
		}
		if n := p.Idle(addr); n != 0 {
			t.Fatalf("%s: kept the connection after a failed answer", tc.path)
		}
	}
}

func TestDropsConnectionsIdlePastTheTimeout(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	p := NewPool()
	defer p.CloseIdle()
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	req := &Request{Method: http.MethodGet, Host: s.host(), Path: "/"}
	for _, step := range []time.Duration{0, DefaultIdleTimeout - time.Second, DefaultIdleTimeout} {
		now = now.Add(step)
		if _, _, err := call(t, p, req); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (one reused within the timeout, a new one past it)", n)
	}
}

func TestDialErrorNamesTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, _, err = call(t, NewPool(), &Request{Method: http.MethodGet, Host: addr, Path: "/"})
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dialing a closed port: %v, want connection refused naming %s", err, addr)
	}
}

// TestDropsAConnectionWithBytesPastTheAnswer: an answer followed by bytes
// nobody asked for must not become the next call's answer.
func TestDropsAConnectionWithBytesPastTheAnswer(t *testing.T) {
	var conns atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		first := conns.Add(1) == 1
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			if first {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
		}
	})
	p := NewPool()
	defer p.CloseIdle()
	req := &Request{Method: http.MethodGet, Host: addr, Path: "/", Idempotent: true}
	for _, want := range []string{"ok", "fresh"} {
		if _, body, err := call(t, p, req); err != nil || body != want {
			t.Fatalf("got %q, %v; want %q", body, err, want)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
