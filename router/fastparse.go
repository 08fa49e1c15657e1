package router

import (
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/slum-fleet/slum/http1"
)

// The fast path parses only plain HTTP/1.1 request heads it is sure of;
// anything else is errFallback and goes to net/http's server, which
// answers it (or refuses it) as it always did.
var (
	errFallback = errors.New("not for the fast path")
	errNeedMore = errors.New("the request head is not complete yet")
)

// reqHead is a parsed request head. Its strings are slices of one string
// holding the whole head: one allocation per request.
type reqHead struct {
	method, uri string
	host        string
	length      int64    // of the body; 0 without Content-Length
	close       bool     // Connection: close
	size        int      // bytes of the head, final CRLF included
	url         *url.URL // the target parsed, when it has escapes; nil: a plain path
}

// parseHead parses the request head at the start of b into h (cleared
// first), using vals for the header values' backing slices. It returns
// errNeedMore when b holds no complete head, errFallback for anything the
// fast path leaves to net/http: HTTP/1.0 or 2, a target that is not a
// path, Transfer-Encoding, Expect, Upgrade, duplicate Host or
// Content-Length, folded or malformed lines.
func parseHead(b []byte, h http.Header, vals []string) (reqHead, []string, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if bytes.Contains(b, []byte("\n\n")) {
			return reqHead{}, vals, errFallback // bare LF line ends
		}
		return reqHead{}, vals, errNeedMore
	}
	clear(h)
	vals = vals[:0]
	head := string(b[:end+2])
	rh := reqHead{size: end + 4}
	line, rest, _ := strings.Cut(head, "\r\n")
	if !parseRequestLine(line, &rh) {
		return reqHead{}, vals, errFallback
	}
	seenLength := false
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		k, v, ok := parseField(line)
		if !ok {
			return reqHead{}, vals, errFallback
		}
		switch k {
		case "Host":
			if rh.host != "" || v == "" {
				return reqHead{}, vals, errFallback
			}
			rh.host = v
			continue // net/http keeps it in Request.Host only
		case "Content-Length":
			n, ok := http1.ParseLength(v)
			if seenLength || !ok {
				return reqHead{}, vals, errFallback
			}
			seenLength, rh.length = true, n
		case "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return reqHead{}, vals, errFallback
		case "Connection":
			if !connectionTokens(v, &rh) {
				return reqHead{}, vals, errFallback
			}
		}
		vals = append(vals, v)
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
		} else {
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if rh.host == "" {
		return reqHead{}, vals, errFallback
	}
	return rh, vals, nil
}

// parseRequestLine takes "METHOD /path HTTP/1.1" and nothing else.
func parseRequestLine(line string, rh *reqHead) bool {
	m, rest, ok := strings.Cut(line, " ")
	if !ok || !http1.IsToken(m) || m == http.MethodConnect {
		return false
	}
	uri, proto, ok := strings.Cut(rest, " ")
	if !ok || proto != "HTTP/1.1" || uri == "" || uri[0] != '/' {
		return false
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	if strings.IndexByte(uri, '%') >= 0 {
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			return false // net/http answers 400
		}
		rh.url = u
	}
	rh.method, rh.uri = internMethod(m), uri
	return true
}

func internMethod(m string) string {
	switch m {
	case "GET":
		return http.MethodGet
	case "HEAD":
		return http.MethodHead
	case "POST":
		return http.MethodPost
	case "PUT":
		return http.MethodPut
	}
	return m
}

// parseField splits "Name: value", the name canonical (a copy only when
// it was not canonical already), the value without surrounding blanks.
func parseField(line string) (string, string, bool) {
	k, v, ok := strings.Cut(line, ":")
	if !ok || !http1.IsToken(k) || !http1.IsFieldValue(v) {
		return "", "", false // also a folded line, which starts with a blank
	}
	return textproto.CanonicalMIMEHeaderKey(k), http1.TrimBlanks(v), true
}

// connectionTokens notes Connection: close; an upgrade is not for the
// fast path.
func connectionTokens(v string, rh *reqHead) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		t = strings.TrimSpace(t)
		switch {
		case strings.EqualFold(t, "close"):
			rh.close = true
		case strings.EqualFold(t, "upgrade"):
			return false
		}
	}
	return true
}
