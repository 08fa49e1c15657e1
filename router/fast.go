package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fastServer serves plain HTTP/1.1 keep-alive connections itself: one
// goroutine per connection parses each request head into reused buffers
// and runs the proxy on it, with no goroutine hand-off per request and no
// read ahead of the next request (net/http's server starts a background
// read per request, whose wake-ups were most of the router's CPU). A
// connection whose next request it does not handle (see parseHead) is
// handed, with the bytes read so far, to net/http's server, which then
// owns it: answers are the same either way.
type fastServer struct {
	cfg   ServerConfig
	proxy *Proxy
	log   *slog.Logger
	slow  *handoff // net/http's server takes connections from it
	dates dateCache

	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	closing bool
	idle    chan struct{} // closed when the last connection ended after closing
	// closed is closing, read without the lock on every request.
	closed atomic.Bool
}

func newFastServer(cfg ServerConfig, p *Proxy, log *slog.Logger, slow *handoff) *fastServer {
	return &fastServer{cfg: cfg, proxy: p, log: log, slow: slow, conns: map[*fastConn]struct{}{}, idle: make(chan struct{})}
}

// serve accepts connections on ln until it is closed.
func (s *fastServer) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond) // out of file descriptors: let some close
				continue
			}
			return err
		}
		fc := s.track(c)
		if fc == nil {
			c.Close()
			continue
		}
		go fc.serve()
	}
}

func (s *fastServer) track(c net.Conn) *fastConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	fc := newFastConn(s, c)
	s.conns[fc] = struct{}{}
	return fc
}

func (s *fastServer) forget(fc *fastConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, fc)
	if s.closing && len(s.conns) == 0 {
		close(s.idle)
	}
}

// shutdown closes idle connections, lets busy ones finish their request
// until ctx ends, then cuts them.
func (s *fastServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.closed.Store(true)
	if len(s.conns) == 0 {
		close(s.idle)
	}
	for fc := range s.conns {
		if !fc.busy.Load() {
			fc.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.idle:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for fc := range s.conns {
		fc.conn.Close()
	}
	s.mu.Unlock()
	return ctx.Err()
}

func (s *fastServer) isClosing() bool { return s.closed.Load() }

// fastConn is one client connection on the fast path, with everything a
// request needs allocated once.
type fastConn struct {
	s      *fastServer
	conn   net.Conn
	in     connReader
	br     *bufio.Reader
	w      fastWriter
	req    *http.Request
	url    url.URL
	body   fastBody
	vals   []string
	busy   atomic.Bool // a request is being served
	readDL time.Time   // the read deadline this goroutine set last
	ctx    context.Context
	cancel context.CancelFunc // the client went away
	bg     backgroundRead
}

func newFastConn(s *fastServer, c net.Conn) *fastConn {
	fc := &fastConn{s: s, conn: c}
	fc.in.c = c
	fc.br = bufio.NewReaderSize(&fc.in, holdBytes)
	fc.w = fastWriter{bw: bufio.NewWriterSize(c, holdBytes), h: make(http.Header, 8), dates: &s.dates}
	fc.ctx, fc.cancel = context.WithCancel(context.Background())
	fc.req, _ = http.NewRequestWithContext(fc.ctx, http.MethodGet, "/", nil)
	fc.req.Header = make(http.Header, 16)
	fc.req.RemoteAddr = c.RemoteAddr().String()
	fc.req.Proto, fc.req.ProtoMajor, fc.req.ProtoMinor = "HTTP/1.1", 1, 1
	fc.body.r = fc.br
	return fc
}

// serve runs the connection's requests until it closes, fails, or has a
// request for net/http.
func (fc *fastConn) serve() {
	handedOff := false
	defer func() {
		fc.cancel()
		if !handedOff {
			fc.conn.Close()
		}
		fc.s.forget(fc)
	}()
	for first := true; ; first = false {
		rh, err := fc.readHead(first)
		if errors.Is(err, errFallback) {
			handedOff = fc.handOff()
			return
		}
		if err != nil {
			return // closed, idle too long, or a head too slow
		}
		fc.busy.Store(true)
		ok := fc.serveOne(rh)
		fc.busy.Store(false)
		if !ok || rh.close || fc.s.isClosing() {
			return
		}
	}
}

// readHead waits for the next request head: IdleTimeout for its first
// byte (ReadHeaderTimeout for a new connection's), ReadHeaderTimeout for
// the rest when it does not come in one read.
func (fc *fastConn) readHead(first bool) (reqHead, error) {
	wait := fc.s.cfg.IdleTimeout
	if first {
		wait = fc.s.cfg.ReadHeaderTimeout
	}
	if fc.br.Buffered() == 0 {
		fc.idleDeadline(wait)
		if _, err := fc.br.Peek(1); err != nil {
			return reqHead{}, err
		}
	}
	for more := false; ; more = true {
		b, _ := fc.br.Peek(fc.br.Buffered())
		rh, vals, err := parseHead(b, fc.req.Header, fc.vals)
		fc.vals = vals
		if !errors.Is(err, errNeedMore) {
			return rh, err
		}
		if fc.br.Buffered() == fc.br.Size() {
			return reqHead{}, errFallback // a head larger than the buffer
		}
		if !more && !first {
			fc.setReadDeadline(time.Now().Add(fc.s.cfg.ReadHeaderTimeout))
		}
		if _, err := fc.br.Peek(fc.br.Buffered() + 1); err != nil {
			return reqHead{}, err
		}
	}
}

// idleDeadline makes the connection wait at least wait, at most an
// eighth more, for the next request. Moving a deadline costs a timer
// change; on a busy connection this keeps one for many requests.
func (fc *fastConn) idleDeadline(wait time.Duration) {
	now := time.Now()
	lo := now.Add(wait)
	if fc.readDL.Before(lo) || fc.readDL.After(lo.Add(wait/8)) {
		fc.setReadDeadline(lo.Add(wait / 8))
	}
}

// setReadDeadline sets the client connection's read deadline and
// remembers it (for idleDeadline).
func (fc *fastConn) setReadDeadline(t time.Time) {
	fc.readDL = t
	fc.conn.SetReadDeadline(t)
}

// handOff gives the connection, and what was read of it, to net/http.
func (fc *fastConn) handOff() bool {
	n := fc.br.Buffered()
	b, _ := fc.br.Peek(n)
	prefix := append([]byte(nil), b...)
	fc.setReadDeadline(time.Time{})
	fc.s.proxy.metrics.handedOff.Inc()
	return fc.s.slow.give(&prefixConn{Conn: fc.conn, prefix: prefix})
}

// serveOne proxies one request; false when the connection cannot go on.
func (fc *fastConn) serveOne(rh reqHead) (ok bool) {
	fc.br.Discard(rh.size)
	if rh.length > 0 {
		fc.setReadDeadline(time.Time{}) // an upload may take long; the idle deadline stays otherwise
	}
	r := fc.req
	r.Method, r.RequestURI, r.Host, r.ContentLength = rh.method, rh.uri, rh.host, rh.length
	fc.url = url.URL{}
	if rh.url != nil {
		fc.url = *rh.url
	} else {
		fc.url.Path, fc.url.RawQuery, _ = strings.Cut(rh.uri, "?")
	}
	r.URL = &fc.url
	r.Body = http.NoBody
	if rh.length > 0 {
		fc.body.left, fc.body.err = rh.length, nil
		r.Body = &fc.body
	}
	r.Close = rh.close
	fc.w.reset(rh.method == http.MethodHead, rh.close || fc.s.isClosing())
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				fc.s.log.Error("router: panic serving a request", "panic", v)
			}
			ok = false
		}
	}()
	fc.s.proxy.serve(&fc.w, r, fc.watchClient)
	if !fc.stopWatching() {
		return false
	}
	if err := fc.w.finish(); err != nil {
		return false
	}
	return fc.body.drain()
}

