// Package pgtest gives tests a real Postgres server of their own: a
// throwaway cluster made with initdb in a temporary directory on first
// use, listening only on a Unix socket there (no port to collide on), run
// as the postgres OS user when the tests run as root, and stopped (its
// directory removed) when the test binary ends. Each test gets a fresh,
// empty database of its own.
//
// A package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// One that cannot (it has a TestMain of its own) may use it all the same:
// the server then stops when the test binary exits (a parent-death
// signal), and the next test binary that starts one removes its
// directory.
//
// Where Postgres cannot be started (its binaries missing: scripts/setup.sh
// installs them), tests fail in CI (CI=true) and are skipped, loudly,
// elsewhere.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Main runs the package's tests and then stops the server, if one was
// started.
func Main(m *testing.M) {
	code := m.Run()
	if srv != nil {
		srv.stop()
	}
	os.Exit(code)
}

var (
	once    sync.Once
	srv     *server
	srvErr  error
	skipped atomic.Bool
	dbSeq   atomic.Int64
)

// server is the test binary's Postgres server.
type server struct {
	dir   string // socket directory; the cluster is in dir/data
	cmd   *exec.Cmd
	done  chan struct{} // closed once the server exits
	admin *pgx.Conn     // to the postgres database, for CREATE DATABASE
	mu    sync.Mutex    // serialises admin
	drops chan string   // databases to drop
	// stopping: the server is going, and drops with it.
	stopping atomic.Bool
	// templates are the databases URLFrom copies, by name.
	templates sync.Map
}

// Server starts the test server (once) and returns it, or ends the test
// when Postgres cannot be started: failing it in CI, skipping it
// elsewhere.
func get(t testing.TB) *server {
	t.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: Postgres cannot be started, and CI needs it (scripts/setup.sh installs it): %v", srvErr)
		}
		if !skipped.Swap(true) {
			fmt.Fprintf(os.Stderr, "pgtest: SKIPPING every test that needs Postgres: %v\n", srvErr)
		}
		t.Skipf("pgtest: SKIPPED: Postgres cannot be started (scripts/setup.sh installs it): %v", srvErr)
	}
	return srv
}

// URL returns the URL of a new, empty database on the test server; the
// database is dropped once the test ends.
func URL(t testing.TB) string {
	t.Helper()
	return get(t).create(t, "template0")
}

// URLFrom returns the URL of a new database on the test server that is a
// copy of the template named name, which the first call makes by running
// prepare on a new, empty database (a migrated schema, say: copying one
// is faster than making it again). prepare must leave no connection open
// to the database.
func URLFrom(t testing.TB, name string, prepare func(url string) error) string {
	t.Helper()
	s := get(t)
	v, _ := s.templates.LoadOrStore(name, &template{})
	tmpl := v.(*template)
	tmpl.once.Do(func() {
		ident := pgx.Identifier{"template_" + name}.Sanitize()
		if tmpl.err = s.exec(context.Background(), "CREATE DATABASE "+ident+" TEMPLATE template0"); tmpl.err == nil {
			tmpl.err = prepare(s.url("template_" + name))
		}
	})
	if tmpl.err != nil {
		t.Fatalf("pgtest: make the template %s: %v", name, tmpl.err)
	}
	return s.create(t, "template_"+name)
}

type template struct {
	once sync.Once
	err  error
}

