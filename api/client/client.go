// Package client is the Go client of slum's fleet HTTP API (package api).
// Client has the typed operations of store.Store, with the same
// arguments, results and errors: an error from the API is one errors.Is
// finds desired.ErrNotFound, desired.ErrInvalid and the rest in, so code
// written for a local fleet works unchanged against a remote one. Its
// watch follows the fleet as it changes; FollowRoutes keeps a router's
// route table current from another machine.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/desired"
)

// HiddenToken stands in for the token of a server read from the API, which
// never shows tokens: Server.HasToken reports whether there is one. It is
// not a valid token, so it can never be stored by mistake.
const HiddenToken = "(hidden by the API)"

// Options tune a Client.
type Options struct {
	// RootCAs verify the API's TLS certificate; nil: the system's.
	RootCAs *x509.CertPool
	// InsecureNoTLS allows a plain http:// API beyond loopback, where the
	// token would travel unencrypted.
	InsecureNoTLS bool
	// Timeout bounds one request (not a watch). Default: one minute.
	Timeout time.Duration
	// Transport replaces the HTTP transport (RootCAs is then ignored).
	Transport http.RoundTripper
	// UserAgent names the program, in the API's logs.
	UserAgent string
}

// Client calls one fleet's API with one token.
type Client struct {
	base      *url.URL
	token     string
	hc        *http.Client // requests, with a timeout
	stream    *http.Client // watches, without one
	userAgent string
}

// New makes a client of the API at baseURL (https://host:port) that
// authenticates with token.
func New(baseURL, token string, opt Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, &slum.FieldError{Field: "API URL", Value: desired.RedactURL(baseURL), Reason: "must be https://host:port (or http:// on loopback), with nothing after the port"}
	}
	if u.Scheme == "http" && !opt.InsecureNoTLS && !loopbackHost(u.Hostname()) {
		return nil, &slum.FieldError{Field: "API URL", Value: baseURL, Reason: "is plain http:// beyond loopback, which would send the token unencrypted: use https://"}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, &slum.FieldError{Field: "API token", NoValue: true, Reason: "is empty"}
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return nil, &slum.FieldError{Field: "API token", Value: "(hidden)", Reason: "must be printable ASCII without spaces"}
	}
	u.Path = ""
	tr := opt.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: opt.RootCAs, MinVersion: tls.VersionTLS12}
		t.ResponseHeaderTimeout = time.Minute
		tr = t
	}
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ua := opt.UserAgent
	if ua == "" {
		ua = "slum-client"
	}
	// Redirects would carry the token elsewhere: none are followed.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: u, token: token, userAgent: ua,
		hc:     &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: noRedirect},
		stream: &http.Client{Transport: tr, CheckRedirect: noRedirect}}, nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// URL is the API's base URL.
func (c *Client) URL() string { return c.base.String() }

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Error is an error the API answered with. errors.Is finds in it the
// sentinel of its kind: desired.ErrInvalid, ErrNotFound, ErrAlreadyExists,
// ErrConflict, ErrHasActiveTenants, ErrNoCapacity, or wire.ErrUnauthorized,
// ErrForbidden, ErrRateLimited, ErrUnavailable.
type Error struct {
	Status  int
	Kind    wire.ErrorKind
	Message string // as the CLI prints the error locally
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	s := e.Kind.Sentinel()
	return s != nil && target == s
}

// Error is an error whose kind errors.Is sees.
var (
	_ error                       = (*Error)(nil)
	_ interface{ Is(error) bool } = (*Error)(nil)
)

// path builds an API path from fixed parts and ids: an id goes in as one
// escaped segment (see wire.PathSegment).
func path(parts ...any) string {
	var b strings.Builder
	b.WriteString(wire.Prefix)
	for _, p := range parts {
		b.WriteByte('/')
		switch v := p.(type) {
		case id:
			b.WriteString(url.PathEscape(wire.PathSegment(string(v))))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case string:
			b.WriteString(v)
		}
	}
	return b.String()
}

// id marks a path part as an id the user gave.
type id string

// do sends one request and decodes the answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, p string, query url.Values, body, out any) error {
	err := c.call(ctx, method, p, query, body, out)
	var te transportError
	if errors.As(err, &te) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("fleet API %s: %w", c.base, te.err)
	}
	return err
}

// transportError: the request did not get an answer, or not one that
// could be read.
type transportError struct{ err error }

func (e transportError) Error() string { return e.err.Error() }

func (c *Client) call(ctx context.Context, method, p string, query url.Values, body, out any) (err error) {
	u := *c.base
	u.RawPath = p // escaped by path; Path is what it means
	if u.Path, err = url.PathUnescape(p); err != nil {
		return err
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError{unwrapURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return transportError{fmt.Errorf("read the answer to %s %s: %w", method, p, err)}
	}
	return nil
}

// unwrapURLError drops the URL from an *url.Error (the caller says which
// API it called).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxErrorBody bounds what is read of an error response.
const maxErrorBody = 64 << 20

// decodeError reads an error response: the API's error body, or for an
// answer without one (from a proxy in between), its status.
func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body wire.Error
	if err := json.Unmarshal(data, &body); err != nil || body.Error.Kind == "" {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Kind: wire.KindForStatus(resp.StatusCode),
			Message: fmt.Sprintf("the fleet API answered %d: %s", resp.StatusCode, strings.Join(strings.Fields(msg), " "))}
	}
	if body.Error.Kind == wire.KindMassPrune && body.Error.MassPrune != nil {
		return &massPrune{err: body.Error.MassPrune, plan: body.Error.Plan}
	}
	return &Error{Status: resp.StatusCode, Kind: body.Error.Kind, Message: body.Error.Message}
}

// massPrune carries a refused prune and its plan from decodeError to
// Apply, which returns them as store.Store.Apply does.
type massPrune struct {
	err  *slum.MassPruneError
	plan *slum.ChangeSet
}

func (m *massPrune) Error() string { return m.err.Error() }
func (m *massPrune) Unwrap() error { return m.err }

var _ slum.Fleet = (*Client)(nil)
