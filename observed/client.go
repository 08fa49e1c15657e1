// Package observed reads and changes the real state of tenement servers.
// Client speaks tenement's HTTP API as it really is (see
// ../shared/tenement-api.md) and classifies every failure as worth retrying
// later or permanent. Package observed/sim holds a simulator of the same API.
package observed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed/keepalive"
)

// Instance is one entry of a tenement server's instance list.
type Instance struct {
	Name              string `json:"id"` // process:id
	Socket            string `json:"socket"`
	UptimeSecs        uint64 `json:"uptime_secs"`
	IdleSecs          uint64 `json:"idle_secs"`
	Restarts          uint32 `json:"restarts"`
	Health            string `json:"health"`
	StorageUsedBytes  uint64 `json:"storage_used_bytes"`
	StorageQuotaBytes *int64 `json:"storage_quota_bytes"`
	Weight            int    `json:"weight"`
}

// listResult decodes with decodeList.
type listResult []Instance

func (l *listResult) decode(data []byte) error {
	out, err := decodeList(data)
	*l = out
	return err
}

// rawDecoder is a response type that reads the body itself, skipping
// encoding/json's validation pass. It must not keep the slice, whose
// buffer is reused.
type rawDecoder interface{ decode([]byte) error }

// namesResult decodes with decodeNames.
type namesResult struct {
	prev    map[string]slum.InstanceHealth
	names   map[string]slum.InstanceHealth
	changed bool
}

func (n *namesResult) decode(data []byte) (err error) {
	n.names, n.changed, err = decodeNames(data, n.prev)
	return err
}

// BufferPool holds buffers for reading answers. Its zero value is not
// usable; make one with NewBufferPool. A nil *BufferPool hands out a new
// buffer every time.
//
// Lists and short answers (spawns, stops) draw from pools of their own.
// In one pool, the spawns in flight (64 at once while converging) took
// the buffers lists had grown to a whole server's list and handed them
// on, so the pool held a list-sized buffer for nearly every call in
// flight: ~22 MB of a converging 100,000-instance controller's heap, for
// lists of which one or two are read at a time.
type BufferPool struct{ short, lists sync.Pool }

// NewBufferPool returns an empty pool.
func NewBufferPool() *BufferPool {
	bp := &BufferPool{}
	bp.short.New = func() any { return new(bytes.Buffer) }
	bp.lists.New = func() any { return new(bytes.Buffer) }
	return bp
}

// maxPooled: larger buffers (a list of many thousands) are let go rather
// than kept for answers that rarely need them.
const maxPooled = 4 << 20

// longAnswer divides the pools: get hands a buffer from the lists' pool
// for an answer expected this long or longer, and a buffer this large,
// whatever answer grew it, goes back to the lists' pool.
const longAnswer = 32 << 10

