package observed

import (
	"context"
	"io"
	"net/http"
)

// Stream holds tenement's log stream (GET /api/logs/stream, server-sent
// events) open until ctx ends or the connection does, and returns why it
// ended. Nothing it carries is read: the open connection itself is the
// signal. A tenement process that dies closes it at once, well before a
// probe could time out. It costs one authentication per connection.
func (c *Client) Stream(ctx context.Context) error {
	if err := c.refuseLocally("stream"); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/logs/stream", nil)
	if err != nil {
		return &Error{Op: "stream", Server: c.base, Class: ErrBadRequest, Message: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return &Error{Op: "stream", Server: c.base, Class: ErrUnavailable, Message: transportMessage(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &Error{Op: "stream", Server: c.base, Status: resp.StatusCode, Class: ErrUnavailable}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			e.Class = ErrUnauthorized
			c.mu.Lock()
			c.authErr = e
			c.mu.Unlock()
		}
		return e
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil {
		err = io.EOF
	}
	return &Error{Op: "stream", Server: c.base, Class: ErrUnavailable, Message: "the log stream ended: " + transportMessage(err)}
}