// create makes a new database as a copy of template, to be dropped once
// the test ends.
func (s *server) create(t testing.TB, template string) string {
	t.Helper()
	name := fmt.Sprintf("t%d", dbSeq.Add(1))
	if err := s.exec(context.Background(), "CREATE DATABASE "+name+" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	// Dropped in the background: the server goes when the tests end, and
	// a test need not wait for its database to.
	t.Cleanup(func() { s.drops <- name })
	return s.url(name)
}

// dropping drops the databases tests are done with.
func (s *server) dropping(conn *pgx.Conn) {
	for name := range s.drops {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil && !s.stopping.Load() {
			fmt.Fprintf(os.Stderr, "pgtest: drop database %s: %v\n", name, err)
		}
	}
}

// Exec runs sql on the test server's postgres database as its superuser:
// for what a test does behind the engine's back (another program's
// tables, a terminated connection).
func Exec(t testing.TB, sql string) {
	t.Helper()
	if err := get(t).exec(context.Background(), sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Files returns every byte the test server keeps of the database at
// dbURL, after a checkpoint: its data files and the server's write-ahead
// log. It shows what the database stores of a secret.
func Files(t testing.TB, dbURL string) []byte {
	t.Helper()
	s := get(t)
	ctx := context.Background()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var oid uint32
	s.mu.Lock()
	err = s.admin.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = $1`, strings.TrimPrefix(u.Path, "/")).Scan(&oid)
	if err == nil {
		_, err = s.admin.Exec(ctx, "CHECKPOINT")
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	var out []byte
	for _, dir := range []string{filepath.Join(s.dir, "data", "base", strconv.FormatUint(uint64(oid), 10)), filepath.Join(s.dir, "data", "pg_wal")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
	}
	return out
}

func (s *server) url(database string) string {
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + database,
		RawQuery: url.Values{"host": {s.dir}, "sslmode": {"disable"}}.Encode()}).String()
}

func (s *server) exec(ctx context.Context, sql string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.admin.Exec(ctx, sql)
	return err
}

// binDir finds Postgres' programs: $SLUM_PG_BIN, the newest of Debian's
// /usr/lib/postgresql/*/bin, or the PATH's.
func binDir() (string, error) {
	if d := os.Getenv("SLUM_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb in /usr/lib/postgresql/*/bin, $SLUM_PG_BIN or the PATH (apt-get install postgresql)")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// start makes a cluster and runs its server.
func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp(tempRoot(), "slum-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, done: make(chan struct{}), drops: make(chan string, 1000)}
	fail := func(err error) (*server, error) {
		s.stop()
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		return fail(err)
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, out))
	}
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return fail(err)
	}
	defer log.Close()
	// Durability is not what these tests are about: no fsync.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"), "-k", dir, "-c", "listen_addresses=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
		"-c", "max_wal_size=96MB", "-c", "min_wal_size=32MB")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	// SIGQUIT, an immediate shutdown, should the test binary die first.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := startOnKeptThread(s.cmd); err != nil {
		return fail(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.connect(); err != nil {
		text, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return fail(fmt.Errorf("%v; the server's log:\n%s", err, text))
	}
	dropper, err := pgx.Connect(context.Background(), s.url("postgres"))
	if err != nil {
		return fail(err)
	}
	go s.dropping(dropper)
	return s, nil
}

// startOnKeptThread starts cmd from a thread kept for as long as the
// process lives: the parent-death signal is sent when the thread that
// started the child ends, not the process.
func startOnKeptThread(cmd *exec.Cmd) error {
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		started <- cmd.Start()
		select {}
	}()
	return <-started
}

// credential is who runs the server: the postgres OS user when the tests
// run as root (Postgres refuses root), given dir; nil (the tests' own)
// otherwise. The kernel sets it between fork and exec, as runuser or
// setpriv would, so the parent-death signal still holds.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and there is no postgres user to run the server as (the postgresql package makes it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// connect waits for the server to take connections.
func (s *server) connect() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.url("postgres"))
		if err == nil {
			s.admin = conn
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("the server exited: %v", s.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server took no connection within 30 s: %w", err)
		}
	}
}

// stop shuts the server down fast and removes its directory.
func (s *server) stop() {
	s.stopping.Store(true)
	if s.admin != nil {
		_ = s.admin.Close(context.Background())
	}
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	_ = os.RemoveAll(s.dir)
}

// tempRoot is where clusters are made: in memory (/dev/shm) where there
// is one with room, as a cluster on disk makes databases ten times
// slower.
func tempRoot() string {
	var fs syscall.Statfs_t
	if syscall.Access("/dev/shm", 2) == nil && syscall.Statfs("/dev/shm", &fs) == nil && fs.Bavail*uint64(fs.Bsize) >= 2<<30 {
		return "/dev/shm"
	}
	return os.TempDir()
}

// removeStale removes the clusters of test binaries that died without
// stopping theirs: no live server, and older than a minute (a younger
// one may be another binary's, still starting).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(tempRoot(), "slum-pgtest-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if pid := postmasterPID(d); pid > 0 && syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

func postmasterPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}
