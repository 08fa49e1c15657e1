package api

import (
	"errors"
	"strings"
	"testing"
)

func TestListenRefusesWhatIsUnsafe(t *testing.T) {
	for _, tc := range []struct {
		lc   ListenConfig
		want string
	}{
		{ListenConfig{Addr: "0.0.0.0:0"}, "beyond loopback, needs TLS"},
		{ListenConfig{Addr: ":0"}, "beyond loopback, needs TLS"},
		{ListenConfig{Addr: "0.0.0.0:0", InsecureNoTLS: true, NoAuth: true}, "without authentication (--no-auth) is allowed on a loopback address only"},
		{ListenConfig{Addr: "127.0.0.1:0", CertFile: "c.pem"}, "--tls-cert and --tls-key go together"},
		{ListenConfig{Addr: "127.0.0.1:0", CertFile: "c.pem", KeyFile: "k.pem", InsecureNoTLS: true}, "contradict"},
		{ListenConfig{Addr: "127.0.0.1:0", CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}, "load --tls-cert and --tls-key"},
		{ListenConfig{Addr: "no-port"}, `listen address "no-port"`},
	} {
		_, err := Listen(tc.lc)
		if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", tc.lc, err, tc.want)
		}
	}
	for _, lc := range []ListenConfig{{Addr: "127.0.0.1:0"}, {Addr: "[::1]:0"}, {Addr: "localhost:0", NoAuth: true}, {Addr: "0.0.0.0:0", InsecureNoTLS: true}} {
		ln, err := Listen(lc)
		if err != nil {
			if strings.Contains(lc.Addr, "::1") && strings.Contains(err.Error(), "cannot assign") {
				continue // no IPv6 here
			}
			t.Errorf("%+v: %v", lc, err)
			continue
		}
		if !strings.HasPrefix(ln.URL, "http://") {
			t.Errorf("%+v: %s", lc, ln.URL)
		}
		ln.Close()
	}
}
