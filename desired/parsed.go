package desired

import (
	"slices"

	"github.com/slum-fleet/slum"
)

// A fleet file loaded and applied in one process ('slum apply' on a local
// database, a dry run before the apply) would be parsed once by Load and
// again by each Receive: at 100,000 instances parsing is most of an
// apply's time. Send therefore carries, in the FileSource it packs (in
// Parsed, which never crosses the API), the file as Parse returned it, and
// Receive starts from a copy of that when it is the parse of the very
// text and name received.
type sentParse struct {
	name, text string
	file       *File // as parsed: no tokens, no warnings
}

// recallParse returns a copy of what sf's text parses to when its sender
// carried that parse along, or nil.
func recallParse(sf slum.FileSource) *File {
	p, ok := sf.Parsed.(*sentParse)
	if !ok || p.name != sf.Name || p.text != sf.Text {
		return nil
	}
	f := p.file.clone()
	f.Text = []byte(sf.Text) // as Parse of the text would have it, not shared with the sender
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
