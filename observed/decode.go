package observed

import (
	"encoding/json"
	"errors"
	"strconv"
)

// decodeList decodes tenement's instance list. The list is polled from every
// server on every pass, so the common shape (an array of flat objects of
// strings, numbers and nulls) is read by a small scanner; anything else
// (escapes, nesting, odd whitespace) falls back to encoding/json, whose
// result the scanner must equal (FuzzDecodeList holds it to that).
func decodeList(data []byte) ([]Instance, error) {
	if out, ok := scanList(data); ok {
		return out, nil
	}
	var out []Instance
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}

var errSlow = errors.New("take the slow path")

// scanner reads a copy of the body as a string, so that every field it
// returns is a substring of it: one allocation per list, not three per
// instance.
type scanner struct {
	b string
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes.
func (s *scanner) str() (string, error) {
	if !s.eat('"') {
		return "", errSlow
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			v := s.b[start:s.i]
			s.i++
			return v, nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return "", errSlow
		}
		s.i++
	}
	return "", errSlow
}

// num reads a non-negative integer, or null (ok false).
func (s *scanner) num() (v uint64, null bool, err error) {
	s.ws()
	if s.i+4 <= len(s.b) && s.b[s.i:s.i+4] == "null" {
		s.i += 4
		return 0, true, nil
	}
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == start || s.i-start > 18 || (s.b[start] == '0' && s.i-start > 1) {
		return 0, false, errSlow
	}
	v, perr := strconv.ParseUint(s.b[start:s.i], 10, 64)
	if perr != nil {
		return 0, false, errSlow
	}
	return v, false, nil
}

func scanList(data []byte) ([]Instance, bool) {
	s := &scanner{b: string(data)}
	if !s.eat('[') {
		return nil, false
	}
	out := make([]Instance, 0, len(data)/200)
	if s.eat(']') {
		s.ws()
		return out, s.i == len(s.b)
	}
	for {
		in, err := s.instance()
		if err != nil {
			return nil, false
		}
		out = append(out, in)
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			break
		}
		return nil, false
	}
	s.ws()
	return out, s.i == len(s.b)
}

func (s *scanner) instance() (Instance, error) {
	var in Instance
	if !s.eat('{') {
		return in, errSlow
	}
	if s.eat('}') {
		return in, nil
	}
	seen := 0
	for {
		key, err := s.str()
		if err != nil || !s.eat(':') {
			return in, errSlow
		}
		var bit int
		switch key {
		case "id":
			bit = 1
			in.Name, err = s.str()
		case "socket":
			bit = 2
			in.Socket, err = s.str()
		case "health":
			bit = 4
			in.Health, err = s.str()
		case "uptime_secs", "idle_secs", "restarts", "storage_used_bytes", "storage_quota_bytes", "weight":
			bit = 8 << len(key) // distinct per key length; duplicates go slow
			var v uint64
			var null bool
			v, null, err = s.num()
			if err == nil {
				err = setNum(&in, key, v, null)
			}
		default:
			return in, errSlow // unknown fields: let encoding/json decide
		}
		if err != nil || seen&bit != 0 {
			return in, errSlow
		}
		seen |= bit
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return in, nil
		}
		return in, errSlow
	}
}

func setNum(in *Instance, key string, v uint64, null bool) error {
	if null && key != "storage_quota_bytes" {
		return nil // encoding/json leaves a null number at zero
	}
	switch key {
	case "uptime_secs":
		in.UptimeSecs = v
	case "idle_secs":
		in.IdleSecs = v
	case "restarts":
		if v > 1<<32-1 {
			return errSlow
		}
		in.Restarts = uint32(v)
	case "storage_used_bytes":
		in.StorageUsedBytes = v
	case "storage_quota_bytes":
		if null {
			in.StorageQuotaBytes = nil
			return nil
		}
		if v > 1<<63-1 {
			return errSlow
		}
		q := int64(v)
		in.StorageQuotaBytes = &q
	case "weight":
		if v > 1<<31-1 {
			return errSlow
		}
		in.Weight = int(v)
	}
	return nil
}
