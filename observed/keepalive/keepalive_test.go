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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum/http1"
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
		req := &Request{Method: http.MethodPost, Addr: s.host(), Host: s.host(), Path: "/api/instances/spawn?x=1",
			Header: []byte("Authorization: Bearer t0k\r\n"), Body: []byte(`{"id":"a"}`)}
		if i%2 == 1 {
			req = &Request{Method: http.MethodGet, Addr: s.host(), Host: s.host(), Path: "/health"}
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
		status, body, err := call(t, p, &Request{Method: http.MethodGet, Addr: s.host(), Host: s.host(), Path: tc.path})
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

// TestSendsAgainOnlyWhatMayBeSentTwice: a server that takes a second
// request on a kept connection and closes it unanswered (as a server
// closing an idle connection just as the request arrives does). An
// idempotent call goes out again on a new connection; any other fails,
// sent once.
func TestSendsAgainOnlyWhatMayBeSentTwice(t *testing.T) {
	var requests atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			if _, err := readRequest(br); err != nil {
				return
			}
			requests.Add(1)
			if n == 1 {
				return // closes without an answer
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := NewPool()
	defer p.CloseIdle()
	get := &Request{Method: http.MethodGet, Addr: addr, Host: addr, Path: "/", Idempotent: true}
	once := &Request{Method: http.MethodPost, Addr: addr, Host: addr, Path: "/restart", Body: []byte("{}")}
	for _, tc := range []struct {
		req      *Request
		ok       bool
		requests int64
	}{
		{get, true, 3},   // the first call, then the second sent twice
		{once, false, 2}, // the first call, then the second sent once
	} {
		requests.Store(0)
		p.CloseIdle()
		if _, _, err := call(t, p, tc.req); err != nil {
			t.Fatal(err)
		}
		status, body, err := call(t, p, tc.req)
		if ok := err == nil && status == 200 && body == "ok"; ok != tc.ok {
			t.Fatalf("%s on a connection closed unanswered: %d %q %v; want success %v", tc.req.Method, status, body, err, tc.ok)
		}
		if n := requests.Load(); n != tc.requests {
			t.Fatalf("%s: the server saw %d requests, want %d", tc.req.Method, n, tc.requests)
		}
	}
}

// TestTakesNoIdleConnectionWithSomethingToRead: a kept connection the
// server has closed, or sent bytes on unasked, while it sat idle is not
// used again, for any call: every idle connection goes stale when a
// server restarts.
func TestTakesNoIdleConnectionWithSomethingToRead(t *testing.T) {
	var conns atomic.Int64
	three := make(chan struct{}) // closed once three connections are open
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		n := conns.Add(1)
		if n == 3 {
			close(three)
		}
		if _, err := readRequest(br); err != nil {
			return
		}
		if n <= 3 {
			<-three // so that the three calls in flight take three connections
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if n%2 == 0 {
			time.Sleep(20 * time.Millisecond) // after the answer was read
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
			br.Peek(1) // stays open
		}
		// odd ones close after one answer, without saying so
	})
	p := NewPool()
	defer p.CloseIdle()
	// Three calls in flight at once leave three connections in the pool.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := call(t, p, &Request{Method: http.MethodGet, Addr: addr, Host: addr, Path: "/"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		idle, readable := len(p.idle[addr]), 0
		for _, c := range p.idle[addr] {
			if http1.Readable(c.nc) {
				readable++
			}
		}
		p.mu.Unlock()
		if idle == 3 && readable == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections, %d of them closed or written to; want 3 and 3", idle, readable)
		}
	}
	once := &Request{Method: http.MethodPost, Addr: addr, Host: addr, Path: "/restart", Body: []byte("{}")}
	status, body, err := call(t, p, once)
	if err != nil || status != 200 || body != "ok" {
		t.Fatalf("a call with every idle connection stale: %d %q %v, want it sent on a new one", status, body, err)
	}
	if n := conns.Load(); n != 4 {
		t.Fatalf("%d connections, want 4 (the three stale ones, then a new one)", n)
	}
}

func TestSendsTheURLsHostAndConnectsToItsAddress(t *testing.T) {
	var got atomic.Value
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { got.Store(r.Host) })
	p := NewPool()
	defer p.CloseIdle()
	if _, _, err := call(t, p, &Request{Method: http.MethodGet, Addr: s.host(), Host: "tenement.example", Path: "/"}); err != nil {
		t.Fatal(err)
	}
	if h := got.Load(); h != "tenement.example" {
		t.Fatalf("Host %q, want tenement.example", h)
	}
}

