package observed

import (
	"context"
	"io"
	"net/url"
)

// livenessOnly is an instance id no instance has: not a DNS label.
const livenessOnly = "."

// Stream holds tenement's log stream (GET /api/logs/stream, server-sent
// events) open until ctx ends or the connection does, and returns why it
// ended. Nothing it carries is read: the open connection itself is the
// signal. A tenement process that dies closes it at once, well before a
// probe could time out. It costs one authentication per connection. It
// asks for the lines of an id no instance has, so the server sends only
// its keepalives, not every line its instances print.
func (c *Client) Stream(ctx context.Context) error {
	resp, err := c.openStream(ctx, "stream", url.Values{"id": {livenessOnly}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil {
		err = io.EOF
	}
	return &Error{Op: "stream", Server: c.base, Class: ErrUnavailable, Message: "the log stream ended: " + transportMessage(err)}
}
