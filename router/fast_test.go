package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw to the proxy and reads n responses.
func rawExchange(t *testing.T, url, raw string, n int) ([]*http.Response, []string, error) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for range n {
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode < 200 { // 100 Continue
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			return resps, bodies, err
		}
		b, _ := io.ReadAll(resp.Body)
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	_, err = br.ReadByte() // what follows: EOF when the proxy closed
	return resps, bodies, err
}

// What reaches the proxy as raw bytes is answered as net/http's server
// answers it, on either path: pipelined requests in order, HTTP/1.0,
// Connection: close, Expect: 100-continue and malformed requests (the
// fast path hands those connections to net/http).
func TestRawRequests(t *testing.T) {
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", upstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+string(b))
	}))))
	host := "Host: alice.example.com\r\n"

	resps, bodies, err := rawExchange(t, f.url, "GET /1 HTTP/1.1\r\n"+host+"\r\nPOST /2 HTTP/1.1\r\n"+host+"Content-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n"+host+"Connection: close\r\n\r\n", 3)
	if len(resps) != 3 || bodies[0] != "GET /1 " || bodies[1] != "POST /2 abc" || bodies[2] != "GET /3 " || err != io.EOF {
		t.Errorf("pipelined: %q, then %v", bodies, err)
	}
	if len(resps) == 3 && (resps[0].ContentLength != 7 || !resps[2].Close || resps[0].Header.Get("Date") == "") {
		t.Errorf("pipelined: headers %v / %v", resps[0].Header, resps[2].Header)
	}
	_, bodies, _ = rawExchange(t, f.url, "GET /old HTTP/1.0\r\n"+host+"\r\n", 1)
	if len(bodies) != 1 || bodies[0] != "GET /old " {
		t.Errorf("HTTP/1.0: %q", bodies)
	}
	resps, bodies, _ = rawExchange(t, f.url, "POST /e HTTP/1.1\r\n"+host+"Content-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhi", 1)
	if len(resps) != 1 || resps[0].StatusCode != 200 || bodies[0] != "POST /e hi" {
		t.Errorf("Expect: 100-continue: %v %q", resps, bodies)
	}
	resps, _, _ = rawExchange(t, f.url, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1)
	if len(resps) != 1 || resps[0].StatusCode != 400 {
		t.Errorf("two Host fields: %v, want 400", resps)
	}
	resps, _, _ = rawExchange(t, f.url, "GET /%zz HTTP/1.1\r\n"+host+"\r\n", 1)
	if len(resps) != 1 || resps[0].StatusCode != 400 {
		t.Errorf("a bad escape: %v, want 400", resps)
	}
	wantHandoffs(t, f.proxy, 4)
}
