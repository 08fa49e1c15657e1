package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api"
	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// remote serves st's API and returns an admin client of it.
func remote(t testing.TB, st *store.Store) *client.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := api.New(st, api.Config{})
	go a.Run(ctx)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return clientAs(t, st, srv.URL, slum.RoleAdmin, "test")
}

// clientAs is a client of the API at url with a new token of role.
func clientAs(t testing.TB, st *store.Store, url string, role slum.APIRole, name string) *client.Client {
	t.Helper()
	_, tok, err := st.CreateAPIToken(context.Background(), role, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(url, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The API client keeps the Fleet contract: every operation behaves, and
// fails, as the store behind it does.
func TestFleetContract(t *testing.T) {
	fleettest.Run(t, func(t testing.TB) fleettest.Subject {
		st := openStore(t)
		return fleettest.Subject{Fleet: remoteNoAuth(t, st), Store: st, Stored: func(t testing.TB) []byte {
			file, err := os.ReadFile(st.Where())
			if err != nil {
				t.Fatal(err)
			}
			wal, _ := os.ReadFile(st.Where() + "-wal")
			return append(file, wal...)
		}}
	})
}

// remoteNoAuth serves st's API without tokens (on loopback), so the
// fleet behind it holds only what a test puts there, and returns a client.
func remoteNoAuth(t testing.TB, st *store.Store) *client.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := api.New(st, api.Config{NoAuth: true})
	go a.Run(ctx)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "no-auth", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func seed(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"s1", "s2"} {
		if _, err := st.AddServer(ctx, slum.Server{ID: id, URL: "http://10.0.0.1:8080", Region: "eu", CapacityMB: 1000, Token: "tok-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.AddServer(ctx, slum.Server{ID: "s3", URL: "http://10.0.0.3:8080", CapacityMB: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"},
		slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s1"}, slum.InstanceSpec{ID: "backup", Process: "api"}); err != nil {
		t.Fatal(err)
	}
}

func same(t *testing.T, what string, local, remote any, lerr, rerr error) {
	t.Helper()
	if lerr != nil || rerr != nil {
		t.Fatalf("%s: local %v, remote %v", what, lerr, rerr)
	}
	l, _ := json.Marshal(local)
	r, _ := json.Marshal(remote)
	if string(l) != string(r) {
		t.Fatalf("%s differs:\nlocal  %s\nremote %s", what, l, r)
	}
}

// What the client reads is what the Store returns, value for value.
func TestClientReadsWhatTheStoreHas(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	seed(t, st)
	c := remote(t, st)
	l1, e1 := st.ListServers(ctx)
	r1, e2 := c.ListServers(ctx)
	same(t, "ListServers", l1, r1, e1, e2)
	for i := range r1 {
		if r1[i].HasToken() != l1[i].HasToken() || (r1[i].HasToken() && r1[i].Token != client.HiddenToken) {
			t.Fatalf("server %s: token %q", r1[i].ID, r1[i].Token)
		}
	}
	l2, e1 := st.ServersInRegion(ctx, "eu")
	r2, e2 := c.ServersInRegion(ctx, "eu")
	same(t, "ServersInRegion", l2, r2, e1, e2)
	l3, e1 := st.GetServer(ctx, "s1")
	r3, e2 := c.GetServer(ctx, "s1")
	same(t, "GetServer", l3, r3, e1, e2)
	l4, e1 := st.AllServerStats(ctx)
	r4, e2 := c.AllServerStats(ctx)
	same(t, "AllServerStats", l4, r4, e1, e2)
	l5, e1 := st.ServerStats(ctx, "s1")
	r5, e2 := c.ServerStats(ctx, "s1")
	same(t, "ServerStats", l5, r5, e1, e2)
	l6, e1 := st.ListTenantsOnServer(ctx, "s1")
	r6, e2 := c.ListTenantsOnServer(ctx, "s1")
	same(t, "ListTenantsOnServer", l6, r6, e1, e2)
	l7, e1 := st.ListInstancesOfTenant(ctx, "alice")
	r7, e2 := c.ListInstancesOfTenant(ctx, "alice")
	same(t, "ListInstancesOfTenant", l7, r7, e1, e2)
	l8, e1 := st.GetTenantByDomain(ctx, "alice.example.com")
	r8, e2 := c.GetTenantByDomain(ctx, "alice.example.com")
	same(t, "GetTenantByDomain", l8, r8, e1, e2)
	l9, e1 := st.Overview(ctx)
	r9, e2 := c.Overview(ctx)
	same(t, "Overview", l9, r9, e1, e2)
	l10, e1 := st.RecentEvents(ctx, 3)
	r10, e2 := c.RecentEvents(ctx, 3)
	same(t, "RecentEvents", l10, r10, e1, e2)
	l11, e1 := st.Events(ctx, 2, 2)
	r11, e2 := c.Events(ctx, 2, 2)
	same(t, "Events", l11, r11, e1, e2)
	l12, e1 := st.Settings(ctx)
	r12, e2 := c.Settings(ctx)
	same(t, "Settings", l12, r12, e1, e2)
	l13, e1 := st.ListInstancesOnServer(ctx, "s1")
	r13, e2 := c.ListInstancesOnServer(ctx, "s1")
	same(t, "ListInstancesOnServer", l13, r13, e1, e2)
	l14, e1 := st.GetInstance(ctx, "alice:prod")
	r14, e2 := c.GetInstance(ctx, "alice:prod")
	same(t, "GetInstance", l14, r14, e1, e2)
	l15, e1 := st.ListAPITokens(ctx)
	r15, e2 := c.ListAPITokens(ctx)
	same(t, "ListAPITokens", l15, r15, e1, e2)
	who, err := c.Whoami(ctx)
	if err != nil || who.Role != slum.RoleAdmin || who.Name != "test" {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	tb, err := c.Routes(ctx)
	if err != nil || tb.Len() != 1 {
		t.Fatalf("routes: %v %v", tb, err)
	}
}

// Errors keep their class and their words: errors.Is works, and the
// message is the one the Store gives locally.
func TestClientErrorsAreTheStores(t *testing.T) {
	ctx := context.Background()
	local, far := openStore(t), openStore(t)
	seed(t, local)
	seed(t, far)
	c := remote(t, far)
	for _, tc := range []struct {
		name     string
		sentinel error
		op       func(s slum.Fleet) error
	}{
		{"not found", slum.ErrNotFound, func(s slum.Fleet) error { _, err := s.GetTenant(ctx, "bob"); return err }},
		{"empty id", slum.ErrInvalid, func(s slum.Fleet) error { _, err := s.GetTenant(ctx, ""); return err }},
		{"id with a dash", slum.ErrInvalid, func(s slum.Fleet) error { _, err := s.GetServer(ctx, "-x"); return err }},
		{"id with a slash", slum.ErrInvalid, func(s slum.Fleet) error { _, err := s.GetInstance(ctx, "a/b:c"); return err }},
		{"exists", slum.ErrAlreadyExists, func(s slum.Fleet) error {
			_, err := s.AddServer(ctx, slum.Server{ID: "s1", URL: "http://x:1", CapacityMB: 1})
			return err
		}},
		{"active tenants", slum.ErrHasActiveTenants, func(s slum.Fleet) error { return s.RemoveServer(ctx, "s1", false) }},
		{"no capacity", slum.ErrNoCapacity, func(s slum.Fleet) error {
			_, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "big", Process: "api", MemoryMB: 5000})
			return err
		}},
		{"conflict", slum.ErrConflict, func(s slum.Fleet) error {
			_, err := s.MoveInstance(ctx, "alice:prod", "s2")
			return err
		}},
	} {
		lerr, rerr := tc.op(local), tc.op(c)
		if !errors.Is(lerr, tc.sentinel) || !errors.Is(rerr, tc.sentinel) || lerr.Error() != rerr.Error() {
			t.Errorf("%s: local %v, remote %v", tc.name, lerr, rerr)
		}
	}
	// A refused mass prune comes back with its plan, as locally.
	f, err := desired.Load("empty.yaml", strings.NewReader("version: 1\n"), ".", nil)
	if err != nil {
		t.Fatal(err)
	}
	lp, lerr := local.Apply(ctx, fleettest.Source(t, f), slum.ApplyOptions{Prune: true})
	rp, rerr := c.Apply(ctx, fleettest.Source(t, f), slum.ApplyOptions{Prune: true})
	var mass *slum.MassPruneError
	if !errors.As(rerr, &mass) || !errors.Is(rerr, slum.ErrConflict) || lerr.Error() != rerr.Error() || rp == nil || !reflect.DeepEqual(lp.Changes, rp.Changes) {
		t.Fatalf("mass prune: local %v %+v, remote %v %+v", lerr, lp, rerr, rp)
	}
	// A hidden token cannot be stored by mistake.
	s1, _ := c.GetServer(ctx, "s1")
	s1.ID = "s9"
	if _, err := c.AddServer(ctx, s1); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("adding a server with a hidden token: %v", err)
	}
	if _, err := local.AddServer(ctx, s1); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("the hidden token is a valid token: %v", err)
	}
}

func TestClientRefusesUnsafeURLs(t *testing.T) {
	for _, u := range []string{"http://fleet.example.com:8443", "ftp://x", "https://", "https://x/api", "https://user:pw@x", "https://x?a=b"} {
		if _, err := client.New(u, "slum_x", client.Options{}); !errors.Is(err, slum.ErrInvalid) || strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://fleet.example.com"} {
		if _, err := client.New(u, "slum_x", client.Options{}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := client.New("http://fleet.example.com:8443", "slum_x", client.Options{InsecureNoTLS: true}); err != nil {
		t.Error(err)
	}
	if _, err := client.New("https://x", " \n", client.Options{}); !errors.Is(err, slum.ErrInvalid) {
		t.Errorf("empty token: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slum test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
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

// Over TLS, with the API's certificate trusted, and not without.
func TestClientOverTLS(t *testing.T) {
	st := openStore(t)
	seed(t, st)
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	ln, err := api.Listen(api.ListenConfig{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ln.URL, "https://127.0.0.1:") {
		t.Fatalf("url %s", ln.URL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.New(st, api.Config{}).Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	_, tok, _ := st.CreateAPIToken(ctx, slum.RoleRead, "")
	c, err := client.New(ln.URL, tok, client.Options{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := c.ListServers(ctx); err != nil || len(ss) != 3 {
		t.Fatalf("over TLS: %v %v", ss, err)
	}
	if _, err := c.AddServer(ctx, slum.Server{ID: "s9", URL: "http://x:1", CapacityMB: 1}); !errors.Is(err, wire.ErrForbidden) {
		t.Fatalf("a read token writing: %v", err)
	}
	untrusting, _ := client.New(ln.URL, tok, client.Options{})
	if _, err := untrusting.ListServers(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted certificate: %v", err)
	}
}
