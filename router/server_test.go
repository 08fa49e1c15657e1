package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum/routes"
)

// running is a Server serving in the background.
type running struct {
	addr string
	stop context.CancelFunc
	done chan struct{} // closed when Serve returned
	err  error         // Serve's result, once done
}

// startServer runs a Server for p on a loopback listener until stop.
func startServer(t *testing.T, cfg ServerConfig, p *Proxy) *running {
	t.Helper()
	cfg.FastPath = fastPath
	s, err := NewServer(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{addr: ln.Addr().String(), stop: cancel, done: make(chan struct{})}
	go func() {
		r.err = s.Serve(ctx, ln)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		within(t, r.done, "the server to stop")
	})
	return r
}

func newProxy(t *testing.T, rs ...routes.Route) *Proxy {
	t.Helper()
	p, err := New(DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Set(routes.New(1, rs)); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGracefulShutdownFinishesInFlightRequest(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "finished")
	})
	p := newProxy(t, route("alice", copyAt("alice", "prod", up)))
	srv := startServer(t, DefaultServerConfig(), p)
	addr := srv.addr

	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "alice.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	within(t, arrived, "the request at the upstream")
	srv.stop()
	// The listener closes at once; the request in flight is not cut.
	waitRefused(t, addr)
	select {
	case <-srv.done:
		t.Fatalf("the server stopped with a request in flight: %v", srv.err)
	default:
	}
	close(release)
	if r := within(t, res, "the in-flight response"); r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	within(t, srv.done, "the server to stop")
	if srv.err != nil {
		t.Fatalf("Serve: %v", srv.err)
	}
}

// waitRefused waits until nothing accepts connections at addr.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the listener still accepts connections after shutdown began")
}

func TestShutdownEndsTunnels(t *testing.T) {
	p := newProxy(t, route("alice", copyAt("alice", "prod", upstream(t, wsEcho))))
	srv := startServer(t, DefaultServerConfig(), p)
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: alice.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n")
	buf := make([]byte, 12)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "HTTP/1.1 101" {
		t.Fatalf("upgrade: %q, %v", buf, err)
	}
	srv.stop()
	within(t, srv.done, "the server to stop")
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the tunnel was not closed by shutdown: %v", err)
	}
}

func TestTLSServesHTTP2(t *testing.T) {
	seen := make(chan *http.Request, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "over tls: "+string(b))
	})
	p := newProxy(t, route("alice", copyAt("alice", "prod", up)))
	certFile, keyFile, pool := selfSigned(t)
	cfg := DefaultServerConfig()
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	addr := startServer(t, cfg, p).addr

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "alice.example.com"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", "https://"+addr+"/", strings.NewReader("h2 body"))
	req.Host = "alice.example.com"
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := text(t, resp); resp.ProtoMajor != 2 || b != "over tls: h2 body" {
		t.Fatalf("%s %q, want HTTP/2 and the body", resp.Proto, b)
	}
	if r := within(t, seen, "request"); r.Header.Get("X-Forwarded-Proto") != "https" || r.Host != "alice--prod.api.fleet.test" {
		t.Errorf("upstream saw proto %q host %q", r.Header.Get("X-Forwarded-Proto"), r.Host)
	}
}

func TestNewServerRejectsBadTLS(t *testing.T) {
	p := newProxy(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	for _, c := range []struct{ name, cert, key string }{
		{"cert without key", junk, ""},
		{"missing files", filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key")},
		{"junk", junk, junk},
	} {
		cfg := DefaultServerConfig()
		cfg.TLSCertFile, cfg.TLSKeyFile = c.cert, c.key
		if _, err := NewServer(cfg, p, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", c.name, err)
		}
	}
}

func TestHTTPSBackend(t *testing.T) {
	up := httptest.NewUnstartedServer(named("tls-upstream"))
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake below
	up.StartTLS()
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	cfg := DefaultConfig()
	cfg.UpstreamTLS = &tls.Config{RootCAs: roots, ServerName: "example.com"}
	f := newFixture(t, cfg, route("alice", copyAt("alice", "prod", up.URL)))
	for range 2 {
		resp := f.do("GET", "alice.example.com", "/x", nil)
		if b := text(t, resp); resp.StatusCode != 200 || b != "tls-upstream alice--prod.api.fleet.test /x" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	// Without the upstream's CA the handshake fails: a connect error.
	f2 := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up.URL)))
	resp := f2.do("GET", "alice.example.com", "/x", nil)
	if text(t, resp); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("untrusted upstream: %d, want 502", resp.StatusCode)
	}
}

// selfSigned writes a certificate for alice.example.com and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice.example.com"},
		DNSNames: []string{"alice.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