// watchClient starts watching the client's connection for going away,
// as the exchange waits on its upstream. Only once the request is read
// whole and nothing more was sent: bytes that arrive are the next request.
func (fc *fastConn) watchClient() {
	if fc.bg.running || fc.body.left > 0 || fc.br.Buffered() > 0 {
		return
	}
	fc.bg.start(fc)
}

// stopWatching ends the background read, if any; false when the client
// went away.
func (fc *fastConn) stopWatching() bool {
	if !fc.bg.running {
		return fc.ctx.Err() == nil
	}
	fc.bg.stop(fc.conn)
	fc.readDL = time.Time{}
	return fc.ctx.Err() == nil
}

// backgroundRead waits for a byte from the client while its request is
// being proxied: EOF or an error means it went away (the request's
// context is cancelled); a byte is the start of its next request.
type backgroundRead struct {
	running bool
	abort   atomic.Bool
	done    chan struct{}
}

func (b *backgroundRead) start(fc *fastConn) {
	b.running = true
	b.abort.Store(false)
	b.done = make(chan struct{})
	fc.setReadDeadline(time.Time{}) // a stream may outlast the idle deadline
	go func() {
		defer close(b.done)
		var one [1]byte
		n, err := fc.conn.Read(one[:])
		if n == 1 {
			fc.in.pending, fc.in.has = one[0], true
			return
		}
		if err != nil && !b.abort.Load() {
			fc.cancel()
		}
	}()
}

func (b *backgroundRead) stop(c net.Conn) {
	b.abort.Store(true)
	c.SetReadDeadline(aLongTimeAgo)
	<-b.done
	c.SetReadDeadline(time.Time{})
	b.running = false
}

// connReader reads the connection, first the byte a background read
// took, if any.
type connReader struct {
	c       net.Conn
	pending byte
	has     bool
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.has && len(p) > 0 {
		p[0], r.has = r.pending, false
		return 1, nil
	}
	return r.c.Read(p)
}

// fastBody is a request body of known length.
type fastBody struct {
	r    *bufio.Reader
	left int64
	err  error
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	if b.left == 0 {
		return n, io.EOF
	}
	return n, err
}

func (b *fastBody) Close() error { return nil }

// drainLimit is the most of an unread body read to keep the connection.
const drainLimit = 256 << 10

// drain reads what the proxy left of the body; false when there is too
// much (the connection is closed instead, as net/http does).
func (b *fastBody) drain() bool {
	if b.left <= 0 {
		return b.err == nil || b.err == io.EOF
	}
	if b.left > drainLimit || b.err != nil {
		return false
	}
	n, err := b.r.Discard(int(b.left))
	b.left -= int64(n)
	return err == nil
}

// prefixConn is a connection handed to net/http with the bytes the fast
// path had read of it.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handoff is a net.Listener whose connections are the ones the fast path
// gives to net/http's server.
type handoff struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (h *handoff) give(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.closed:
		return false
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }
