// Package keepalive owns the connections slum's short calls to tenement
// servers travel on: plain HTTP/1.1 over kept-alive TCP connections, one
// request at a time per connection, the answer read whole.
//
// A controller converging a large fleet sends one spawn per instance, and
// Go's http.Transport spends most of the client's CPU on what these calls
// do not need (a reader and a writer goroutine per connection, channel
// hand-offs and a cancellation watcher per request). Here the caller's
// goroutine writes the request and reads the answer itself, through
// buffers the pool lends each call. TLS, streams and anything else stay with
// net/http; an answer whose head is not the common kind (a Content-Length,
// no Transfer-Encoding) is read by http.ReadResponse from the same bytes.
package keepalive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/slum-fleet/slum/http1"
)

// Defaults of a Pool.
const (
	DefaultMaxIdlePerHost = 64
	DefaultIdleTimeout    = 90 * time.Second
	DefaultDialTimeout    = 3 * time.Second
)

// maxGrow bounds what an answer's Content-Length reserves before its
// bytes arrive.
const maxGrow = 1 << 20

// ErrMalformed is an answer that is not HTTP/1.x.
var ErrMalformed = errors.New("malformed HTTP answer")

// ErrTooLarge is an answer whose body is over the caller's limit.
var ErrTooLarge = errors.New("answer over the size limit")

// Pool keeps idle connections per host:port, shared by every caller. It
// is safe for concurrent use; the zero value is not: use NewPool.
type Pool struct {
	dialer         net.Dialer
	maxIdlePerHost int
	idleTimeout    time.Duration
	now            func() time.Time

	mu        sync.Mutex
	idle      map[string][]*conn // most recently used last
	lastSweep time.Time

	// buffers are the read and write buffers of connections out on a
	// call. An idle connection holds none: a controller keeps up to
	// --per-server idle connections to every server, and buffers for
	// each would be ~5 MB at 100 servers, of which only the calls in
	// flight use any.
	buffers sync.Pool // of *buffers
}

// buffers is what one connection reads and writes through while on a call.
type buffers struct {
	br  *bufio.Reader
	out []byte // the request being written
}

// maxKeptRequest bounds the request buffer a connection gives back: one
// grown by a large body is let go.
const maxKeptRequest = 4 << 10

// lend gives c buffers for a call.
func (p *Pool) lend(c *conn) {
	b, _ := p.buffers.Get().(*buffers)
	if b == nil {
		b = &buffers{br: bufio.NewReaderSize(nil, 4096), out: make([]byte, 0, 512)}
	}
	b.br.Reset(c.nc)
	c.buf = b
}

// discard closes c, off a call, and takes back its buffers.
func (p *Pool) discard(c *conn) {
	p.reclaim(c)
	c.nc.Close()
}

// reclaim takes back c's buffers, which hold nothing c still needs (what
// is left in them is dropped).
func (p *Pool) reclaim(c *conn) {
	b := c.buf
	c.buf = nil
	b.br.Reset(nil)
	if cap(b.out) > maxKeptRequest {
		b.out = make([]byte, 0, 512)
	}
	p.buffers.Put(b)
}

// NewPool returns a pool with the defaults above.
func NewPool() *Pool {
	return &Pool{
		dialer:         net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second},
		maxIdlePerHost: DefaultMaxIdlePerHost,
		idleTimeout:    DefaultIdleTimeout,
		now:            time.Now,
		idle:           map[string][]*conn{},
	}
}

// Request is one call. Header holds whole header lines, each ending in
// CRLF ("Authorization: Bearer …\r\n"); Host and Content-Length are
// written by Do.
type Request struct {
	Method string
	Addr   string // host:port to connect to
	Host   string // the Host header: the URL's host, as net/http sends it
	Path   string // absolute path with any query, already escaped
	Header []byte
	Body   []byte
	// Deadline, when set, ends the call if ctx has not ended it before.
	Deadline time.Time
	// Idempotent requests are sent once more, on a new connection, when a
	// kept-alive one turns out closed before any of the answer arrived
	// (a server may close an idle connection at any time).
	Idempotent bool
}

