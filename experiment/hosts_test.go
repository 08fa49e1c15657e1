package experiment

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDBTargetAndAtHost(t *testing.T) {
	for _, c := range []struct {
		url, target string
		bad         bool
	}{
		{url: "postgres://slum:pw@127.0.0.1:25434/scratch?sslmode=disable", target: "127.0.0.1:25434"},
		{url: "postgres://slum@db.example/scratch", target: "db.example:5432"},
		{url: "postgres://slum@[::1]:6000/scratch", target: "[::1]:6000"},
		{url: "postgres://slum@/scratch?host=/run/postgresql", bad: true},
		{url: "postgres:///scratch", bad: true},
		{url: "/tmp/slum.db", bad: true},
	} {
		got, err := dbTarget(c.url)
		if c.bad {
			if err == nil {
				t.Errorf("dbTarget(%q) = %q, want an error", c.url, got)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("dbTarget's error shows the password: %v", err)
			}
			continue
		}
		if err != nil || got != c.target {
			t.Errorf("dbTarget(%q) = %q, %v; want %q", c.url, got, err, c.target)
		}
	}
	got, err := atHost("postgres://slum:pw@127.0.0.1:25434/scratch?search_path=x_1", "10.77.3.5:40000")
	if want := "postgres://slum:pw@10.77.3.5:40000/scratch?search_path=x_1"; err != nil || got != want {
		t.Errorf("atHost = %q, %v; want %q", got, err, want)
	}
}

func TestRelayPassesAndCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					_, _ = c.Write([]byte("echo " + sc.Text() + "\n"))
				}
			}()
		}
	}()
	r, err := startRelay("127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	_, _ = c.Write([]byte("hi\n"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := rd.ReadString('\n'); err != nil || line != "echo hi\n" {
		t.Fatalf("through the relay: %q, %v", line, err)
	}
	r.Close()
	if _, err := rd.ReadString('\n'); err == nil {
		t.Errorf("a relayed connection outlived the relay's Close")
	}
	if c2, err := net.Dial("tcp", r.Addr()); err == nil {
		c2.Close()
		t.Errorf("the relay still accepts after Close")
	}
}
