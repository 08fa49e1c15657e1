//go:build linux

package router

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// stalledURL is a loopback listener that never accepts and whose accept
// queue is full: Linux drops further SYNs, so connecting hangs until the
// dialer gives up. Nothing leaves the machine.
func stalledURL(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; once a dial times out, the queue is known full.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return "http://" + addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the accept queue never filled")
	return ""
}

func TestDialTimeoutMovesOnToTheNextCopy(t *testing.T) {
	good := upstream(t, named("backup"))
	cfg := DefaultConfig()
	cfg.DialTimeout = 100 * time.Millisecond
	f := newFixture(t, cfg, route("alice", copyAt("alice", "prod", stalledURL(t)), copyAt("alice", "backup", good)))
	resp := f.do("GET", "alice.example.com", "/", nil)
	if b := text(t, resp); resp.StatusCode != 200 || b != "backup alice--backup.api.fleet.test /" {
		t.Fatalf("%d %q: want the backup copy's answer", resp.StatusCode, b)
	}
	if r := f.logs.waitRecords(t, "request", 1)[0]; r["retried"] != true || r["copy"] != "alice:backup" {
		t.Errorf("access log: retried %v, copy %v", r["retried"], r["copy"])
	}
	if n := metricValue(t, f.proxy.Metrics(), "slum_router_upstream_errors_total", "kind", "connect"); n != 1 {
		t.Errorf("connect errors %v, want 1", n)
	}
}