// Do sends req and appends the answer's body to body, returning its
// status. The call ends at req.Deadline or at ctx's deadline or
// cancellation, with context.DeadlineExceeded or context.Canceled in the
// error. A body over
// limit bytes is ErrTooLarge.
func (p *Pool) Do(ctx context.Context, req *Request, body *bytes.Buffer, limit int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fresh := false
	for {
		c, err := p.get(ctx, req.Addr, req.Deadline, fresh)
		if err != nil {
			return 0, err
		}
		status, reuse, err := c.exchange(ctx, req, body, limit)
		if err == nil {
			if reuse {
				p.put(c)
			} else {
				p.discard(c)
			}
			return status, nil
		}
		p.discard(c)
		var stale *staleError
		if errors.As(err, &stale) {
			if c.reused {
				// The server closed it under us; its other idle
				// connections are likely closed too.
				p.dropIdle(req.Addr)
				if req.Idempotent && ctx.Err() == nil {
					fresh = true
					continue
				}
			}
			err = stale.err
		}
		return 0, err
	}
}

// dropIdle closes every idle connection to addr.
func (p *Pool) dropIdle(addr string) {
	p.mu.Lock()
	list := p.idle[addr]
	delete(p.idle, addr)
	p.mu.Unlock()
	for _, c := range list {
		c.nc.Close()
	}
}

// CloseIdle closes every idle connection.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]*conn{}
	p.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
}

// Idle is how many connections to addr (host:port) wait for a call.
func (p *Pool) Idle(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle[addr])
}

// get hands out an idle connection to addr that is still open, or a new
// one (always, when fresh).
func (p *Pool) get(ctx context.Context, addr string, deadline time.Time, fresh bool) (*conn, error) {
	for !fresh {
		c := p.takeIdle(addr)
		if c == nil {
			break
		}
		// Whatever is there to read while no call is out (the server's
		// close, or bytes nobody asked for) ends the connection: the next
		// answer read on it must be the next call's.
		if !http1.Readable(c.nc) {
			c.reused = true
			p.lend(c)
			return c, nil
		}
		c.nc.Close()
	}
	dctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	nc, err := p.dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		if ctxErr := dctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("dial tcp %s: %w", addr, ctxErr)
		}
		return nil, err
	}
	c := &conn{nc: nc, addr: addr}
	p.lend(c)
	return c, nil
}

// takeIdle takes addr's most recently used idle connection, closing
// those idle past the timeout on the way.
func (p *Pool) takeIdle(addr string) *conn {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[addr]
	for len(list) > 0 {
		c := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		p.idle[addr] = list
		if now.Sub(c.idleSince) < p.idleTimeout {
			return c
		}
		c.nc.Close()
	}
	return nil
}

func (p *Pool) put(c *conn) {
	if c.buf.br.Buffered() > 0 {
		// Bytes past the answer: the next call would read them as its own.
		p.discard(c)
		return
	}
	p.reclaim(c)
	now := p.now()
	c.idleSince = now
	p.mu.Lock()
	var stale []*conn
	if now.Sub(p.lastSweep) > p.idleTimeout/2 {
		p.lastSweep = now
		stale = p.sweepLocked(now)
	}
	list := p.idle[c.addr]
	if len(list) >= p.maxIdlePerHost {
		p.mu.Unlock()
		c.nc.Close()
	} else {
		p.idle[c.addr] = append(list, c)
		p.mu.Unlock()
	}
	for _, s := range stale {
		s.nc.Close()
	}
}

