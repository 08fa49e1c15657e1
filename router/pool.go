package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/http1"
)

// probeAfter is how long a pooled connection may sit idle before it is
// checked for a close by the server before reuse. Shorter idles are
// trusted: checking costs two deadline changes and a read attempt.
const probeAfter = time.Second

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads
// and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// upstreamConn is one HTTP/1.1 connection to a tenement server. A request
// owns it from get to put; the goroutine that owns it does all its I/O,
// so there are no hand-offs between goroutines per request.
type upstreamConn struct {
	conn      net.Conn
	raw       net.Conn // the TCP connection under conn (the same without TLS)
	br        *bufio.Reader
	bw        *bufio.Writer
	hw        *heldWriteConn // under br and bw, when not TLS; nil in tests
	idleSince time.Time
	readDL    time.Time // the read deadline the exchanges set last
	pl        *pool     // that opened it; nil in tests
	// The last response fastResponse read, and what it reuses.
	resp http.Response
	hdr  http.Header
	vals []string
	body fastBody
	// gone is set when the connection was closed because its server left
	// the route table (declared dead): the exchange on it failed for that.
	gone atomic.Bool
}

// flushRequest ends writing a request: on a plain connection its last
// bytes go out with the read that waits for the answer.
func (c *upstreamConn) flushRequest() error {
	if c.hw == nil {
		return c.bw.Flush()
	}
	c.hw.hold = true
	err := c.bw.Flush()
	c.hw.hold = false
	return err
}

func (c *upstreamConn) close() {
	c.conn.Close()
	if c.pl != nil {
		c.pl.forget(c)
	}
}

// alive checks, without blocking, that the server has not closed an idle
// connection: there must be nothing to read, not even an EOF.
func (c *upstreamConn) alive() bool {
	return c.br.Buffered() == 0 && !http1.Readable(c.raw)
}

// pool keeps idle connections to one tenement server. A buffered channel
// hands them out: whoever receives one owns it.
type pool struct {
	addr       string // host:port
	tls        bool
	serverName string
	idle       chan *upstreamConn
	retired    atomic.Bool // no longer in the route table: keep nothing

	// open holds every connection the pool opened and has not closed,
	// idle or busy, so that retire can end the exchanges on them.
	mu        sync.Mutex
	open      map[*upstreamConn]struct{}
	retiredBy clock.Clock // set by retire, with the grace it gave
	grace     time.Duration
}

func newPool(u *url.URL, maxIdle int) *pool {
	return &pool{addr: u.Host, tls: u.Scheme == "https", serverName: u.Hostname(), idle: make(chan *upstreamConn, maxIdle),
		open: make(map[*upstreamConn]struct{})}
}

// errServerGone ends exchanges whose server left the route table.
var errServerGone = errors.New("the copy's server left the route table (declared dead or removed)")

// track records a new connection. One opened for a request that chose
// the pool before it was retired gets the grace the others got.
func (pl *pool) track(c *upstreamConn) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	c.pl = pl
	if pl.retiredBy != nil {
		pl.retiredBy.AfterFunc(pl.grace, c.end)
		return
	}
	pl.open[c] = struct{}{}
}

func (pl *pool) forget(c *upstreamConn) {
	pl.mu.Lock()
	delete(pl.open, c)
	pl.mu.Unlock()
}

// retire is for a pool whose server left the route table (declared
// dead, or its last copy moved away): it keeps nothing from now on, and
// gives the exchanges in flight grace to finish, as a live server's
// would; then it ends them, so that a dead server's requests are never
// left to the response timeout (the proxy retries those it may replay on
// the copy that serves now). Closing the TCP connection under each makes
// blocked reads and writes fail at once; gone tells them why. It returns
// how many busy connections it will end.
func (pl *pool) retire(clk clock.Clock, grace time.Duration) int {
	pl.retired.Store(true)
	pl.drain()
	pl.mu.Lock()
	pl.retiredBy, pl.grace = clk, grace
	conns := pl.open
	pl.open = map[*upstreamConn]struct{}{}
	pl.mu.Unlock()
	if len(conns) > 0 {
		clk.AfterFunc(grace, func() {
			for c := range conns {
				c.end()
			}
		})
	}
	return len(conns)
}

// end closes c because its server left the route table.
func (c *upstreamConn) end() {
	c.gone.Store(true)
	c.raw.Close()
}

// get returns an idle connection that is still usable, or nil. probe
// checks every connection for a close by the server, not only those idle
// for long: for requests that could not be replayed on a new connection.
func (pl *pool) get(now time.Time, maxIdle time.Duration, probe bool) *upstreamConn {
	for {
		select {
		case c := <-pl.idle:
			idle := now.Sub(c.idleSince)
			if idle > maxIdle || ((probe || idle > probeAfter) && !c.alive()) {
				c.close()
				continue
			}
			return c
		default:
			return nil
		}
	}
}

// put keeps c for reuse, or closes it when the pool is full or retired.
func (pl *pool) put(c *upstreamConn, now time.Time) {
	if pl.retired.Load() {
		c.close()
		return
	}
	c.idleSince = now
	select {
	case pl.idle <- c:
		if pl.retired.Load() { // retired meanwhile: drain may have missed c
			pl.drain()
		}
	default:
		c.close()
	}
}

// drain closes every idle connection.
func (pl *pool) drain() {
	for {
		select {
		case c := <-pl.idle:
			c.close()
		default:
			return
		}
	}
}

// sweep closes connections idle for longer than maxIdle.
func (pl *pool) sweep(now time.Time, maxIdle time.Duration) {
	for n := len(pl.idle); n > 0; n-- {
		select {
		case c := <-pl.idle:
			if now.Sub(c.idleSince) > maxIdle {
				c.close()
				continue
			}
			select {
			case pl.idle <- c:
			default:
				c.close()
			}
		default:
			return
		}
	}
}

// connectError is a failure to establish a connection: nothing of the
// request was sent, so another copy may be tried.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// dial opens a new connection to pl's server.
func (p *Proxy) dial(ctx context.Context, pl *pool) (*upstreamConn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	c, err := p.dialTCP(ctx, "tcp", pl.addr)
	if err != nil {
		return nil, &connectError{err}
	}
	raw := c
	if pl.tls {
		var cfg *tls.Config
		if p.cfg.UpstreamTLS != nil {
			cfg = p.cfg.UpstreamTLS.Clone()
		} else {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = pl.serverName
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, &connectError{err}
		}
		c = tc
	}
	uc := &upstreamConn{conn: c, raw: raw}
	var rw io.ReadWriter = c
	if !pl.tls {
		uc.hw = newHeldWriteConn(c)
		rw = uc.hw
	}
	uc.br, uc.bw = bufio.NewReaderSize(rw, 8<<10), bufio.NewWriterSize(rw, 8<<10)
	pl.track(uc)
	return uc, nil
}