// TestAFailedConnectionIsNoMalformedAnswer: a head that arrives in parts
// (read by net/http) and then stalls ends as the deadline says, and one
// cut short ends as a failed connection, not as a malformed answer.
func TestAFailedConnectionIsNoMalformedAnswer(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		r, err := readRequest(br)
		if err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		if r.URL.Path == "/stall" {
			br.Peek(1) // until the client leaves
		}
	})
	p := NewPool()
	defer p.CloseIdle()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.Do(ctx, &Request{Method: http.MethodGet, Addr: addr, Host: addr, Path: "/stall"}, new(bytes.Buffer), 1<<20)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrMalformed) {
		t.Fatalf("a stalled head: %v, want context.DeadlineExceeded", err)
	}
	_, err = p.Do(context.Background(), &Request{Method: http.MethodGet, Addr: addr, Host: addr, Path: "/cut"}, new(bytes.Buffer), 1<<20)
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed) {
		t.Fatalf("a head cut short: %v, want io.ErrUnexpectedEOF", err)
	}
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
	req := &Request{Method: http.MethodGet, Addr: s.host(), Host: s.host(), Path: "/", Idempotent: true}

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
		_, err := p.Do(context.Background(), &Request{Method: http.MethodGet, Addr: addr, Host: addr, Path: tc.path}, &body, 10)
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
	req := &Request{Method: http.MethodGet, Addr: s.host(), Host: s.host(), Path: "/"}
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
	_, _, err = call(t, NewPool(), &Request{Method: http.MethodGet, Addr: addr, Host: addr, Path: "/"})
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
	req := &Request{Method: http.MethodGet, Addr: addr, Host: addr, Path: "/", Idempotent: true}
	for _, want := range []string{"ok", "fresh"} {
		if _, body, err := call(t, p, req); err != nil || body != want {
			t.Fatalf("got %q, %v; want %q", body, err, want)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// TestIdleConnectionsHoldNoBuffers: a connection waiting for a call has
// given its buffers back, the request buffer of a large body is not kept,
// and calls on kept connections read and write through lent ones.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/wait" {
			<-release
		}
		io.WriteString(w, r.URL.Path+" "+strconv.Itoa(len(b)))
	})
	p := NewPool()
	defer p.CloseIdle()
	// Four calls at once leave four idle connections.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, body, err := call(t, p, &Request{Method: http.MethodGet, Addr: s.host(), Host: s.host(), Path: "/wait"}); err != nil || body != "/wait 0" {
				t.Errorf("call: %q %v", body, err)
			}
		}()
	}
	for s.conns.Load() < 4 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	big := &Request{Method: http.MethodPost, Addr: s.host(), Host: s.host(), Path: "/big", Body: bytes.Repeat([]byte("x"), 64<<10)}
	if _, body, err := call(t, p, big); err != nil || body != "/big 65536" {
		t.Fatalf("large call: %q %v", body, err)
	}
	p.mu.Lock()
	idle := p.idle[s.host()]
	for _, c := range idle {
		if c.buf != nil {
			t.Errorf("an idle connection holds buffers of %d and %d bytes", c.buf.br.Size(), cap(c.buf.out))
		}
	}
	p.mu.Unlock()
	if len(idle) != 4 || s.conns.Load() != 4 {
		t.Fatalf("%d idle of %d connections, want 4 of 4", len(idle), s.conns.Load())
	}
	// The pool may drop what it is given (it does at random under -race),
	// so what it keeps is checked as it is given back.
	c := &conn{}
	p.lend(c)
	b := c.buf
	b.out = append(b.out, big.Body...)
	p.reclaim(c)
	if c.buf != nil || cap(b.out) > maxKeptRequest {
		t.Fatalf("reclaimed, a connection still holds buffers (%v) or the pool a request buffer of %d bytes", c.buf != nil, cap(b.out))
	}
	for i := range 8 {
		if _, body, err := call(t, p, &Request{Method: http.MethodPost, Addr: s.host(), Host: s.host(), Path: "/again", Body: []byte("abc")}); err != nil || body != "/again 3" {
			t.Fatalf("call %d on a kept connection: %q %v", i, body, err)
		}
	}
	if n := s.conns.Load(); n != 4 {
		t.Fatalf("the calls took %d connections, want the 4 kept", n)
	}
}
