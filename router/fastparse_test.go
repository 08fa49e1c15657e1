package router

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
		check    func(t *testing.T, rh reqHead, h http.Header)
	}{
		{"plain GET", "GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nAccept: */*\r\nX-Two: 1\r\nx-two: 2\r\n\r\n", nil,
			func(t *testing.T, rh reqHead, h http.Header) {
				if rh.method != "GET" || rh.uri != "/a?b=1" || rh.host != "x.test" || rh.length != 0 || rh.close {
					t.Errorf("%+v", rh)
				}
				if h.Get("Accept") != "*/*" || strings.Join(h["X-Two"], ",") != "1,2" || h["Host"] != nil {
					t.Errorf("header %v", h)
				}
			}},
		{"POST with a length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: keep-alive, close\r\n\r\nbody", nil,
			func(t *testing.T, rh reqHead, h http.Header) {
				if rh.length != 12 || !rh.close || rh.size != len("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: keep-alive, close\r\n\r\n") {
					t.Errorf("%+v", rh)
				}
			}},
		{"blanks around a value", "GET / HTTP/1.1\r\nHost:  x \t\r\nA:\r\n\r\n", nil,
			func(t *testing.T, rh reqHead, h http.Header) {
				if rh.host != "x" || len(h["A"]) != 1 || h["A"][0] != "" {
					t.Errorf("%+v %v", rh, h)
				}
			}},
		{"incomplete", "GET / HTTP/1.1\r\nHost: x\r\n", errNeedMore, nil},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", errFallback, nil},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", errFallback, nil},
		{"absolute form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", errFallback, nil},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", errFallback, nil},
		{"no Host", "GET / HTTP/1.1\r\nA: b\r\n\r\n", errFallback, nil},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", errFallback, nil},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", errFallback, nil},
		{"expect", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n", errFallback, nil},
		{"upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", errFallback, nil},
		{"two lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", errFallback, nil},
		{"signed length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", errFallback, nil},
		{"huge length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999999999999999\r\n\r\n", errFallback, nil},
		{"folded line", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", errFallback, nil},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", errFallback, nil},
		{"control in value", "GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n", errFallback, nil},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", errFallback, nil},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", errFallback, nil},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", errFallback, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			rh, _, err := parseHead([]byte(tc.in), h, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.check != nil {
				tc.check(t, rh, h)
			}
		})
	}
}

// FuzzParseHead checks the fast path's parser against net/http's: every
// head it accepts, net/http reads alike (method, target, Host, length,
// header fields); it never panics.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p?q HTTP/1.1\r\nHost: a.test:80\r\nContent-Length: 3\r\nX: 1\r\nx: 2\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"HEAD /%41 HTTP/1.1\r\nhost: x\r\nACCEPT:  a \r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := http.Header{}
		rh, _, err := parseHead(b, h, nil)
		if err != nil {
			return
		}
		if rh.size > len(b) {
			t.Fatalf("head size %d beyond the input's %d", rh.size, len(b))
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(b[:rh.size]))))
		if err != nil {
			t.Fatalf("accepted %q, which net/http refuses: %v", b[:rh.size], err)
		}
		if r.Method != rh.method || r.RequestURI != rh.uri || r.Host != rh.host || r.ContentLength != rh.length || r.Close != rh.close {
			t.Fatalf("%q: fast %+v, net/http %s %s host %q length %d close %v", b[:rh.size], rh, r.Method, r.RequestURI, r.Host, r.ContentLength, r.Close)
		}
		if len(r.Header) != len(h) {
			t.Fatalf("%q: fast header %v, net/http %v", b[:rh.size], h, r.Header)
		}
		for k, vv := range r.Header {
			if strings.Join(h[k], "\x00") != strings.Join(vv, "\x00") {
				t.Fatalf("%q: %s: fast %q, net/http %q", b[:rh.size], k, h[k], vv)
			}
		}
	})
}