// get hands out a buffer for an answer of about want bytes (0: short).
func (bp *BufferPool) get(want int) *bytes.Buffer {
	if bp == nil {
		return new(bytes.Buffer)
	}
	p := &bp.short
	if want >= longAnswer {
		p = &bp.lists
	}
	b := p.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func (bp *BufferPool) put(b *bytes.Buffer) {
	switch {
	case bp == nil || b.Cap() > maxPooled:
	case b.Cap() >= longAnswer:
		bp.lists.Put(b)
	default:
		bp.short.Put(b)
	}
}

// SpawnResult is tenement's answer to a spawn or restart.
type SpawnResult struct {
	Instance string `json:"instance"`
	Socket   string `json:"socket"`
	Port     *int   `json:"port"`
}

// Error classes. Every error a Client returns wraps exactly one, and
// permanent ones also wrap ErrPermanent.
var (
	// ErrPermanent errors will fail the same way until something changes
	// (the token, the desired state, the server's configuration).
	ErrPermanent = errors.New("permanent")
	// ErrUnauthorized: the server rejected the token (401) or the token
	// lacks admin rights (403). Never retried automatically: tenement
	// locks every client out after 10 bad tokens.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnknownProcess: the server's tenement.toml has no such service.
	ErrUnknownProcess = errors.New("unknown process")
	// ErrRateLimited: the server answered 429; wait RetryAfter.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: network failure, timeout or 5xx; retry later.
	ErrUnavailable = errors.New("unavailable")
	// ErrMalformed: the server's answer could not be understood.
	ErrMalformed = errors.New("malformed response")
	// ErrBadRequest: a request the client refused to send (bad process or
	// id) or the server refused as malformed (400).
	ErrBadRequest = errors.New("bad request")
	// ErrNoInstance: the server runs no such instance (a storage query).
	ErrNoInstance = errors.New("no such instance")
)

// Error is a failed call to a tenement server.
type Error struct {
	Op         string // list, spawn, stop, restart, health, logs, log stream, telemetry, storage
	Server     string // the server's base URL
	Status     int    // HTTP status, 0 when none was received
	Message    string // tenement's error text, or the transport error
	Class      error  // one of the Err* classes
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s: %s", e.Op, e.Server, e.Class)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap lets errors.Is see the class and, for permanent classes,
// ErrPermanent.
func (e *Error) Unwrap() []error {
	if IsPermanentClass(e.Class) {
		return []error{e.Class, ErrPermanent}
	}
	return []error{e.Class}
}

// IsPermanentClass reports whether errors of a class are permanent.
func IsPermanentClass(class error) bool {
	return class == ErrUnauthorized || class == ErrUnknownProcess || class == ErrBadRequest
}

// IsPermanent reports whether err will not go away by retrying.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfter is how long err asks the caller to wait, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// LockoutWait is how long tenement refuses every authenticated request
// after 10 failed authentications.
const LockoutWait = 5 * time.Second

// DefaultTimeout bounds one call.
const DefaultTimeout = 10 * time.Second

// Client calls one tenement server. It is safe for concurrent use. After the
// server rejects its token it refuses to send anything more until the
// token is replaced (a new Client): retrying a bad token would lock every
// client of that server out.
type Client struct {
	base  string
	token string
	http  *http.Client    // streams, TLS, and every call when conns is nil
	conns *keepalive.Pool // short calls over plain HTTP
	// what sendKept sends: the server's host:port, its URL's host and
	// path, the token's header line alone and with the JSON body's
	hostPort, host, prefix     string
	authHeader, authJSONHeader []byte
	timeout                    time.Duration
	now                        func() time.Time
	bufs                       *BufferPool // nil: a new buffer per answer
	// listed is the size of the last list answer: the next list's buffer
	// is made about that size at once, not grown to it by doubling from
	// a pooled buffer the collector emptied (~80 MB of a 100,000-instance
	// converge went to growing list buffers).
	listed atomic.Int64

	mu          sync.Mutex
	authErr     *Error
	lockedUntil time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient shares one http.Client (and its connection pool) among
// Clients.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithConnPool sends short calls over plain HTTP on connections of pool,
// shared among Clients, instead of through net/http (which still carries
// streams, TLS and a base URL with credentials or a query). Without
// WithConnPool or WithHTTPClient a Client keeps a pool of its own.
func WithConnPool(pool *keepalive.Pool) Option { return func(c *Client) { c.conns = pool } }

// WithBufferPool reads answers into buffers from pool, shared among
// Clients: a controller lists every server every few seconds, and lists
// of a large fleet are hundreds of kilobytes each.
func WithBufferPool(pool *BufferPool) Option { return func(c *Client) { c.bufs = pool } }

// WithTimeout sets the per-call timeout.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// NewTransport is an http.Transport tuned for polling many servers: short
// dial timeout, kept-alive connections.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: DefaultTimeout,
		ForceAttemptHTTP2:     false,
	}
}

// NewClient returns a client for the tenement server at baseURL.
func NewClient(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tenement client: %w: url %q must be http[s]://host[:port]", ErrBadRequest, baseURL)
	}
	c := &Client{base: strings.TrimSuffix(baseURL, "/"), token: token, timeout: DefaultTimeout, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: NewTransport()}
		if c.conns == nil {
			c.conns = keepalive.NewPool()
		}
	}
	if c.conns != nil && !c.keepable(u) {
		c.conns = nil
	}
	return c, nil
}

