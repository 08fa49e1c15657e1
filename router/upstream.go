package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	errBodyTooLarge = errors.New("request body too large")
	errClientBody   = errors.New("reading the request body")
	errClientWrite  = errors.New("writing the response to the client")
	errClientGone   = errors.New("the client went away")
)

// upstreamError is a failure after the connection was made.
type upstreamError struct {
	kind upstreamErrorKind
	// noResponse: not one byte of a response arrived. On a kept-alive
	// connection that usually means the server had closed it.
	noResponse bool
	err        error
}

func (e *upstreamError) Error() string { return "upstream " + string(e.kind) + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// bufPool holds the buffers bodies are copied through.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// roundTrip sends the request to b and reads the response headers. A
// kept-alive connection the server had closed is replaced by a new one
// once, when the request can be replayed.
func (p *Proxy) roundTrip(ex *exchange, b *backend) (*http.Response, *upstreamConn, error) {
	now := ex.start // microseconds ago on a first try: a clock read less per request
	if ex.retried {
		now = time.Now()
	}
	uc := b.pool.get(now, p.cfg.IdleConnTimeout, ex.r.ContentLength != 0 || !replayable(ex.r.Method))
	reused := uc != nil
	for {
		if uc == nil {
			var err error
			if uc, err = p.dial(ex.r.Context(), b.pool); err != nil {
				p.metrics.upstreamErr.WithLabelValues(string(errKindConnect)).Inc()
				return nil, nil, err
			}
		}
		resp, err := p.send(ex, b, uc)
		if err == nil {
			return resp, uc, nil
		}
		ex.unwatch()
		uc.close()
		var ue *upstreamError
		if uc.gone.Load() {
			// Its server was declared dead: whatever failed, that is why.
			errors.As(err, &ue)
			ue = &upstreamError{kind: errKindGone, noResponse: ue != nil && ue.noResponse, err: errServerGone}
			p.metrics.upstreamErr.WithLabelValues(string(ue.kind)).Inc()
			return nil, nil, ue
		}
		if !errors.As(err, &ue) {
			return nil, nil, err // the client's side failed
		}
		if ex.r.Context().Err() != nil {
			return nil, nil, errors.Join(errClientGone, err) // aborted for the client
		}
		if reused && ue.noResponse && !ex.bodyStarted && replayable(ex.r.Method) && ex.r.Context().Err() == nil {
			reused, uc = false, nil
			continue
		}
		p.metrics.upstreamErr.WithLabelValues(string(ue.kind)).Inc()
		return nil, nil, err
	}
}

func replayable(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// quickAnswer is how long an upstream may take to answer before the
// exchange starts watching for the client going away. Watching costs a
// few allocations and, on the fast path, a goroutine with two deadline
// changes (about 6 % of the router's CPU at 256 connections when this
// was 5 ms, as a loaded backend's answers take longer than that), so
// exchanges that end soon skip it: aborting them a few tens of
// milliseconds earlier would save the upstream nothing that matters.
const quickAnswer = 50 * time.Millisecond

// watch makes a client that goes away abort the upstream I/O at once.
func (ex *exchange) watch(uc *upstreamConn) {
	if ex.onWatch != nil {
		ex.onWatch()
	}
	if ex.stopWatch != nil {
		return
	}
	conn := uc.conn
	ex.stopWatch = context.AfterFunc(ex.r.Context(), func() { conn.SetDeadline(aLongTimeAgo) })
}

// readDeadline and writeDeadline set uc's deadlines. Once the exchange
// watches its client, an abort may already have set a deadline in the
// past; it must not be overridden, hence the check after setting.
func (ex *exchange) readDeadline(uc *upstreamConn, t time.Time) error {
	uc.readDL = t
	if err := uc.conn.SetReadDeadline(t); err != nil {
		return &upstreamError{kind: errKindProtocol, err: err}
	}
	return ex.clientGone()
}

func (ex *exchange) writeDeadline(uc *upstreamConn, t time.Time) error {
	if err := uc.conn.SetWriteDeadline(t); err != nil {
		return &upstreamError{kind: errKindProtocol, err: err}
	}
	return ex.clientGone()
}

func (ex *exchange) clientGone() error {
	if ex.stopWatch != nil && ex.r.Context().Err() != nil {
		return errClientGone
	}
	return nil
}

// unwatch stops watching; false means the abort ran or is running, so the
// connection's deadlines can no longer be trusted.
func (ex *exchange) unwatch() bool {
	if ex.stopWatch == nil {
		return true
	}
	ok := ex.stopWatch()
	ex.stopWatch = nil
	return ok
}

// send writes the request on uc and reads the response headers, skipping
// informational (1xx) responses other than 101.
func (p *Proxy) send(ex *exchange, b *backend, uc *upstreamConn) (*http.Response, error) {
	if err := p.writeRequest(ex, b, uc); err != nil {
		return nil, err
	}
	sent := time.Now()
	if err := p.awaitResponse(ex, uc, sent, sent.Add(b.headerTimeout)); err != nil {
		return nil, err
	}
	for {
		resp, ok := uc.fastResponse(ex.r.Method)
		if !ok {
			var err error
			if resp, err = http.ReadResponse(uc.br, ex.r); err != nil {
				return nil, readError(err, false)
			}
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		took := time.Since(sent).Seconds()
		b.latency.Observe(took)
		ex.target.counters.latency.Observe(took)
		return resp, nil
	}
}

// awaitResponse waits for the first byte of a response until deadline,
// watching for the client going away once the answer is not quick.
func (p *Proxy) awaitResponse(ex *exchange, uc *upstreamConn, sent, deadline time.Time) error {
	quick := sent.Add(quickAnswer)
	switch {
	case ex.stopWatch != nil || !deadline.After(quick.Add(quickAnswer)):
		quick = deadline
	case !uc.readDL.Before(quick) && !uc.readDL.After(quick.Add(quickAnswer)):
		// The deadline an earlier exchange on uc set will do: watching
		// starts between one and two quickAnswers in, and moving a
		// deadline costs a timer change.
		quick = uc.readDL
	default:
		quick = quick.Add(quickAnswer)
	}
	if quick != uc.readDL {
		if err := ex.readDeadline(uc, quick); err != nil {
			return err
		}
	} else if err := ex.clientGone(); err != nil {
		return err
	}
	_, err := uc.br.Peek(1)
	if err != nil && quick.Before(deadline) && isTimeout(err) {
		ex.watch(uc)
		if err := ex.readDeadline(uc, deadline); err != nil {
			return err
		}
		_, err = uc.br.Peek(1)
	}
	if err != nil {
		return readError(err, true)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func readError(err error, noResponse bool) error {
	if isTimeout(err) {
		return &upstreamError{kind: errKindTimeout, err: err}
	}
	return &upstreamError{kind: errKindProtocol, noResponse: noResponse, err: err}
}

// writeRequest writes the request head and streams the body.
func (p *Proxy) writeRequest(ex *exchange, b *backend, uc *upstreamConn) error {
	r := ex.r
	w := uc.bw
	uri := r.RequestURI
	if uri == "" || (uri[0] != '/' && uri != "*") {
		uri = r.URL.RequestURI() // absolute-form or HTTP/2
	}
	w.WriteString(r.Method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(b.Host)
	w.WriteString("\r\n")
	writeRequestHeader(w, r.Header)

	w.WriteString("X-Forwarded-For: ")
	for _, v := range r.Header["X-Forwarded-For"] {
		w.WriteString(v)
		w.WriteString(", ")
	}
	w.WriteString(clientIP(r.RemoteAddr))
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.WriteString(r.Host)
	if r.TLS != nil {
		w.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Request-Id: ")
	} else {
		w.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ")
	}
	w.WriteString(ex.id)
	w.WriteString("\r\n")
	if ex.upgrade != "" {
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.WriteString(ex.upgrade)
		w.WriteString("\r\n")
	}

	var err error
	switch {
	case r.ContentLength > 0:
		ex.watch(uc)
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(r.ContentLength, 10))
		w.WriteString("\r\n\r\n")
		err = p.copyRequestBody(ex, uc, false)
	case r.ContentLength < 0:
		ex.watch(uc)
		w.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		err = p.copyRequestBody(ex, uc, true)
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n\r\n")
	default:
		w.WriteString("\r\n")
	}
	if err != nil {
		return err
	}
	if err := uc.flushRequest(); err != nil {
		return &upstreamError{kind: errKindProtocol, noResponse: !ex.bodyStarted, err: err}
	}
	return nil
}

// writeRequestHeader copies the client's header fields, less hop-by-hop
// ones and those the proxy sets itself.
func writeRequestHeader(w *bufio.Writer, h http.Header) {
	var named []string // fields the client's Connection header names: hop-by-hop too
	for _, v := range h["Connection"] {
		named = appendTokens(named, v)
	}
	for k, vv := range h {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer",
			"Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect",
			"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id":
			continue
		}
		if named != nil && containsFold(named, k) {
			continue
		}
		for _, v := range vv {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
}

// copyRequestBody streams the client's body upstream, chunk-encoded when
// its length is unknown, enforcing MaxBodyBytes.
func (p *Proxy) copyRequestBody(ex *exchange, uc *upstreamConn, chunked bool) error {
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	if chunked {
		buf = buf[:len(buf)-16] // room for the chunk framing
	}
	limit := p.cfg.MaxBodyBytes
	var n int64
	for {
		ex.bodyStarted = true
		m, rerr := ex.r.Body.Read(buf)
		if m > 0 {
			n += int64(m)
			if limit >= 0 && n > limit {
				return errBodyTooLarge
			}
			if err := ex.writeDeadline(uc, time.Now().Add(p.cfg.UpstreamIdleTimeout)); err != nil {
				return err
			}
			if chunked {
				uc.bw.WriteString(strconv.FormatInt(int64(m), 16))
				uc.bw.WriteString("\r\n")
			}
			uc.bw.Write(buf[:m])
			if chunked {
				uc.bw.WriteString("\r\n")
			}
			if err := uc.bw.Flush(); err != nil {
				return &upstreamError{kind: errKindProtocol, err: err}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			var mbe *http.MaxBytesError
			if errors.As(rerr, &mbe) {
				return errBodyTooLarge
			}
			return errors.Join(errClientBody, rerr)
		}
	}
	if !chunked && n != ex.r.ContentLength {
		return errors.Join(errClientBody, io.ErrUnexpectedEOF)
	}
	if chunked {
		uc.bw.WriteString("0\r\n\r\n")
	}
	return ex.writeDeadline(uc, time.Time{})
}

// relay sends the response to the client and keeps the connection for
// reuse when the exchange ended cleanly.
func (p *Proxy) relay(ex *exchange, resp *http.Response, uc *upstreamConn) {
	h := ex.w.Header()
	copyResponseHeader(h, resp.Header)
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // relay as is: no sniffing by net/http
	}
	if ex.newID {
		if _, ok := h["X-Request-Id"]; !ok {
			h["X-Request-Id"] = []string{ex.id}
		}
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	ex.status = resp.StatusCode
	ex.w.WriteHeader(resp.StatusCode)

	stream := resp.ContentLength < 0 || isEventStream(resp.Header)
	err := p.copyResponse(ex, resp, uc, stream)
	if err != nil && uc.gone.Load() {
		err = &upstreamError{kind: errKindGone, err: errServerGone}
	}
	if err != nil {
		ex.unwatch()
		uc.close()
		ex.err = err
		if !errors.Is(err, errClientWrite) && !errors.Is(err, errClientGone) {
			var ue *upstreamError
			if errors.As(err, &ue) {
				p.metrics.upstreamErr.WithLabelValues(string(ue.kind)).Inc()
			}
			// Cut the client's connection: a response that ends cleanly
			// here would pass for complete.
			panic(http.ErrAbortHandler)
		}
		return
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	if !ex.unwatch() || resp.Close {
		uc.close()
		return
	}
	b := ex.backend.pool
	b.put(uc, time.Now())
}

// copyResponse copies the body, flushing after every write when the
// response streams (no length, or server-sent events).
func (p *Proxy) copyResponse(ex *exchange, resp *http.Response, uc *upstreamConn, stream bool) error {
	var flusher http.Flusher
	if stream {
		flusher, _ = ex.w.(http.Flusher)
	}
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	for {
		if uc.br.Buffered() == 0 { // this read waits for the network
			ex.watch(uc)
			if err := ex.readDeadline(uc, time.Now().Add(p.cfg.UpstreamIdleTimeout)); err != nil {
				return err
			}
		}
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			if _, err := ex.w.Write(buf[:m]); err != nil {
				return errors.Join(errClientWrite, err)
			}
			ex.bytes += int64(m)
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return readError(rerr, false)
		}
	}
}

// copyResponseHeader copies an upstream's header fields, less hop-by-hop
// ones.
func copyResponseHeader(dst, src http.Header) {
	var named []string
	for _, v := range src["Connection"] {
		named = appendTokens(named, v)
	}
	for k, vv := range src {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer",
			"Transfer-Encoding", "Upgrade":
			continue
		}
		if named != nil && containsFold(named, k) {
			continue
		}
		dst[k] = vv
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// upgradeRequested returns the protocol a request asks to switch to
// (Connection: upgrade with an Upgrade field), or "".
func upgradeRequested(h http.Header) string {
	up := h["Upgrade"]
	if len(up) == 0 || up[0] == "" {
		return ""
	}
	for _, v := range h["Connection"] {
		for _, t := range appendTokens(nil, v) {
			if strings.EqualFold(t, "upgrade") {
				return up[0]
			}
		}
	}
	return ""
}

// appendTokens appends the comma-separated tokens of v.
func appendTokens(dst []string, v string) []string {
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			dst = append(dst, t)
		}
	}
	return dst
}

func containsFold(list []string, s string) bool {
	for _, t := range list {
		if strings.EqualFold(t, s) {
			return true
		}
	}
	return false
}

// clientIP is the address part of a RemoteAddr.
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
