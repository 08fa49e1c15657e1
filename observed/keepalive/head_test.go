package keepalive

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want head
		ok   bool
	}{
		{"common", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n", head{status: 200, length: 12, close: false}, true},
		{"no reason", "HTTP/1.1 404\r\ncontent-length: 0\r\n\r\n", head{status: 404, length: 0, close: false}, true},
		{"close", "HTTP/1.1 500 x\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", head{status: 500, length: 3, close: true}, true},
		{"keep-alive word", "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\n", head{status: 200, length: 3, close: false}, true},
		{"no content", "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", head{status: 204, length: 0, close: false}, true},
		{"blanks around value", "HTTP/1.1 200 OK\r\nContent-Length: \t7 \r\n\r\n", head{status: 200, length: 7, close: false}, true},

		{"incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n", head{}, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", head{}, false},
		{"to the end", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", head{}, false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", head{}, false},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\n", head{}, false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", head{}, false},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", head{}, false},
		{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", head{}, false},
		{"folded", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n x\r\n\r\n", head{}, false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n", head{}, false},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", head{}, false},
		{"connection list", "HTTP/1.1 200 OK\r\nConnection: close, x\r\nContent-Length: 1\r\n\r\n", head{}, false},
		{"bad code", "HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\n", head{}, false},
		{"304 with a body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", head{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseHead([]byte(tc.in))
			if ok {
				tc.want.size = len(tc.in) // every head here ends the text
			}
			if ok != tc.ok || got != tc.want {
				t.Fatalf("parseHead(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzParseHead holds the fast reading to net/http's: whatever head it
// takes, http.ReadResponse must read the same status, length and
// connection end from the same bytes.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\ncontent-length: 5\r\n\r\nerror",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 \r\nContent-Length:0\r\nX: \x01\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseHead(b)
		if !ok {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("parseHead took %q as %+v; http.ReadResponse refused it: %v", b, h, err)
		}
		defer resp.Body.Close()
		wantLength := resp.ContentLength
		if resp.StatusCode == 204 || resp.StatusCode == 304 {
			wantLength = 0
		}
		if resp.StatusCode != h.status || wantLength != h.length || resp.Close != h.close {
			t.Fatalf("%q: parseHead %+v; http.ReadResponse status %d length %d close %v", b, h, resp.StatusCode, resp.ContentLength, resp.Close)
		}
		if rest := len(b) - h.size; int64(rest) >= h.length {
			body, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(body, b[h.size:h.size+int(h.length)]) {
				t.Fatalf("%q: body %q, %v; parseHead's starts at %d", b, body, err, h.size)
			}
		}
	})
}
