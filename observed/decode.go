package observed

import (
	"encoding/json"
	"errors"
	"hash/maphash"
	"strconv"
	"strings"
	"unsafe"

	"github.com/slum-fleet/slum"
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
	// namesOnly: the caller keeps only names and health, so a storage
	// quota is checked but not allocated.
	namesOnly bool
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
			switch {
			case err != nil:
			case s.namesOnly && key == "storage_quota_bytes":
				if !null && v > 1<<63-1 {
					err = errSlow
				}
			default:
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

// decodeNames decodes a list as a watcher keeps it: tenement name →
// health word, with the same verdict on malformed input as decodeList.
// When the list holds exactly prev's entries it returns prev and changed
// false without allocating: the answer is read in place (its strings are
// only compared, never kept) and a new map, with its own copies of the
// names, is made only when something differs.
func decodeNames(data []byte, prev map[string]slum.InstanceHealth) (m map[string]slum.InstanceHealth, changed bool, err error) {
	if len(data) == 0 {
		_, err := decodeList(data)
		return nil, false, err
	}
	// A view of data, not a copy: it lives only for this call and data
	// is not written meanwhile. Nothing of it is kept.
	view := unsafe.String(unsafe.SliceData(data), len(data))
	// Every name in prev and as many entries as prev is prev only if no
	// name repeats (prev {a,b}, list [a,a] is not). Names listed in
	// increasing order cannot repeat. In any other order (tenement's, the
	// simulator's), a keyed digest of the names, summed, tells the same
	// set from one with a name repeated in place of another without a
	// map: a repeat is taken for prev only if its digests sum to the
	// missing names', odds of 2^-64 against a seed the server cannot
	// know.
	same, increasing, n, last, sum := true, true, 0, "", uint64(0)
	ok := scanEach(view, func(in Instance) {
		if h, found := prev[in.Name]; !found || string(h) != in.Health {
			same = false
		}
		if n > 0 && in.Name <= last {
			increasing = false
		}
		last = in.Name // a view of data, like in.Name: valid for this call
		sum += maphash.String(namesSeed, in.Name)
		n++
	})
	if ok && same && n == len(prev) && prev != nil && (increasing || sum == digestOf(prev)) {
		return prev, false, nil
	}
	if ok {
		m = make(map[string]slum.InstanceHealth, n)
		scanEach(view, func(in Instance) { m[strings.Clone(in.Name)] = internHealth(in.Health) })
		if same && len(m) == len(prev) && prev != nil {
			return prev, false, nil // every name of prev, each once or more, with its health
		}
		return m, true, nil
	}
	list, err := decodeList(data) // the slow path copies what it keeps
	if err != nil {
		return nil, false, err
	}
	m = make(map[string]slum.InstanceHealth, len(list))
	for _, in := range list {
		m[in.Name] = internHealth(in.Health)
	}
	return m, true, nil
}

// namesSeed keys the digests decodeNames sums.
var namesSeed = maphash.MakeSeed()

// digestOf sums the digests of a list's names.
func digestOf(m map[string]slum.InstanceHealth) uint64 {
	var sum uint64
	for name := range m {
		sum += maphash.String(namesSeed, name)
	}
	return sum
}

// scanEach runs the scanner over a list, handing each instance to visit
// (valid only during the call), and reports whether the whole list took
// the fast path. Nothing is allocated unless an instance carries a
// storage quota.
func scanEach(b string, visit func(Instance)) bool {
	s := &scanner{b: b, namesOnly: true}
	if !s.eat('[') {
		return false
	}
	if !s.eat(']') {
		for {
			in, err := s.instance()
			if err != nil {
				return false
			}
			visit(in)
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				break
			}
			return false
		}
	}
	s.ws()
	return s.i == len(s.b)
}

// internHealth shares the few words tenement uses.
func internHealth(h string) slum.InstanceHealth {
	for _, word := range slum.InstanceHealths {
		if h == string(word) {
			return word
		}
	}
	return slum.InstanceHealth(strings.Clone(h))
}

// decode reads a spawn's answer, one per instance a controller starts:
// the common flat object by the scanner, anything else (escapes, other or
// repeated keys) by encoding/json, whose result the scanner must equal
// (FuzzDecodeSpawn).
func (r *SpawnResult) decode(data []byte) error {
	if out, ok := scanSpawn(data); ok {
		*r = out
		return nil
	}
	*r = SpawnResult{}
	return json.Unmarshal(data, r)
}

func scanSpawn(data []byte) (SpawnResult, bool) {
	var out SpawnResult
	s := &scanner{b: string(data)}
	if !s.eat('{') {
		return out, false
	}
	if !s.eat('}') {
		seen := 0
		for {
			key, err := s.str()
			if err != nil || !s.eat(':') {
				return out, false
			}
			var bit int
			switch key {
			case "instance":
				bit = 1
				out.Instance, err = s.str()
			case "socket":
				bit = 2
				out.Socket, err = s.str()
			case "port":
				bit = 4
				var v uint64
				var null bool
				if v, null, err = s.num(); err == nil && !null {
					if v > 1<<31-1 {
						return out, false
					}
					port := int(v)
					out.Port = &port
				}
			default:
				return out, false
			}
			if err != nil || seen&bit != 0 {
				return out, false
			}
			seen |= bit
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return out, false
		}
	}
	s.ws()
	return out, s.i == len(s.b)
}
