package keepalive

import (
	"bytes"

	"github.com/slum-fleet/slum/http1"
)

// head is what a call needs of an answer's head.
type head struct {
	status int
	length int64 // of the body
	close  bool  // the server ends the connection after this answer
	size   int   // bytes of the head, its blank line included
}

// parseHead reads the common answer head, whole in b: "HTTP/1.1 NNN …",
// header lines with one Content-Length (none for 204 and 304), no
// Transfer-Encoding. ok is false for anything else, which
// http.ReadResponse reads instead, answering or refusing it as net/http
// always does; so ok must never be true for a head it would read
// differently (FuzzParseHead holds it to that).
func parseHead(b []byte) (h head, ok bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return head{}, false
	}
	h.size = end + 4
	rest := b[:end+2]
	line, rest, _ := bytes.Cut(rest, []byte("\r\n"))
	if h.status, ok = http1.ParseStatusLine(line); !ok {
		return head{}, false
	}
	h.length = -1
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := parseField(line)
		if !ok {
			return head{}, false
		}
		switch {
		case http1.EqualFold(name, "Content-Length"):
			n, ok := http1.ParseLength(value)
			if !ok || h.length >= 0 {
				return head{}, false // several: http.ReadResponse decides
			}
			h.length = n
		case http1.EqualFold(name, "Transfer-Encoding"), http1.EqualFold(name, "Trailer"):
			return head{}, false
		case http1.EqualFold(name, "Connection"):
			switch {
			case http1.EqualFold(value, "close"):
				h.close = true
			case http1.EqualFold(value, "keep-alive"):
			default:
				return head{}, false // a list of tokens: let net/http read it
			}
		}
	}
	if h.status == 204 || h.status == 304 {
		if h.length > 0 {
			return head{}, false
		}
		h.length = 0
	}
	if h.length < 0 {
		return head{}, false // a body to the connection's end
	}
	return h, true
}

// parseField splits "Name: value", the name a token, the value without
// control bytes, its surrounding blanks trimmed.
func parseField(line []byte) (name, value []byte, ok bool) {
	name, value, ok = bytes.Cut(line, []byte(":"))
	if !ok || !http1.IsToken(name) || !http1.IsFieldValue(value) {
		return nil, nil, false // also a folded line, which starts with a blank
	}
	return name, http1.TrimBlanks(value), true
}
