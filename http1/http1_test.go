package http1

import (
	"strconv"
	"testing"
)

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		in                string
		token, fieldValue bool
		length            int64
		lengthOK          bool
		status            int
		statusOK          bool
		trimmed           string
	}{
		{in: "Content-Length", token: true, fieldValue: true, trimmed: "Content-Length"},
		{in: "x!#$%&'*+-.^_`|~9", token: true, fieldValue: true, trimmed: "x!#$%&'*+-.^_`|~9"},
		{in: "", fieldValue: true},
		{in: "a b", fieldValue: true, trimmed: "a b"},
		{in: " \tv \t", fieldValue: true, trimmed: "v"},
		{in: "a:b", fieldValue: true, trimmed: "a:b"},
		{in: "a\r\nb", trimmed: "a\r\nb"},
		{in: "\x7f", trimmed: "\x7f"},
		{in: "é", fieldValue: true, trimmed: "é"},
		{in: "0", token: true, fieldValue: true, length: 0, lengthOK: true, trimmed: "0"},
		{in: "123456789012345678", token: true, fieldValue: true, length: 123456789012345678, lengthOK: true, trimmed: "123456789012345678"},
		{in: "1234567890123456789", token: true, fieldValue: true, trimmed: "1234567890123456789"},
		{in: "+1", token: true, fieldValue: true, trimmed: "+1"},
		{in: "HTTP/1.1 200 OK", fieldValue: true, status: 200, statusOK: true, trimmed: "HTTP/1.1 200 OK"},
		{in: "HTTP/1.1 404", fieldValue: true, status: 404, statusOK: true, trimmed: "HTTP/1.1 404"},
		{in: "HTTP/1.1 599 \tx", fieldValue: true, status: 599, statusOK: true, trimmed: "HTTP/1.1 599 \tx"},
		{in: "HTTP/1.1 101 Switching Protocols", fieldValue: true, trimmed: "HTTP/1.1 101 Switching Protocols"},
		{in: "HTTP/1.0 200 OK", fieldValue: true, trimmed: "HTTP/1.0 200 OK"},
		{in: "HTTP/1.1 2000", token: false, fieldValue: true, trimmed: "HTTP/1.1 2000"},
		{in: "HTTP/1.1 20", fieldValue: true, trimmed: "HTTP/1.1 20"},
		{in: "HTTP/1.1 200 O\nK", trimmed: "HTTP/1.1 200 O\nK"},
	} {
		if got := IsToken(tc.in); got != tc.token {
			t.Errorf("IsToken(%q) = %v", tc.in, got)
		}
		if got := IsFieldValue(tc.in); got != tc.fieldValue {
			t.Errorf("IsFieldValue(%q) = %v", tc.in, got)
		}
		if n, ok := ParseLength(tc.in); n != tc.length || ok != tc.lengthOK {
			t.Errorf("ParseLength(%q) = %d, %v", tc.in, n, ok)
		}
		if code, ok := ParseStatusLine(tc.in); code != tc.status || ok != tc.statusOK {
			t.Errorf("ParseStatusLine(%q) = %d, %v", tc.in, code, ok)
		}
		if got := TrimBlanks(tc.in); got != tc.trimmed {
			t.Errorf("TrimBlanks(%q) = %q", tc.in, got)
		}
	}
	if !EqualFold([]byte("content-LENGTH"), "Content-Length") || EqualFold("Content-Lengt", "Content-Length") || EqualFold("Content-Lengtx", "Content-Length") {
		t.Error("EqualFold")
	}
}

// FuzzRules: a string and its bytes read alike, and a length is the
// number strconv reads from digits alone.
func FuzzRules(f *testing.F) {
	for _, s := range []string{"42", "HTTP/1.1 200 OK", " Keep-Alive ", "a\x00b", "999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		if IsToken(s) != IsToken(b) || IsFieldValue(s) != IsFieldValue(b) || string(TrimBlanks(b)) != TrimBlanks(s) ||
			EqualFold(b, s) != true || EqualFold(s, "close") != EqualFold(b, "close") {
			t.Fatalf("%q: the string and its bytes read differently", s)
		}
		n1, ok1 := ParseLength(s)
		n2, ok2 := ParseLength(b)
		c1, sok1 := ParseStatusLine(s)
		c2, sok2 := ParseStatusLine(b)
		if n1 != n2 || ok1 != ok2 || c1 != c2 || sok1 != sok2 {
			t.Fatalf("%q: the string and its bytes read differently", s)
		}
		if ok1 {
			want, err := strconv.ParseInt(s, 10, 64)
			if err != nil || want != n1 || s[0] == '+' || s[0] == '-' {
				t.Fatalf("ParseLength(%q) = %d; strconv: %d, %v", s, n1, want, err)
			}
		}
	})
}
