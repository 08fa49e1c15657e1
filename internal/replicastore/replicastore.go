// Package replicastore starts a real S3-compatible replica store for tests:
// a SeaweedFS server (weed, built into .tools/bin by scripts/setup.sh) on
// loopback ports of its own, with a temporary directory, a bucket and
// credentials of its own; and a TCP proxy in front of it that a test cuts
// to make the store unreachable for the clients that use the proxy.
//
// What the tests need and cannot find fails them in CI (CI set) and skips
// them, loudly, elsewhere.
package replicastore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/slum-fleet/slum/litestream"
	"github.com/slum-fleet/slum/replica"
)

// Bucket is the bucket every server has.
const Bucket = "slum-test"

// Server is a running SeaweedFS server with an S3 gateway.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Creds    replica.Credentials
	dir      string
	cmd      *exec.Cmd
	done     chan struct{}
}

// FindWeed locates the weed binary: .tools/bin/weed in the module, then PATH.
func FindWeed() (string, error) {
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", "weed")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p, nil
	}
	return "", errors.New("the SeaweedFS binary 'weed' was not found (scripts/setup.sh builds it into .tools/bin)")
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Missing fails the test in CI and skips it elsewhere, loudly.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI requires %s: %v", what, err)
	}
	t.Skipf("SKIPPING %s TEST (allowed outside CI only): %v", strings.ToUpper(what), err)
}

// RequireLitestream returns the litestream binary or fails/skips the test.
func RequireLitestream(t testing.TB) string {
	t.Helper()
	p, err := litestream.Find()
	if err != nil {
		Missing(t, "real Litestream", err)
	}
	return p
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
	dir  string
}

// Shared is one server for the whole test binary (started on first use;
// it takes several seconds), stopped by Main. Tests share it on paths of
// their own.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin, err := FindWeed()
	if err != nil {
		Missing(t, "a real replica store", err)
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "slum-replicastore")
		if shared.err == nil {
			shared.s, shared.err = Start(bin, shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s
}

// Main runs the tests and stops the shared server: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.s != nil {
		shared.s.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// Require starts a server of the test's own (several seconds; use Shared
// unless the test stops the server) and stops it when the test ends.
func Require(t testing.TB) *Server {
	t.Helper()
	bin, err := FindWeed()
	if err != nil {
		Missing(t, "a real replica store", err)
	}
	s, err := Start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts weed from bin with its data in dir, on loopback, and waits
// until its S3 gateway has taken a first write (several seconds).
func Start(bin, dir string) (*Server, error) { return StartBound(bin, dir, "127.0.0.1") }

// StartBound is Start with the servers listening on bind: "0.0.0.0" lets
// guards in network namespaces reach the S3 gateway at the host's address
// on their link (EndpointAt).
func StartBound(bin, dir, bind string) (*Server, error) {
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", ports[6]), dir: dir, done: make(chan struct{}),
		Creds: replica.Credentials{AccessKeyID: "slumtest" + randomHex(4), SecretAccessKey: randomHex(16)}}
	conf := fmt.Sprintf(`{"identities":[{"name":"slum","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`,
		s.Creds.AccessKeyID, s.Creds.SecretAccessKey)
	confPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p := func(i int) string { return fmt.Sprint(ports[i]) }
	s.cmd = exec.Command(bin, "server", "-dir="+data, "-ip=127.0.0.1", "-ip.bind="+bind, "-filer", "-s3",
		"-s3.config="+confPath, "-volume.max=4",
		"-master.port="+p(0), "-master.port.grpc="+p(1), "-volume.port="+p(2), "-volume.port.grpc="+p(3),
		"-filer.port="+p(4), "-filer.port.grpc="+p(5), "-s3.port="+p(6), "-s3.port.grpc="+p(7),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-filer.localSocket="+filepath.Join(dir, "filer.sock"))
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start weed: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, s.Log())
	}
	return s, nil
}

func (s *Server) waitReady(limit time.Duration) error {
	u, _ := url.Parse(s.Endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s.Creds.AccessKeyID, s.Creds.SecretAccessKey, ""),
		Region: replica.DefaultRegion, BucketLookup: minio.BucketLookupPath, MaxRetries: 1})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		// The first write waits for the filer's lock ring (several
		// seconds after start); the server is ready once one has landed.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = c.MakeBucket(ctx, Bucket, minio.MakeBucketOptions{})
		if err == nil || minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			_, err = c.PutObject(ctx, Bucket, "ready", strings.NewReader("ready"), 5, minio.PutObjectOptions{})
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("weed exited while starting")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("weed's S3 gateway at %s did not become ready in %s: %v", s.Endpoint, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// EndpointAt is the S3 endpoint at another address of this host (for a
// server started with StartBound).
func (s *Server) EndpointAt(host string) string {
	u, _ := url.Parse(s.Endpoint)
	return "http://" + net.JoinHostPort(host, u.Port())
}

// URL is the Litestream replica URL of path in the bucket.
func (s *Server) URL(path string) string { return URLAt(s.Endpoint, path) }

// URLAt is the replica URL of path in the bucket through another endpoint
// (a Proxy's).
func URLAt(endpoint, path string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s", Bucket, path, endpoint, replica.DefaultRegion)
}

// Env is the credentials as environment entries.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.Creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + s.Creds.SecretAccessKey}
}

// Store is a replica.Store on the bucket through endpoint (s.Endpoint or a
// Proxy's).
func (s *Server) Store(t testing.TB, endpoint string) replica.Store {
	t.Helper()
	loc, err := replica.ParseLocation(URLAt(endpoint, "x"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := replica.OpenS3(loc, s.Creds, "")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Pause stops the server's processes (SIGSTOP): every request hangs until
// Resume.
func (s *Server) Pause() { syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) }

// Stop kills the server and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT)
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Log is the server's output so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "weed.log"))
	return string(b)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
