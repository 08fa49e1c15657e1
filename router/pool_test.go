package router

import (
	"bufio"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/slum-fleet/slum/http1"
)

// connPair returns a pooled-connection wrapper for one end of a loopback
// TCP connection and the server's end.
func connPair(t *testing.T) (*upstreamConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := within(t, accepted, "accept")
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return &upstreamConn{conn: c, raw: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, s
}

func testPool(max int) *pool {
	return newPool(&url.URL{Scheme: "http", Host: "127.0.0.1:1"}, max)
}

func TestPoolProbesLongIdleConnections(t *testing.T) {
	now := time.Now()
	pl := testPool(4)
	live, _ := connPair(t)
	dead, deadServer := connPair(t)
	deadServer.Close()
	// Wait until the close has arrived, without consuming it.
	for deadline := time.Now().Add(10 * time.Second); !http1.Readable(dead.conn); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server's close never arrived")
		}
	}
	if http1.Readable(live.conn) {
		t.Fatal("an idle live connection reads as readable")
	}
	pl.put(dead, now.Add(-2*probeAfter))
	pl.put(live, now.Add(-2*probeAfter))
	if got := pl.get(now, time.Hour, false); got != live {
		t.Fatalf("got %v, want the live connection (the dead one skipped)", got)
	}
	if got := pl.get(now, time.Hour, false); got != nil {
		t.Fatal("pool not empty")
	}
	// The live one is still usable after the probe: no deadline left.
	if _, err := live.conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}

	// Recently used connections are trusted, unless the caller asks for a
	// probe (requests that cannot be replayed).
	dead2, dead2Server := connPair(t)
	dead2Server.Close()
	for deadline := time.Now().Add(10 * time.Second); !http1.Readable(dead2.conn); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server's close never arrived")
		}
	}
	pl.put(dead2, now)
	if got := pl.get(now, time.Hour, true); got != nil {
		t.Fatal("a probe let a closed connection through")
	}
	pl.put(live, now)
	if got := pl.get(now, time.Hour, true); got != live {
		t.Fatal("a probe refused a live connection")
	}
}

func TestPoolExpiresAndRetires(t *testing.T) {
	now := time.Now()
	pl := testPool(2)
	a, _ := connPair(t)
	b, _ := connPair(t)
	c, _ := connPair(t)
	pl.put(a, now.Add(-time.Minute))
	pl.put(b, now)
	pl.put(c, now) // over the cap: closed
	if _, err := c.conn.Write([]byte("x")); err == nil {
		t.Error("a connection beyond the cap was kept open")
	}
	pl.sweep(now, 30*time.Second)
	if _, err := a.conn.Write([]byte("x")); err == nil {
		t.Error("sweep kept an expired connection open")
	}
	if got := pl.get(now, 30*time.Second, false); got != b {
		t.Fatalf("after sweep: %v, want the fresh connection", got)
	}
	pl.retired.Store(true)
	pl.put(b, now)
	if len(pl.idle) != 0 {
		t.Error("a retired pool kept a connection")
	}
	if _, err := b.conn.Write([]byte("x")); err == nil {
		t.Error("a connection returned to a retired pool stayed open")
	}
}
