package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Served is a Postgres server of one test's own that listens on TCP
// addresses (for processes in other network namespaces), with a password.
type Served struct {
	Port     int
	Password string
	log      string // the server's log: every write statement, with its client's address
}

// electionWrites are the queries (by their sqlc names) of a controller's
// election: standing by, it still writes its heartbeat and tries the lease.
var electionWrites = []string{"BeatController", "ForgetControllers", "DeleteController", "InsertLease", "ClaimLease", "ReleaseLease"}

// LogSize is how far the server's log reaches now, for WritesFrom.
func (s *Served) LogSize() int64 {
	fi, err := os.Stat(s.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// WritesFrom is the write statements the server took from a client at
// addr since the log reached from, leaving out a controller's own
// election (its heartbeat and the lease), which a standby writes too.
func (s *Served) WritesFrom(t testing.TB, addr string, from int64) []string {
	t.Helper()
	b, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b[min(from, int64(len(b))):]), "\n") {
		if !strings.Contains(line, " "+addr+"(") || !strings.Contains(line, "statement: ") && !strings.Contains(line, "execute ") {
			continue
		}
		if slices.ContainsFunc(electionWrites, func(q string) bool { return strings.Contains(line, "-- name: "+q+" ") }) {
			continue
		}
		out = append(out, line)
	}
	return out
}

// URL is the fleet database's URL at host (one of the addresses the
// server listens on), with the password.
func (s *Served) URL(host string) string {
	return (&url.URL{Scheme: "postgres", User: url.UserPassword("slum", s.Password),
		Host: net.JoinHostPort(host, fmt.Sprint(s.Port)), Path: "/fleet", RawQuery: "sslmode=disable"}).String()
}

// ServeTCP starts a server of t's own listening on addrs (which must be
// this machine's) at port, taking the password of role slum (scram) from
// subnet only, with an empty database fleet; it stops when t ends.
func ServeTCP(t testing.TB, addrs []string, port int, subnet string) *Served {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI requires Postgres: %v", err)
		}
		t.Skipf("SKIPPING POSTGRES TEST (allowed outside CI only): %v", err)
	}
	dir, err := os.MkdirTemp(tempRoot(), "slum-pgtcp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cred, err := credential(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	s := &Served{Port: port, Password: hex.EncodeToString(b)}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	hba := fmt.Sprintf("local all all trust\nhost all slum %s scram-sha-256\n", subnet)
	if err := os.WriteFile(filepath.Join(dir, "data", "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		_ = os.Chown(filepath.Join(dir, "data", "pg_hba.conf"), int(cred.Uid), int(cred.Gid))
	}
	listen := ""
	for i, a := range addrs {
		if i > 0 {
			listen += ","
		}
		listen += a
	}
	s.log = filepath.Join(dir, "server.log")
	log, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"), "-k", dir, "-p", fmt.Sprint(port),
		"-c", "listen_addresses="+listen, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=200",
		"-c", "log_statement=mod", "-c", "log_line_prefix=%m %r ")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := startOnKeptThread(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	local := (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/postgres",
		RawQuery: url.Values{"host": {dir}, "port": {fmt.Sprint(port)}, "sslmode": {"disable"}}.Encode()}).String()
	var conn *pgx.Conn
	for deadline := time.Now().Add(30 * time.Second); ; {
		if conn, err = pgx.Connect(context.Background(), local); err == nil {
			break
		}
		if time.Now().After(deadline) {
			text, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("postgres on %s: %v\n%s", listen, err, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{fmt.Sprintf("CREATE ROLE slum LOGIN PASSWORD '%s'", s.Password), "CREATE DATABASE fleet OWNER slum"} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return s
}
