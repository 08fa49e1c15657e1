package router

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestServerSentEventsArriveIncrementally(t *testing.T) {
	firstSeen := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		// The backend does not finish until the client has the first
		// event: a proxy that buffers would deadlock here.
		select {
		case <-firstSeen:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	req, _ := http.NewRequestWithContext(ctxWithTimeout(t), "GET", f.url+"/events", nil)
	req.Host = "alice.example.com"
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q, %v (a timeout here means the proxy buffered the stream)", line, err)
	}
	close(firstSeen)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest of the stream: %q, %v", rest, err)
	}
}

func TestChunkedResponseStreamsWithTrailers(t *testing.T) {
	next := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		for i := range 3 {
			fmt.Fprintf(w, "chunk %d;", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Checksum", "c0ffee")
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	req, _ := http.NewRequestWithContext(ctxWithTimeout(t), "GET", f.url+"/", nil)
	req.Host = "alice.example.com"
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("length %d, transfer encoding %v: want chunked", resp.ContentLength, resp.TransferEncoding)
	}
	buf := make([]byte, len("chunk 0;"))
	for i := range 3 {
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != fmt.Sprintf("chunk %d;", i) {
			t.Fatalf("chunk %d: %q, %v", i, buf, err)
		}
		next <- struct{}{}
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the chunks: %q, %v", rest, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "c0ffee" {
		t.Errorf("trailer X-Checksum %q, want c0ffee", got)
	}
}

func TestHeadAndNoContent(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/none" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", "1234")
		w.Header().Set("Content-Type", "application/octet-stream")
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	for range 2 { // the second goes over the kept-alive upstream connection
		resp := f.do("HEAD", "alice.example.com", "/", nil)
		if b := text(t, resp); resp.StatusCode != 200 || resp.ContentLength != 1234 || b != "" {
			t.Errorf("HEAD: %d, length %d, body %q", resp.StatusCode, resp.ContentLength, b)
		}
		resp = f.do("GET", "alice.example.com", "/none", nil)
		if b := text(t, resp); resp.StatusCode != 204 || b != "" {
			t.Errorf("204: %d %q", resp.StatusCode, b)
		}
	}
}

// pattern is a deterministic stream of n bytes.
func pattern(n int64) io.Reader {
	return io.LimitReader(&counting{}, n)
}

type counting struct{ i byte }

func (c *counting) Read(p []byte) (int, error) {
	for j := range p {
		p[j] = c.i
		c.i = c.i*31 + 7
	}
	return len(p), nil
}

func TestLargeUploadIsStreamed(t *testing.T) {
	const size = 16 << 20
	started := make(chan struct{}, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		var n int64
		for {
			m, err := r.Body.Read(buf)
			if m > 0 && n == 0 {
				started <- struct{}{}
			}
			h.Write(buf[:m])
			n += int64(m)
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d %x %s", n, h.Sum(nil), r.Header.Get("Content-Length"))
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	want := sha256.New()
	io.Copy(want, pattern(size))
	sum := hex.EncodeToString(want.Sum(nil))

	for _, known := range []bool{true, false} {
		// The client holds back the second half until the backend has
		// started reading: a proxy that buffers the body would deadlock.
		pr, pw := io.Pipe()
		go func() {
			src := pattern(size)
			if _, err := io.CopyN(pw, src, size/2); err != nil {
				pw.CloseWithError(err)
				return
			}
			select {
			case <-started:
			case <-t.Context().Done():
				pw.CloseWithError(errors.New("test over"))
				return
			}
			_, err := io.Copy(pw, src)
			pw.CloseWithError(err)
		}()
		req, _ := http.NewRequestWithContext(ctxWithTimeout(t), "PUT", f.url+"/upload", pr)
		req.Host = "alice.example.com"
		wantLen := ""
		if known {
			req.ContentLength = size
			wantLen = fmt.Sprint(size)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatalf("known length %v: %v", known, err)
		}
		if got := text(t, resp); got != fmt.Sprintf("%d %s %s", size, sum, wantLen) {
			t.Errorf("known length %v: backend saw %q", known, got)
		}
	}
}

func TestWebSocketEcho(t *testing.T) {
	up := upstream(t, wsEcho)
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: alice.example.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"hello", strings.Repeat("big ", 20000), "bye"} {
		if err := wsWrite(conn, 1, []byte(msg), true); err != nil {
			t.Fatal(err)
		}
		op, got, err := wsRead(br)
		if err != nil || op != 1 || string(got) != msg {
			t.Fatalf("echo of %d bytes: op %d, %d bytes, %v", len(msg), op, len(got), err)
		}
	}
	wsWrite(conn, 8, nil, true)
	if op, _, err := wsRead(br); err != nil || op != 8 {
		t.Fatalf("close: op %d, %v", op, err)
	}
	// The upstream closes after the close frame; the tunnel passes that on.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after close: %v, want EOF", err)
	}
}

func TestUpgradeRefusedUpstreamIsRelayed(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusBadRequest)
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	resp := f.do("GET", "alice.example.com", "/ws", nil, "Connection", "Upgrade", "Upgrade", "websocket")
	if b := text(t, resp); resp.StatusCode != 400 || !strings.Contains(b, "no websockets") {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
}

// wsEcho is a minimal WebSocket echo server: enough of RFC 6455 to test
// the tunnel (unfragmented frames).
func wsEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		http.Error(w, "not a websocket handshake", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		wsAccept(r.Header.Get("Sec-WebSocket-Key")))
	if brw.Flush() != nil {
		return
	}
	for {
		op, payload, err := wsRead(brw.Reader)
		if err != nil {
			return
		}
		if err := wsWrite(conn, op, payload, false); err != nil || op == 8 {
			return
		}
	}
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func wsWrite(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op, 0}
	switch n := len(payload); {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	body := payload
	if mask {
		hdr[1] |= 0x80
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		body = make([]byte, len(payload))
		for i, b := range payload {
			body[i] = b ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, body...))
	return err
}

func wsRead(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	if n > 1<<24 {
		return 0, nil, errors.New("frame too large for this test")
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, payload, nil
}