// sweepLocked takes out connections idle past the timeout, of every
// address: a server removed from the fleet is never asked for again.
func (p *Pool) sweepLocked(now time.Time) []*conn {
	var stale []*conn
	for addr, list := range p.idle {
		keep := list[:0]
		for _, c := range list {
			if now.Sub(c.idleSince) < p.idleTimeout {
				keep = append(keep, c)
			} else {
				stale = append(stale, c)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = keep
		}
	}
	return stale
}

// conn is one connection, owned by one call at a time.
type conn struct {
	nc        net.Conn
	addr      string   // host:port, the pool's key
	buf       *buffers // while on a call, lent by the pool
	reused    bool
	idleSince time.Time
}

// staleError is a failure before any byte of the answer arrived: on a
// kept-alive connection, most likely one the server had closed.
type staleError struct{ err error }

func (e *staleError) Error() string { return e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

// aLongTimeAgo is a deadline that has passed: setting it ends a blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes req and reads the answer. reuse reports whether the
// connection may carry another call.
func (c *conn) exchange(ctx context.Context, req *Request, body *bytes.Buffer, limit int64) (status int, reuse bool, err error) {
	deadline := req.Deadline
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
		defer func() {
			if !stop() { // the deadline is poisoned: the connection is done
				reuse = false
				if err != nil {
					err = ctxError(ctx, err)
				}
			}
		}()
	}
	c.buf.out = appendRequest(c.buf.out[:0], req)
	if _, err := c.nc.Write(c.buf.out); err != nil {
		return 0, false, notAnswered(ctx, err)
	}
	if _, err := c.buf.br.Peek(1); err != nil {
		return 0, false, notAnswered(ctx, err)
	}
	status, reuse, err = c.readAnswer(req.Method, body, limit)
	if err != nil {
		return 0, false, ctxError(ctx, err)
	}
	return status, reuse, nil
}

// notAnswered is a failure before any of the answer arrived: a closed
// connection is a staleError, a timeout or cancellation is not.
func notAnswered(ctx context.Context, err error) error {
	if ctx.Err() != nil || isTimeout(err) {
		return ctxError(ctx, err)
	}
	return &staleError{err}
}

// ctxError puts the context's reason in place of the deadline error it
// caused.
func ctxError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && (err == nil || isTimeout(err)) {
		return ctxErr
	}
	if isTimeout(err) {
		return context.DeadlineExceeded // the deadline set from ctx's, just before ctx noticed
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func appendRequest(b []byte, req *Request) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, req.Host...)
	b = append(b, "\r\nUser-Agent: slum\r\n"...)
	if req.Body != nil || req.Method == http.MethodPost || req.Method == http.MethodPut {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, req.Header...)
	b = append(b, "\r\n"...)
	return append(b, req.Body...)
}

// readAnswer reads one answer. The common head is parsed in place; any
// other goes to http.ReadResponse.
func (c *conn) readAnswer(method string, body *bytes.Buffer, limit int64) (int, bool, error) {
	h, ok := parseHead(c.buffered())
	if !ok {
		return c.readAnswerSlowly(method, body, limit)
	}
	if h.length > limit {
		return 0, false, fmt.Errorf("%w: %d bytes, at most %d are read", ErrTooLarge, h.length, limit)
	}
	c.buf.br.Discard(h.size)
	if method == http.MethodHead {
		h.length = 0
	}
	if h.length > 0 {
		body.Grow(int(min(h.length, maxGrow))) // a length is a claim until the bytes come
		if _, err := io.CopyN(body, c.buf.br, h.length); err != nil {
			return 0, false, unexpectedEOF(err)
		}
	}
	return h.status, !h.close, nil
}

func (c *conn) buffered() []byte {
	b, _ := c.buf.br.Peek(c.buf.br.Buffered())
	return b
}

func (c *conn) readAnswerSlowly(method string, body *bytes.Buffer, limit int64) (int, bool, error) {
	resp, err := http.ReadResponse(c.buf.br, &http.Request{Method: method})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return 0, false, unexpectedEOF(err) // the connection failed, not the answer
		}
		return 0, false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 {
		// slum sends no Expect and no Upgrade: an interim answer here
		// is a server out of step with its connection.
		return 0, false, fmt.Errorf("%w: unasked interim status %d", ErrMalformed, resp.StatusCode)
	}
	n, err := body.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, false, unexpectedEOF(err)
	}
	if n > limit {
		return 0, false, fmt.Errorf("%w: at most %d bytes are read", ErrTooLarge, limit)
	}
	return resp.StatusCode, !resp.Close, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
