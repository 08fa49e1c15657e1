package desired

import (
	"runtime"
	"slices"
	"sync"
	"unsafe"
	"weak"
)

// A fleet file loaded and applied in one process ('slum apply' on a local
// database, a dry run before the apply) would be parsed once by Load and
// again by each Receive: at 100,000 instances parsing is most of an
// apply's time. Send therefore remembers, for the text it packs, the file
// as Parse returned it, and Receive starts from a copy of that instead of
// parsing the same text again. Entries are keyed by the text's own
// allocation and live only as long as it does, so nothing is kept for a
// text no one holds, and a text Send did not pack (one sent over the API)
// is always parsed.
var sentParses struct {
	sync.Mutex
	m map[uintptr]sentParse
}

type sentParse struct {
	text weak.Pointer[byte] // tells a live text from a later one at the same address
	n    int
	file *File // as parsed: no tokens, no warnings
}

// rememberParse records that text parses to f, which no one else holds.
func rememberParse(text string, f *File) {
	if len(text) == 0 {
		return
	}
	p := unsafe.StringData(text)
	key := uintptr(unsafe.Pointer(p))
	sentParses.Lock()
	if sentParses.m == nil {
		sentParses.m = map[uintptr]sentParse{}
	}
	sentParses.m[key] = sentParse{text: weak.Make(p), n: len(text), file: f}
	sentParses.Unlock()
	runtime.AddCleanup(p, forgetParse, key)
}

func forgetParse(key uintptr) {
	sentParses.Lock()
	if e, ok := sentParses.m[key]; ok && e.text.Value() == nil {
		delete(sentParses.m, key)
	}
	sentParses.Unlock()
}

// recallParse returns a copy of what text parses to when Send packed this
// very text, or nil.
func recallParse(text string) *File {
	if len(text) == 0 {
		return nil
	}
	p := unsafe.StringData(text)
	sentParses.Lock()
	e, ok := sentParses.m[uintptr(unsafe.Pointer(p))]
	sentParses.Unlock()
	if !ok || e.n != len(text) || e.text.Value() != p {
		return nil
	}
	f := e.file.clone()
	f.Text = []byte(text) // as Parse of text would have it, not shared with the sender
	return f
}

// clone copies f deeply enough that changing the copy's servers, tenants,
// instances, settings or warnings leaves f as it was (strings and the
// settings' YAML node, which nothing changes, are shared).
func (f *File) clone() *File {
	c := *f
	c.parsed, c.parsedText = nil, ""
	c.Servers = slices.Clone(f.Servers)
	c.Tenants = slices.Clone(f.Tenants)
	all := make([]FileInstance, 0, f.instances()) // one allocation for every tenant's instances
	for i := range c.Tenants {
		if len(f.Tenants[i].Instances) == 0 {
			c.Tenants[i].Instances = f.Tenants[i].Instances[:0:0] // nil stays nil
			continue
		}
		start := len(all)
		all = append(all, f.Tenants[i].Instances...)
		c.Tenants[i].Instances = all[start:len(all):len(all)]
	}
	if f.Settings != nil {
		s := *f.Settings
		s.given = slices.Clone(s.given)
		c.Settings = &s
	}
	c.Warnings = slices.Clone(f.Warnings)
	return &c
}
