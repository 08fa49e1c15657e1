package router

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// fastWriter is the fast path's http.ResponseWriter: HTTP/1.1 on the
// client's connection, as net/http's server writes it. A body that ends
// before holdBytes is sent with a Content-Length; a longer one, or one
// flushed early, is chunked unless the handler set Content-Length.
type fastWriter struct {
	bw     *bufio.Writer
	h      http.Header
	head   bool // answering a HEAD request
	close  bool // say Connection: close
	status int
	sent   bool // the status line and header are written
	// chunked: the body is chunk-encoded; noBody: none may be sent.
	chunked, noBody bool
	held            []byte // body held back until holdBytes or a flush
	err             error  // the first write error: the connection is broken
	dates           *dateCache
}

// holdBytes is how much body is held back to learn its length.
const holdBytes = 4 << 10

func (w *fastWriter) reset(head, close bool) {
	clear(w.h)
	w.head, w.close, w.status, w.sent, w.chunked, w.noBody, w.held, w.err = head, close, 0, false, false, false, w.held[:0], nil
}

func (w *fastWriter) Header() http.Header { return w.h }

func (w *fastWriter) WriteHeader(code int) {
	if w.status != 0 || code < 100 || code > 999 {
		return
	}
	w.status = code
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.head || !bodyAllowed(w.status) {
		return len(p), nil
	}
	if !w.sent {
		if _, ok := w.h["Content-Length"]; !ok && len(w.held)+len(p) <= holdBytes {
			w.held = append(w.held, p...)
			return len(p), nil
		}
		w.writeHead(-1)
		if len(w.held) > 0 {
			w.body(w.held)
			w.held = w.held[:0]
		}
	}
	w.body(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Flush sends what is written so far.
func (w *fastWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		w.writeHead(-1)
		if len(w.held) > 0 {
			w.body(w.held)
			w.held = w.held[:0]
		}
	}
	if err := w.bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
}

// finish ends the response: the held body with its length, or the last
// chunk and the trailers.
func (w *fastWriter) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		_, trailers := w.h["Trailer"]
		n := int64(-1)
		if _, ok := w.h["Content-Length"]; !ok && !trailers && bodyAllowed(w.status) && (!w.head || len(w.held) > 0) {
			n = int64(len(w.held))
		}
		w.writeHead(n)
		if len(w.held) > 0 && !w.head {
			w.body(w.held)
		}
		w.held = w.held[:0]
	}
	if w.chunked {
		w.bw.WriteString("0\r\n")
		w.writeTrailers()
		w.bw.WriteString("\r\n")
	}
	if err := w.bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// writeHead writes the status line and header; length ≥ 0 is the body's
// length when the handler did not set one.
func (w *fastWriter) writeHead(length int64) {
	w.sent = true
	bw := w.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(w.status))
	bw.WriteByte(' ')
	if text := http.StatusText(w.status); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code ")
		bw.WriteString(strconv.Itoa(w.status))
	}
	bw.WriteString("\r\n")
	_, hasLength := w.h["Content-Length"]
	for k, vv := range w.h {
		if k == "Transfer-Encoding" || k == "Connection" || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if _, ok := w.h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(w.dates.get())
		bw.WriteString("\r\n")
	}
	switch {
	case !bodyAllowed(w.status) || hasLength:
	case length >= 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(length, 10))
		bw.WriteString("\r\n")
	case w.head:
	default:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	w.noBody = w.head || !bodyAllowed(w.status)
}

// writeField writes one header field; line breaks in a value (which
// would start a field of their own) become spaces, as net/http does.
func writeField(bw *bufio.Writer, k, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

func (w *fastWriter) body(p []byte) {
	if w.noBody || len(p) == 0 {
		return
	}
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		w.bw.WriteString("\r\n")
	}
	if _, err := w.bw.Write(p); err != nil && w.err == nil {
		w.err = err
	}
	if w.chunked {
		w.bw.WriteString("\r\n")
	}
}

// writeTrailers writes the trailer fields the handler set with
// http.TrailerPrefix (as the proxy does).
func (w *fastWriter) writeTrailers() {
	for k, vv := range w.h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				writeField(w.bw, http.CanonicalHeaderKey(name), v)
			}
		}
	}
}

// dateCache holds the Date header's value, remade once a second.
type dateCache struct{ p atomic.Pointer[dateValue] }

type dateValue struct {
	sec  int64
	text string
}

func (c *dateCache) get() string {
	now := time.Now()
	if d := c.p.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateValue{sec: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	c.p.Store(d)
	return d.text
}