// keepable reports whether calls to u can go on kept connections, setting
// what they send: plain HTTP to a URL without credentials, query or
// fragment (net/http turns those into headers or refuses them), with a
// token that is a valid header value (net/http refuses any other, and so
// does every call of a Client that has one).
func (c *Client) keepable(u *url.URL) bool {
	if u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	for i := range len(c.token) {
		if b := c.token[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	c.hostPort, c.host = u.Host, u.Host
	if u.Port() == "" {
		c.hostPort = net.JoinHostPort(u.Hostname(), "80")
	}
	c.prefix = strings.TrimSuffix(u.EscapedPath(), "/")
	c.authHeader = []byte("Authorization: Bearer " + c.token + "\r\n")
	c.authJSONHeader = append(append([]byte(nil), jsonHeader...), c.authHeader...)
	return true
}

// URL is the server's base URL.
func (c *Client) URL() string { return c.base }

// checkName refuses a process or id that is not a DNS label before it
// reaches a server, which uses it as a path.
func (c *Client) checkName(op, process, id string) error {
	if !names.IsLabel(process) || !names.IsLabel(id) {
		return &Error{Op: op, Server: c.base, Class: ErrBadRequest,
			Message: fmt.Sprintf("refusing to send process %q id %q: each must be a DNS label", process, id)}
	}
	return nil
}

// Ping checks the unauthenticated /health endpoint.
func (c *Client) Ping(ctx context.Context) error {
	var out struct {
		Status string `json:"status"`
	}
	return c.do(ctx, "health", http.MethodGet, "/health", nil, false, &out)
}

// List returns every instance the server runs: one call, whatever their
// number.
func (c *Client) List(ctx context.Context) ([]Instance, error) {
	var out listResult
	if err := c.do(ctx, "list", http.MethodGet, "/api/instances", nil, true, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListNames lists the server's instances as what a watcher keeps of them:
// tenement name → tenement's health word. When the list holds exactly
// what prev holds it returns prev itself and changed false, allocating
// nothing, which is what a steady fleet's lists do. prev is only read.
func (c *Client) ListNames(ctx context.Context, prev map[string]slum.InstanceHealth) (m map[string]slum.InstanceHealth, changed bool, err error) {
	out := namesResult{prev: prev}
	if err := c.do(ctx, "list", http.MethodGet, "/api/instances", nil, true, &out); err != nil {
		return nil, false, err
	}
	return out.names, out.changed, nil
}

// Spawn starts process:id. Spawning a running instance is a no-op.
func (c *Client) Spawn(ctx context.Context, process, id string) (SpawnResult, error) {
	var out SpawnResult
	if err := c.checkName("spawn", process, id); err != nil {
		return out, err
	}
	// Both are DNS labels (checked above): nothing to escape.
	body := []byte(`{"process":"` + process + `","id":"` + id + `"}`)
	err := c.do(ctx, "spawn", http.MethodPost, "/api/instances/spawn", body, true, &out)
	return out, err
}

// Stop stops process:id. Stopping an absent instance succeeds: it is
// already stopped.
func (c *Client) Stop(ctx context.Context, process, id string) error {
	if err := c.checkName("stop", process, id); err != nil {
		return err
	}
	err := c.do(ctx, "stop", http.MethodDelete, "/api/instances/"+process+":"+id, nil, true, nil)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// Health returns tenement's health word for process:id.
func (c *Client) Health(ctx context.Context, process, id string) (string, error) {
	var out struct {
		Health string `json:"health"`
	}
	if err := c.checkName("health", process, id); err != nil {
		return "", err
	}
	err := c.do(ctx, "health", http.MethodGet, "/api/instances/"+process+":"+id+"/health", nil, true, &out)
	return out.Health, err
}

// maxBody bounds what is read of an answer.
const maxBody = 64 << 20

func (c *Client) do(ctx context.Context, op, method, path string, body []byte, auth bool, out any) error {
	return c.doWithin(ctx, c.timeout, op, method, path, body, auth, out)
}

// doWithin is do with a timeout of its own.
func (c *Client) doWithin(ctx context.Context, timeout time.Duration, op, method, path string, body []byte, auth bool, out any) error {
	if auth {
		if err := c.refuseLocally(op); err != nil {
			return err
		}
	}
	want := 0
	if op == "list" {
		// The slack covers a list grown a little and the room for the
		// read that finds its end.
		n := c.listed.Load()
		want = int(min(n+n/8+bytes.MinRead, maxBody))
	}
	buf := c.bufs.get(want)
	defer c.bufs.put(buf)
	buf.Grow(want)
	var status int
	var err error
	if c.conns != nil {
		status, err = c.sendKept(ctx, time.Now().Add(timeout), op, method, path, body, auth, buf)
	} else {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		status, err = c.sendHTTP(ctx, op, method, path, body, auth, buf)
		cancel()
	}
	if err != nil {
		return err
	}
	if op == "list" {
		c.listed.Store(int64(buf.Len()))
	}
	return c.answer(op, status, buf.Bytes(), out)
}

// sendHTTP sends a call through net/http, reading the answer into buf.
func (c *Client) sendHTTP(ctx context.Context, op, method, path string, body []byte, auth bool, buf *bytes.Buffer) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, &Error{Op: op, Server: c.base, Class: ErrBadRequest, Message: err.Error()}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, &Error{Op: op, Server: c.base, Class: ErrUnavailable, Message: transportMessage(err)}
	}
	defer resp.Body.Close()
	if _, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody)); err != nil {
		return 0, &Error{Op: op, Server: c.base, Status: resp.StatusCode, Class: ErrUnavailable, Message: "reading the answer: " + transportMessage(err)}
	}
	return resp.StatusCode, nil
}

// sendKept sends a call on a connection of c.conns, reading the answer
// into buf; the call ends at deadline or with ctx.
func (c *Client) sendKept(ctx context.Context, deadline time.Time, op, method, path string, body []byte, auth bool, buf *bytes.Buffer) (int, error) {
	var hdr []byte
	switch {
	case auth && body != nil:
		hdr = c.authJSONHeader
	case auth:
		hdr = c.authHeader
	case body != nil:
		hdr = jsonHeader
	}
	req := keepalive.Request{Method: method, Addr: c.hostPort, Host: c.host, Path: c.prefix + path, Header: hdr, Body: body, Deadline: deadline,
		Idempotent: op != "restart"} // a spawn of a running instance and a stop of a stopped one change nothing
	status, err := c.conns.Do(ctx, &req, buf, maxBody)
	switch {
	case errors.Is(err, keepalive.ErrMalformed), errors.Is(err, keepalive.ErrTooLarge):
		return 0, &Error{Op: op, Server: c.base, Status: status, Class: ErrMalformed, Message: err.Error()}
	case err != nil:
		return 0, &Error{Op: op, Server: c.base, Class: ErrUnavailable, Message: transportMessage(err)}
	}
	return status, nil
}

var jsonHeader = []byte("Content-Type: application/json\r\n")

// answer classifies a server's answer and decodes a successful one into
// out.
func (c *Client) answer(op string, status int, data []byte, out any) error {
	if status >= 200 && status < 300 {
		if out == nil || status == http.StatusNoContent {
			return nil
		}
		var err error
		if d, ok := out.(rawDecoder); ok {
			err = d.decode(data)
		} else {
			err = json.Unmarshal(data, out)
		}
		if err != nil {
			return &Error{Op: op, Server: c.base, Status: status, Class: ErrMalformed, Message: err.Error()}
		}
		return nil
	}
	e := &Error{Op: op, Server: c.base, Status: status, Message: errorText(data)}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Class = ErrUnauthorized
		if e.Message == "" {
			e.Message = "the server rejected slum's token; set the server's admin token with 'slum server update --token-file'"
		}
		c.mu.Lock()
		c.authErr = e
		c.mu.Unlock()
	case status == http.StatusTooManyRequests:
		e.Class, e.RetryAfter = ErrRateLimited, LockoutWait
		if e.Message == "" {
			e.Message = "the server is refusing authenticated requests after repeated bad tokens"
		}
		c.mu.Lock()
		c.lockedUntil = c.now().Add(LockoutWait)
		c.mu.Unlock()
	case (op == "spawn" || op == "restart") && status == http.StatusInternalServerError && strings.HasPrefix(e.Message, "Unknown process"):
		e.Class = ErrUnknownProcess
	case status == http.StatusBadRequest:
		e.Class = ErrBadRequest
	case status == http.StatusNotFound && op == "storage":
		e.Class = ErrNoInstance
	case status == http.StatusNotFound:
		e.Class = ErrBadRequest
		if op == "list" {
			e.Class = ErrMalformed
		}
	default:
		e.Class = ErrUnavailable
	}
	return e
}

// refuseLocally answers without sending when the server has rejected this
// client's token, or is locking clients out.
func (c *Client) refuseLocally(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authErr != nil {
		e := *c.authErr
		e.Op = op
		e.Message = "not sent: the server rejected this token before; " + strings.TrimPrefix(e.Message, "not sent: the server rejected this token before; ")
		return &e
	}
	if wait := c.lockedUntil.Sub(c.now()); wait > 0 {
		return &Error{Op: op, Server: c.base, Class: ErrRateLimited, RetryAfter: wait,
			Message: "not sent: the server is locking out authenticated requests"}
	}
	return nil
}

func errorText(data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}
