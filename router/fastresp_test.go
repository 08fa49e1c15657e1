package router

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func readFast(b []byte, method string) (*http.Response, bool) {
	c := &upstreamConn{br: bufio.NewReaderSize(bytes.NewReader(b), 8<<10)}
	c.br.Peek(1)
	return c.fastResponse(method)
}

func TestFastResponse(t *testing.T) {
	resp, ok := readFast([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\nConnection: close\r\n\r\nhelloextra"), "GET")
	if !ok || resp.StatusCode != 200 || resp.ContentLength != 5 || !resp.Close || strings.Join(resp.Header["X-A"], ",") != "1,2" {
		t.Fatalf("%v %+v", ok, resp)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "hello" {
		t.Errorf("body %q", b)
	}
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n", // no length: read to the close
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", // incomplete
	} {
		if _, ok := readFast([]byte(in), "GET"); ok {
			t.Errorf("%q: taken, want it left to http.ReadResponse", in)
		}
	}
	if _, ok := readFast([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"), "HEAD"); ok {
		t.Error("a HEAD answer taken")
	}
}

// FuzzFastResponse: every head fastResponse takes, http.ReadResponse reads
// alike.
func FuzzFastResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nA: b\r\n\r\nhi"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nConnection: keep-alive, close\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := readFast(b, "GET")
		if !ok {
			return
		}
		want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("%q taken, but net/http refuses it: %v", b, err)
		}
		if fast.StatusCode != want.StatusCode || fast.ContentLength != want.ContentLength || fast.Close != want.Close || len(fast.Header) != len(want.Header) {
			t.Fatalf("%q: fast %d %d %v %v, net/http %d %d %v %v", b, fast.StatusCode, fast.ContentLength, fast.Close, fast.Header,
				want.StatusCode, want.ContentLength, want.Close, want.Header)
		}
		for k, vv := range want.Header {
			if strings.Join(fast.Header[k], "\x00") != strings.Join(vv, "\x00") {
				t.Fatalf("%q: %s: fast %q, net/http %q", b, k, fast.Header[k], vv)
			}
		}
	})
}
