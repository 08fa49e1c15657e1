package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/slum-fleet/slum/http1"
)

// heldPair returns a held-write wrapper for one end of a loopback TCP
// connection and the server's end.
func heldPair(t *testing.T) (*heldWriteConn, net.Conn) {
	t.Helper()
	uc, s := connPair(t)
	hc := newHeldWriteConn(uc.conn)
	if hc.rc == nil {
		t.Fatal("a TCP connection offers no raw descriptor")
	}
	uc.conn.SetDeadline(time.Now().Add(10 * time.Second)) // no test hangs
	s.SetDeadline(time.Now().Add(10 * time.Second))
	return hc, s
}

// echoOnce reads n bytes from s, answers with answer, and reports what
// it read.
func echoOnce(s net.Conn, n int, answer string) <-chan string {
	got := make(chan string, 1)
	go func() {
		b := make([]byte, n)
		if _, err := io.ReadFull(s, b); err != nil {
			got <- "error: " + err.Error()
			return
		}
		io.WriteString(s, answer)
		got <- string(b)
	}()
	return got
}

func TestHeldWriteGoesOutWithTheRead(t *testing.T) {
	hc, s := heldPair(t)
	hc.hold = true
	if n, err := hc.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("held write: %d, %v", n, err)
	}
	if string(hc.held) != "ping" || hc.hold {
		t.Fatalf("after a held write: held %q, hold %v; want the bytes held, hold spent", hc.held, hc.hold)
	}
	got := echoOnce(s, 4, "pong")
	b := make([]byte, 16)
	n, err := hc.Read(b)
	if err != nil || string(b[:n]) != "pong" {
		t.Fatalf("read: %q, %v; want pong", b[:n], err)
	}
	if v := within(t, got, "the server's read"); v != "ping" {
		t.Errorf("the server read %q, want ping", v)
	}
	if len(hc.held) != 0 {
		t.Errorf("still held after the read: %q", hc.held)
	}
	// Not held: written at once, read as usual.
	got = echoOnce(s, 3, "two")
	if _, err := hc.Write([]byte("one")); err != nil || len(hc.held) != 0 {
		t.Fatalf("plain write: %v, held %q", err, hc.held)
	}
	if v := within(t, got, "the server's read"); v != "one" {
		t.Errorf("the server read %q, want one", v)
	}
	if n, err := io.ReadFull(hc, b[:3]); err != nil || string(b[:n]) != "two" {
		t.Errorf("plain read: %q, %v", b[:n], err)
	}
}

// A server that had closed the connection makes the read fail at once,
// not wait for the deadline: its reset arrives after the request.
func TestHeldWriteToAClosedServerFails(t *testing.T) {
	hc, s := heldPair(t)
	s.Close()
	for deadline := time.Now().Add(10 * time.Second); !http1.Readable(hc.Conn); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server's close never arrived")
		}
	}
	hc.hold = true
	hc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	start := time.Now()
	_, err := hc.Read(make([]byte, 16))
	if err == nil || isTimeout(err) {
		t.Fatalf("read after the server closed: %v, want EOF or a reset", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the failure took %v", took)
	}
}

// A read whose deadline has passed still sends what is held, then
// reports the timeout.
func TestHeldWriteSentWhenTheReadTimesOut(t *testing.T) {
	hc, s := heldPair(t)
	hc.hold = true
	hc.Write([]byte("late"))
	hc.SetReadDeadline(aLongTimeAgo)
	got := echoOnce(s, 4, "")
	if _, err := hc.Read(make([]byte, 16)); !isTimeout(err) {
		t.Errorf("read past its deadline: %v, want a timeout", err)
	}
	if v := within(t, got, "the server's read"); v != "late" {
		t.Errorf("the server read %q, want late", v)
	}
}

// Without a descriptor (here a pipe) nothing is held.
func TestHeldWriteWithoutDescriptor(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	hc := newHeldWriteConn(a)
	hc.hold = true
	done := make(chan []byte, 1)
	go func() { p := make([]byte, 2); io.ReadFull(b, p); done <- p }()
	if _, err := hc.Write([]byte("hi")); err != nil || len(hc.held) != 0 {
		t.Fatalf("write: %v, held %q", err, hc.held)
	}
	if v := within(t, done, "the pipe's read"); string(v) != "hi" {
		t.Errorf("the pipe read %q", v)
	}
}

// The fast path closes a connection left idle for IdleTimeout, no
// sooner, whatever requests came before (its deadline moves lazily).
func TestFastPathIdleTimeout(t *testing.T) {
	if !fastPath {
		t.Skip("net/http's server has its own idle timeout")
	}
	up := upstream(t, named("a"))
	p := newProxy(t, route("alice", copyAt("alice", "prod", up)))
	cfg := DefaultServerConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	r := startServer(t, cfg, p)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var last time.Time
	for range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: alice.example.com\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		last = time.Now()
	}
	_, err = br.ReadByte()
	idle := time.Since(last)
	if err != io.EOF || idle < cfg.IdleTimeout || idle > cfg.IdleTimeout+cfg.IdleTimeout/2+time.Second {
		t.Errorf("idle connection: %v after %v, want EOF after %v (its deadline may be an eighth later)", err, idle, cfg.IdleTimeout)
	}
}
