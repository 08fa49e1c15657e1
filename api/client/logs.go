package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/logs"
)

// logsPath is the API's path of a tenant's log lines (wire.LogsPath).
func logsPath(tenant string) string { return path("tenants", id(tenant), "logs") }

// logStreamIdle is how long a silent log stream is trusted; the API sends
// a keepalive every 15 s.
const logStreamIdle = 45 * time.Second

// Logs reads a tenant's log lines through the API, as logs.Read reads
// them on a fleet database, and hands them to out the same way: the API
// reads the servers with their tokens, which never leave it. Following,
// it returns when ctx ends, the tenant is removed, or the API ends the
// stream (the token revoked, the API stopping).
func (c *Client) Logs(ctx context.Context, q logs.Query, out logs.Output) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if !q.Follow {
		var res logs.Result
		if err := c.do(ctx, http.MethodGet, logsPath(q.Tenant), q.Values(), nil, &res); err != nil {
			return err
		}
		return res.Write(out)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var err error
	errIdle := fmt.Errorf("the log stream was silent for %s", logStreamIdle)
	watchdog := time.AfterFunc(logStreamIdle, func() { cancel(errIdle) })
	defer watchdog.Stop()
	u := *c.base
	u.RawPath = logsPath(q.Tenant)
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return err
	}
	u.RawQuery = q.Values().Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.stream.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("fleet API %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	if out.Started != nil {
		if err := out.Started(); err != nil {
			return err
		}
	}
	err = readEvents(resp.Body, func(ev sseEvent) error {
		watchdog.Reset(logStreamIdle)
		return logEvent(ev, out)
	})
	var ended *streamEnded
	switch cause := context.Cause(ctx); {
	case errors.Is(err, errLogsDone):
		return nil
	case errors.As(err, &ended):
		return ended.err
	case errors.Is(cause, errIdle):
		return cause
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, io.EOF):
		return errors.New("the API ended the log stream (its token revoked, or the API stopping)")
	}
	return err
}

// errLogsDone: the API said nothing is left to follow.
var errLogsDone = errors.New("nothing more to follow")

// streamEnded carries the error the API ended a log stream with.
type streamEnded struct{ err error }

func (e *streamEnded) Error() string { return e.err.Error() }

// logEvent hands one event of the stream to out.
func logEvent(ev sseEvent, out logs.Output) error {
	switch ev.name {
	case wire.LogEventLine:
		var l logs.Line
		if err := json.Unmarshal(ev.data, &l); err != nil {
			return fmt.Errorf("log stream: a line that is not valid: %w", err)
		}
		return out.Line(l)
	case wire.LogEventNotice:
		var n logs.Notice
		if err := json.Unmarshal(ev.data, &n); err != nil {
			return fmt.Errorf("log stream: a notice that is not valid: %w", err)
		}
		return out.Notice(n)
	case wire.LogEventEnd:
		return errLogsDone
	case wire.LogEventError:
		var body wire.Error
		if err := json.Unmarshal(ev.data, &body); err != nil || body.Error.Kind == "" {
			return &streamEnded{errors.New("the API ended the log stream with an error it did not say")}
		}
		return &streamEnded{&Error{Status: body.Error.Kind.Status(), Kind: body.Error.Kind, Message: body.Error.Message}}
	}
	return nil // a keepalive, or a newer API's event
}
