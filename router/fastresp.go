package router

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/slum-fleet/slum/http1"
)

// fastResponse reads the common upstream answer itself: an HTTP/1.1
// status line, a Content-Length, no Transfer-Encoding, a status with a
// body, its whole head already buffered. The head becomes one string
// (its fields are slices of it) and the Response, header map and body
// reader are the connection's own, reused: the exchange owns the
// connection until it is done with the response. Anything else is left
// to http.ReadResponse (false), which reads the same bytes.
func (c *upstreamConn) fastResponse(method string) (*http.Response, bool) {
	if method == http.MethodHead {
		return nil, false
	}
	b, _ := c.br.Peek(c.br.Buffered())
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	head := string(b[:end+2])
	line, rest, _ := strings.Cut(head, "\r\n")
	code, ok := parseStatusLine(line)
	if !ok {
		return nil, false
	}
	if c.hdr == nil {
		c.hdr = make(http.Header, 8)
	}
	clear(c.hdr)
	c.vals = c.vals[:0]
	length, closeAfter := int64(-1), false
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		k, v, ok := parseField(line)
		if !ok {
			return nil, false
		}
		switch k {
		case "Transfer-Encoding", "Trailer":
			return nil, false
		case "Content-Length":
			n, ok := http1.ParseLength(v)
			if !ok || length >= 0 {
				return nil, false
			}
			length = n
		case "Connection":
			var rh reqHead
			if !connectionTokens(v, &rh) {
				return nil, false
			}
			closeAfter = closeAfter || rh.close
		}
		c.vals = append(c.vals, v)
		if old, ok := c.hdr[k]; ok {
			c.hdr[k] = append(old, v)
		} else {
			c.hdr[k] = c.vals[len(c.vals)-1 : len(c.vals) : len(c.vals)]
		}
	}
	if length < 0 {
		return nil, false
	}
	if closeAfter {
		delete(c.hdr, "Connection") // as http.ReadResponse does
	}
	c.br.Discard(end + 4)
	c.body = fastBody{r: c.br, left: length}
	c.resp = http.Response{StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: c.hdr,
		ContentLength: length, Body: &c.body, Close: closeAfter}
	return &c.resp, true
}

// parseStatusLine takes "HTTP/1.1 NNN reason" for a status with a body.
func parseStatusLine(line string) (int, bool) {
	code, ok := http1.ParseStatusLine(line)
	if !ok || code == http.StatusNoContent || code == http.StatusNotModified {
		return 0, false
	}
	return code, true
}
