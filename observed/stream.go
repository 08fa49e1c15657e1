package observed

import (
	"context"
	"io"
)

// Stream holds tenement's log stream (GET /api/logs/stream, server-sent
// events) open until ctx ends or the connection does, and returns why it
// ended. Nothing it carries is read: the open connection itself is the
// signal. A tenement process that dies closes it at once, well before a
// probe could time out. It costs one authentication per connection.
func (c *Client) Stream(ctx context.Context) error {
	resp, err := c.openStream(ctx, "stream", nil)
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
