// Package http1 is the HTTP/1.1 syntax (RFC 9112, RFC 9110) slum reads
// itself where net/http costs too much per message: the router's fast
// path and the tenement client's kept-alive connections. It holds the
// rules, not a reader: each caller decides what it takes and leaves the
// rest to net/http, and each is fuzzed against net/http's reading.
package http1

// text is a message's bytes, as a string or still in a buffer.
type text interface{ ~string | ~[]byte }

// IsToken reports whether s is a non-empty token (a field name, a
// method, a connection option).
func IsToken[T text](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := range len(s) {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// IsFieldValue reports whether v holds no control byte but tab: no line
// break can hide in it.
func IsFieldValue[T text](v T) bool {
	for i := range len(v) {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// TrimBlanks cuts the spaces and tabs around a field value.
func TrimBlanks[T text](v T) T {
	i, j := 0, len(v)
	for i < j && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	for j > i && (v[j-1] == ' ' || v[j-1] == '\t') {
		j--
	}
	return v[i:j]
}

// ParseLength reads a Content-Length: 1 to 18 digits, no sign, no
// blanks, so no overflow.
func ParseLength[T text](v T) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := range len(v) {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// ParseStatusLine reads "HTTP/1.1 NNN reason" (the reason may be absent)
// of a final status, 200 and over. An interim status, another version or
// a control byte in the reason is false.
func ParseStatusLine[T text](line T) (int, bool) {
	const prefix = "HTTP/1.1 "
	if len(line) < len(prefix)+3 || string(line[:len(prefix)]) != prefix {
		return 0, false
	}
	rest := line[len(prefix):]
	if len(rest) > 3 && rest[3] != ' ' {
		return 0, false
	}
	code := 0
	for i := range 3 {
		c := rest[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || !IsFieldValue(rest[3:]) {
		return 0, false
	}
	return code, true
}

// EqualFold reports whether b is the ASCII word s, ignoring case.
func EqualFold[T text](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(s) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
