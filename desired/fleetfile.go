package desired

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired/quickyaml"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds what a fleet file may hold.
const MaxFileSize = 256 << 20

// LoadFile reads and parses a fleet file, then resolves its tokens:
// token_env from the environment, token_file relative to the fleet file.
func LoadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read fleet file: %w", err)
	}
	defer f.Close()
	return Load(path, f, filepath.Dir(path), os.LookupEnv)
}

// Load parses the fleet file r (called name in messages) and resolves its
// tokens: token_env through lookupEnv, a relative token_file from dir.
func Load(name string, r io.Reader, dir string, lookupEnv func(string) (string, bool)) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read fleet file %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, &slum.FieldError{Where: name, Reason: fmt.Sprintf("the file is larger than %d bytes", MaxFileSize)}
	}
	f, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	if !f.versioned {
		return nil, &slum.FieldError{Where: name + ":1", Field: "version", NoValue: true,
			Reason: "is missing: a fleet file starts with version: 1"}
	}
	f.parsed, f.parsedText = f.clone(), string(data)
	if err := f.ResolveTokens(lookupEnv, dir); err != nil {
		return nil, err
	}
	return f, nil
}

// ResolveTokens fills in each server's token from its token_env or
// token_file. A variable that is not set, a file that cannot be read and
// an empty token are errors naming the server; a token file that others
// may read is a warning (f.Warnings).
func (f *File) ResolveTokens(lookupEnv func(string) (string, bool), dir string) error {
	for i := range f.Servers {
		s := &f.Servers[i]
		line := s.tokenLine
		if line == 0 {
			line = s.Line
		}
		where := fmt.Sprintf("%s:%d", f.Name, line)
		at := fmt.Sprintf("servers[%d]", i)
		var source string
		switch {
		case s.TokenEnv != "":
			v, ok := lookupEnv(s.TokenEnv)
			if !ok {
				return &slum.FieldError{Where: where, Field: at + ".token_env", Value: s.TokenEnv,
					Reason: fmt.Sprintf("environment variable is not set: export %s=<the admin token of server %s> (tenement: ten --data-dir DIR token-gen), or give token_file", s.TokenEnv, s.ID)}
			}
			s.Token, source = strings.TrimSpace(v), "environment variable "+s.TokenEnv
		case s.TokenFile != "":
			p := s.TokenFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return &slum.FieldError{Where: where, Field: at + ".token_file", Value: s.TokenFile, Reason: "cannot be read: " + pathErrorCause(err)}
			}
			if w := TokenFileWarning(p); w != "" {
				f.Warnings = append(f.Warnings, where+": "+w)
			}
			s.Token, source = strings.TrimSpace(string(b)), "token file "+strconv.Quote(s.TokenFile)
		default:
			continue
		}
		if s.Token == "" {
			return &slum.FieldError{Where: where, Field: at + ".token", NoValue: true,
				Reason: "the " + source + " is empty; put server " + s.ID + "'s admin token there (or say no_token: true)"}
		}
		if err := ValidateToken(s.Token); err != nil {
			return &slum.FieldError{Where: where, Field: at + ".token", Value: "(hidden)", Reason: "must be printable ASCII without spaces"}
		}
	}
	return nil
}

// TokenFileWarning says why a token file is at risk (others may read or
// change it), or "".
func TokenFileWarning(path string) string {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("token file %s is open to other users (mode %04o): chmod 600 %s", strconv.Quote(path), fi.Mode().Perm(), strconv.Quote(path))
}

// pathErrorCause is an os error without the path it repeats.
func pathErrorCause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse parses a fleet file and validates every field, so that a file that
// parses can be applied as far as its own contents go. name is used in
// error positions. A fleet file is one YAML document whose version, when
// given, is 1; Load and LoadFile, which read fleet files, also require
// the version to be given.
func Parse(name string, data []byte) (*File, error) {
	return parse(name, data, true)
}

// parse is Parse, reading the YAML with quickyaml where it can when quick
// is set (a test compares the two ways).
func parse(name string, data []byte, quick bool) (*File, error) {
	root, err := readYAML(name, data, quick)
	if err != nil {
		return nil, err
	}
	f := &File{Name: name, Text: data}
	p := parser{name: name}
	if err := p.file(root, f); err != nil {
		return nil, err
	}
	return f, nil
}

// readYAML returns the top node of data's one YAML document.
func readYAML(name string, data []byte, quick bool) (*yaml.Node, error) {
	if quick {
		if doc, ok := quickyaml.Parse(data); ok && !commentsInSettings(doc) {
			return doc.Root.Content[0], nil
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err == io.EOF {
		return nil, &slum.FieldError{Where: name, Reason: "the file is empty; a fleet file starts with version: 1 and names servers and tenants"}
	} else if err != nil {
		return nil, yamlError(name, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &slum.FieldError{Where: fmt.Sprintf("%s:%d", name, next.Line),
			Reason: "a second YAML document ('---'): a fleet file is one document; put each fleet in a file of its own"}
	} else if err != io.EOF {
		return nil, yamlError(name, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, &slum.FieldError{Where: name, Reason: "the file is empty; a fleet file starts with version: 1 and names servers and tenants"}
	}
	return root.Content[0], nil
}

// commentsInSettings says whether a comment stands among the settings
// block's lines. quickyaml leaves comments out of its tree, and Encode
// writes the settings block's tree back as it was read, comments and all;
// nothing else the parser reads keeps them.
func commentsInSettings(doc quickyaml.Doc) bool {
	if len(doc.CommentLines) == 0 {
		return false
	}
	top := doc.Root.Content[0].Content
	for i := 0; i+1 < len(top); i += 2 {
		if top[i].Value != "settings" {
			continue
		}
		from, to := top[i].Line, math.MaxInt // up to the next key's line
		if i+2 < len(top) {
			to = top[i+2].Line
		}
		for _, l := range doc.CommentLines {
			if l >= from && l < to {
				return true
			}
		}
	}
	return false
}

func yamlError(name string, err error) error {
	return &slum.FieldError{Where: name, Reason: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

type parser struct{ name string }

func (p parser) errAt(n *yaml.Node, field, value, reason string) error {
	return &slum.FieldError{Where: fmt.Sprintf("%s:%d", p.name, n.Line), Field: field, Value: value, Reason: reason}
}

// fieldErr is an error about a field as a whole, not its value.
func (p parser) fieldErr(n *yaml.Node, field, reason string) error {
	return &slum.FieldError{Where: fmt.Sprintf("%s:%d", p.name, n.Line), Field: field, Reason: reason, NoValue: true}
}

// wrap places a validation error at the line of the field it names, or
// else at the line of the mapping n.
func (p parser) wrap(n *yaml.Node, err error) error {
	fe, ok := err.(*slum.FieldError)
	if !ok {
		return err
	}
	c := *fe
	line := n.Line
	field := c.Field[strings.LastIndex(c.Field, ".")+1:]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == field {
			line = n.Content[i].Line
		}
	}
	c.Where = fmt.Sprintf("%s:%d", p.name, line)
	return &c
}

// fields walks a mapping node, calling fn for each key with its value; it
// rejects duplicate and, through fn, unknown keys.
func (p parser) fields(n *yaml.Node, what string, fn func(k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.fieldErr(n, what, "must be a mapping of fields")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.fieldErr(k, what, "field names must be plain words")
		}
		// A mapping has a handful of fields (an unknown one stops the
		// walk): looking back at the earlier keys beats a map per mapping
		// when a fleet file has 100,000 of them.
		for j := 0; j < i; j += 2 {
			if first := n.Content[j]; first.Value == k.Value {
				return p.fieldErr(k, what+"."+k.Value, fmt.Sprintf("is given twice (first at line %d)", first.Line))
			}
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// fieldName is field name of the mapping at ("" for the file's top).
// Field names are built only for errors: a fleet file has hundreds of
// thousands of fields.
func fieldName(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

func (p parser) str(v *yaml.Node, at, name string) (string, error) {
	n := v
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v == nil || v.Kind != yaml.ScalarNode {
		return "", p.fieldErr(n, fieldName(at, name), "must be a single value")
	}
	if v.Tag == "!!null" {
		return "", nil
	}
	return v.Value, nil
}

func (p parser) num(v *yaml.Node, at, name string) (int64, error) {
	s, err := p.str(v, at, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, p.errAt(v, fieldName(at, name), s, "must be a positive integer")
	}
	return n, nil
}

func (p parser) list(v *yaml.Node, field string, fn func(i int, item *yaml.Node) error) error {
	if v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return p.fieldErr(v, field, "must be a list")
	}
	for i, item := range v.Content {
		if err := fn(i, item); err != nil {
			return err
		}
	}
	return nil
}

func (p parser) flag(v *yaml.Node, at, name string) (bool, error) {
	s, err := p.str(v, at, name)
	if err != nil {
		return false, err
	}
	switch s {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, p.errAt(v, fieldName(at, name), s, "must be true or false")
}

// unknown rejects the field key of the mapping at, naming it and, when
// it looks like a misspelling, the field meant.
func (p parser) unknown(k *yaml.Node, at, key string, known ...string) error {
	field := key
	if at != "" {
		field = at + "." + key
	}
	reason := "is not a known field (known: " + strings.Join(known, ", ") + ")"
	if s := closest(key, known); s != "" {
		reason = fmt.Sprintf("is not a known field; did you mean %s? (known: %s)", s, strings.Join(known, ", "))
	}
	return &slum.FieldError{Where: fmt.Sprintf("%s:%d", p.name, k.Line), Field: field, Reason: reason, NoValue: true}
}

// closest is the word of known within two edits of w, or "".
func closest(w string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(w, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (p parser) file(n *yaml.Node, f *File) error {
	if n.Kind != yaml.MappingNode {
		return p.fieldErr(n, "file", "must be a mapping that starts with version: 1 and names servers and tenants")
	}
	version := false
	err := p.fields(n, "file", func(k, v *yaml.Node) error {
		switch k.Value {
		case "version":
			s, err := p.str(v, "", "version")
			if err != nil {
				return err
			}
			if s != "1" {
				return p.errAt(v, "version", s, "is not supported; this slum reads version 1")
			}
			version = true
		case "servers":
			ids := make(map[string]int, len(v.Content))
			if len(v.Content) > 0 {
				f.Servers = make([]FileServer, 0, len(v.Content))
			}
			return p.list(v, "servers", func(i int, item *yaml.Node) error {
				s, err := p.server(item, fmt.Sprintf("servers[%d]", i))
				if err != nil {
					return err
				}
				if prev, dup := ids[s.ID]; dup {
					return p.errAt(item, fmt.Sprintf("servers[%d].id", i), s.ID, fmt.Sprintf("is already used at line %d", prev))
				}
				ids[s.ID] = s.Line
				f.Servers = append(f.Servers, s)
				return nil
			})
		case "tenants":
			ids := make(map[string]int, len(v.Content))
			domains := make(map[string]string, len(v.Content))
			if len(v.Content) > 0 {
				f.Tenants = make([]FileTenant, 0, len(v.Content))
			}
			return p.list(v, "tenants", func(i int, item *yaml.Node) error {
				t, err := p.tenant(item, "tenants["+strconv.Itoa(i)+"]")
				if err != nil {
					return err
				}
				if prev, dup := ids[t.ID]; dup {
					return p.errAt(item, fmt.Sprintf("tenants[%d].id", i), t.ID, fmt.Sprintf("is already used at line %d", prev))
				}
				if other, dup := domains[t.Domain]; dup {
					return p.errAt(item, fmt.Sprintf("tenants[%d].domain", i), t.Domain, "is already tenant "+other+"'s")
				}
				ids[t.ID], domains[t.Domain] = t.Line, t.ID
				f.Tenants = append(f.Tenants, t)
				return nil
			})
		case "settings":
			fs, err := p.settings(v)
			f.Settings = fs
			return err
		default:
			return p.unknown(k, "", k.Value, "version", "settings", "servers", "tenants")
		}
		return nil
	})
	f.versioned = version
	return err
}

func (p parser) settings(n *yaml.Node) (*FileSettings, error) {
	fs := &FileSettings{Line: n.Line, node: n}
	dur := func(v *yaml.Node, field string, dst func(*slum.Settings) *time.Duration) error {
		s, err := p.str(v, "settings", field)
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return p.errAt(v, "settings."+field, s, "must be a duration such as 500ms, 10s or 5m")
		}
		fs.given = append(fs.given, func(st *slum.Settings) { *dst(st) = d })
		return nil
	}
	err := p.fields(n, "settings", func(k, v *yaml.Node) error {
		switch k.Value {
		case "probe_interval":
			return dur(v, k.Value, func(s *slum.Settings) *time.Duration { return &s.ProbeInterval })
		case "probe_timeout":
			return dur(v, k.Value, func(s *slum.Settings) *time.Duration { return &s.ProbeTimeout })
		case "stable_after":
			return dur(v, k.Value, func(s *slum.Settings) *time.Duration { return &s.StableAfter })
		case "failback_after":
			return dur(v, k.Value, func(s *slum.Settings) *time.Duration { return &s.FailbackAfter })
		case "rebalance_every":
			return dur(v, k.Value, func(s *slum.Settings) *time.Duration { return &s.RebalanceEvery })
		case "rebalance":
			s, err := p.str(v, "settings", "rebalance")
			if err != nil {
				return err
			}
			fs.given = append(fs.given, func(st *slum.Settings) { st.Rebalance = slum.RebalancePolicy(s) })
		case "dead_after", "failover_rate":
			n, err := p.num(v, "settings", k.Value)
			if err != nil {
				return err
			}
			field := k.Value
			fs.given = append(fs.given, func(s *slum.Settings) {
				if field == "dead_after" {
					s.DeadAfter = int(n)
				} else {
					s.FailoverRate = int(n)
				}
			})
		case "partition_fraction":
			s, err := p.str(v, "settings", "partition_fraction")
			if err != nil {
				return err
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return p.errAt(v, "settings.partition_fraction", s, "must be a number between 0 and 1")
			}
			fs.given = append(fs.given, func(s *slum.Settings) { s.PartitionFraction = f })
		case "failback":
			s, err := p.str(v, "settings", "failback")
			if err != nil {
				return err
			}
			fs.given = append(fs.given, func(st *slum.Settings) { st.Failback = slum.FailbackPolicy(s) })
		default:
			return p.unknown(k, "settings", k.Value, "probe_interval", "probe_timeout", "dead_after", "partition_fraction",
				"failover_rate", "stable_after", "failback", "failback_after", "rebalance", "rebalance_every")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Each setting alone must be valid whatever the others are.
	if err := fs.Over(slum.DefaultSettings()).Validate(); err != nil {
		return nil, p.wrap(n, prefixField(err, "settings."))
	}
	return fs, nil
}

func (p parser) server(n *yaml.Node, at string) (FileServer, error) {
	s := FileServer{Line: n.Line}
	err := p.fields(n, at, func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "id":
			s.ID, err = p.str(v, at, "id")
		case "url":
			s.URL, err = p.str(v, at, "url")
		case "region":
			s.Region, err = p.str(v, at, "region")
		case "capacity_mb":
			s.CapacityMB, err = p.num(v, at, "capacity_mb")
		case "domain":
			s.Domain, err = p.str(v, at, "domain")
			s.DomainSet = s.Domain != ""
		case "state":
			var st string
			st, err = p.str(v, at, "state")
			if err == nil && st == "" {
				err = p.fieldErr(v, at+".state", "is empty: give active, cordoned or draining, or leave it out")
			}
			s.State, s.StateSet = slum.ServerState(st), true
		case "token_env":
			s.TokenEnv, err = p.str(v, at, "token_env")
			s.TokenSet, s.tokenLine = true, k.Line
		case "token_file":
			s.TokenFile, err = p.str(v, at, "token_file")
			s.TokenSet, s.tokenLine = true, k.Line
		case "no_token":
			s.NoToken, err = p.flag(v, at, "no_token")
			s.TokenSet = s.TokenSet || s.NoToken
		case "token":
			return p.errAt(v, at+".token", "(hidden)", "tokens do not belong in a fleet file; use token_env or token_file")
		default:
			return p.unknown(k, at, k.Value, "id", "url", "region", "capacity_mb", "domain", "state", "token_env", "token_file", "no_token")
		}
		return err
	})
	if err != nil {
		return s, err
	}
	if s.TokenEnv != "" && s.TokenFile != "" {
		return s, p.errAt(n, at, s.ID, "give token_env or token_file, not both")
	}
	if s.NoToken && (s.TokenEnv != "" || s.TokenFile != "") {
		return s, p.errAt(n, at, s.ID, "give a token source or no_token: true, not both")
	}
	if s.TokenSet && !s.NoToken && s.TokenEnv == "" && s.TokenFile == "" {
		return s, p.errAt(n, at, s.ID, "token_env or token_file is empty")
	}
	if s.TokenEnv != "" {
		if err := ValidateEnvName(at+".token_env", s.TokenEnv); err != nil {
			return s, p.wrap(n, err)
		}
	}
	state := s.State
	NormalizeServer(&s.Server)
	if err := ValidateID(at+".id", s.ID); err != nil {
		return s, p.wrap(n, err)
	}
	if s.CapacityMB == 0 {
		return s, p.fieldErr(n, at+".capacity_mb", "is required: the memory, in MB, the server has for instances")
	}
	if err := ValidateServer(s.Server); err != nil {
		return s, p.wrap(n, prefixField(err, at+"."))
	}
	if state == "" {
		s.State = ""
	}
	return s, nil
}

func prefixField(err error, prefix string) error {
	if fe, ok := err.(*slum.FieldError); ok {
		c := *fe
		if c.Field != "" && !strings.HasPrefix(c.Field, prefix) {
			c.Field = prefix + strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(c.Field, "server "), "tenant "), "instance ")
		}
		return &c
	}
	return err
}

func (p parser) tenant(n *yaml.Node, at string) (FileTenant, error) {
	t := FileTenant{Line: n.Line}
	var instNodes *yaml.Node
	err := p.fields(n, at, func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "id":
			t.ID, err = p.str(v, at, "id")
		case "domain":
			t.Domain, err = p.str(v, at, "domain")
		case "region":
			t.Region, err = p.str(v, at, "region")
		case "failover":
			var s string
			s, err = p.str(v, at, "failover")
			t.Failover = slum.FailoverPolicy(s)
		case "serving":
			var s string
			s, err = p.str(v, at, "serving")
			t.Serving = slum.ServingPolicy(s)
		case "data":
			var s string
			s, err = p.str(v, at, "data")
			t.Data = slum.DataPolicy(s)
		case "replica":
			t.Replica, err = p.str(v, at, "replica")
		case "instances":
			instNodes = v
		default:
			return p.unknown(k, at, k.Value, "id", "domain", "region", "failover", "serving", "data", "replica", "instances")
		}
		return err
	})
	if err != nil {
		return t, err
	}
	NormalizeTenant(&t.Tenant)
	if err := ValidateTenant(t.Tenant); err != nil {
		return t, p.wrap(n, prefixField(err, at+"."))
	}
	if instNodes == nil {
		return t, nil
	}
	if instNodes.Kind == yaml.SequenceNode && len(instNodes.Content) > 0 {
		t.Instances = make([]FileInstance, 0, len(instNodes.Content))
	}
	err = p.list(instNodes, at+".instances", func(i int, item *yaml.Node) error {
		in, err := p.instance(item, at+".instances["+strconv.Itoa(i)+"]", t.ID)
		if err != nil {
			return err
		}
		// A tenant has a few instances: a look back beats a map.
		for _, prev := range t.Instances {
			if prev.ID == in.ID {
				return p.errAt(item, fmt.Sprintf("%s.instances[%d].id", at, i), in.ID, fmt.Sprintf("is already used at line %d", prev.Line))
			}
		}
		t.Instances = append(t.Instances, in)
		return nil
	})
	return t, err
}

func (p parser) instance(n *yaml.Node, at, tenant string) (FileInstance, error) {
	in := FileInstance{Line: n.Line, Instance: slum.Instance{TenantID: tenant, MemoryMB: slum.DefaultMemoryMB, Mode: slum.ModeAlways, DesiredState: slum.StateRunning}}
	err := p.fields(n, at, func(k, v *yaml.Node) error {
		var err error
		var s string
		switch k.Value {
		case "id":
			in.ID, err = p.str(v, at, "id")
		case "process":
			in.Process, err = p.str(v, at, "process")
		case "server":
			in.ServerID, err = p.str(v, at, "server")
		case "memory_mb":
			in.MemoryMB, err = p.num(v, at, "memory_mb")
		case "mode":
			s, err = p.str(v, at, "mode")
			in.Mode = slum.Mode(s)
		case "state":
			s, err = p.str(v, at, "state")
			in.DesiredState = slum.DesiredState(s)
		default:
			return p.unknown(k, at, k.Value, "id", "process", "server", "memory_mb", "mode", "state")
		}
		return err
	})
	if err != nil {
		return in, err
	}
	if err := ValidateInstance(in.Instance); err != nil {
		return in, p.wrap(n, prefixField(err, at+"."))
	}
	return in, nil
}

// Encode writes f as a fleet file that parses back to the same settings,
// servers, tenants and instances. A server's token is written as its source
// (token_env, token_file or no_token); a token without one cannot be.
func (f *File) Encode(w io.Writer) error {
	doc := fileDoc{Version: 1}
	if f.Settings != nil {
		doc.Settings = f.Settings.node
	}
	for _, s := range f.Servers {
		if s.TokenEnv == "" && s.TokenFile == "" && !s.NoToken && s.Token != "" {
			return fmt.Errorf("encode fleet file: %w: server %s has a token but no token_env or token_file to write", slum.ErrInvalid, s.ID)
		}
		sd := serverDoc{ID: s.ID, URL: s.URL, Region: s.Region, CapacityMB: s.CapacityMB,
			TokenEnv: s.TokenEnv, TokenFile: s.TokenFile, NoToken: s.NoToken}
		if s.DomainSet {
			sd.Domain = s.Domain
		}
		if s.StateSet {
			sd.State = string(s.State)
		}
		doc.Servers = append(doc.Servers, sd)
	}
	for _, t := range f.Tenants {
		td := tenantDoc{ID: t.ID, Domain: t.Domain, Region: t.Region}
		if t.Failover != slum.FailoverMove {
			td.Failover = string(t.Failover)
		}
		if t.Serving != slum.ServingOne {
			td.Serving = string(t.Serving)
		}
		if t.Data != slum.DataLocal {
			td.Data = string(t.Data)
		}
		td.Replica = t.Replica
		for _, in := range t.Instances {
			id := instanceDoc{ID: in.ID, Process: in.Process, Server: in.ServerID, MemoryMB: in.MemoryMB}
			if in.Mode != slum.ModeAlways {
				id.Mode = string(in.Mode)
			}
			if in.DesiredState != slum.StateRunning {
				id.State = string(in.DesiredState)
			}
			td.Instances = append(td.Instances, id)
		}
		doc.Tenants = append(doc.Tenants, td)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode fleet file: %w", err)
	}
	return enc.Close()
}

// The fleet file's layout, for Encode.
type (
	fileDoc struct {
		Version  int         `yaml:"version"`
		Settings *yaml.Node  `yaml:"settings,omitempty"`
		Servers  []serverDoc `yaml:"servers,omitempty"`
		Tenants  []tenantDoc `yaml:"tenants,omitempty"`
	}
	serverDoc struct {
		ID         string `yaml:"id"`
		URL        string `yaml:"url"`
		Region     string `yaml:"region,omitempty"`
		CapacityMB int64  `yaml:"capacity_mb"`
		Domain     string `yaml:"domain,omitempty"`
		State      string `yaml:"state,omitempty"`
		TokenEnv   string `yaml:"token_env,omitempty"`
		TokenFile  string `yaml:"token_file,omitempty"`
		NoToken    bool   `yaml:"no_token,omitempty"`
	}
	tenantDoc struct {
		ID        string        `yaml:"id"`
		Domain    string        `yaml:"domain"`
		Region    string        `yaml:"region,omitempty"`
		Failover  string        `yaml:"failover,omitempty"`
		Serving   string        `yaml:"serving,omitempty"`
		Data      string        `yaml:"data,omitempty"`
		Replica   string        `yaml:"replica,omitempty"`
		Instances []instanceDoc `yaml:"instances,omitempty"`
	}
	instanceDoc struct {
		ID       string `yaml:"id"`
		Process  string `yaml:"process"`
		Server   string `yaml:"server,omitempty"`
		MemoryMB int64  `yaml:"memory_mb"`
		Mode     string `yaml:"mode,omitempty"`
		State    string `yaml:"state,omitempty"`
	}
)

// File is a parsed fleet file: the servers and tenants a fleet should have.
// See examples/fleet.yaml for the format.
type File struct {
	Name    string
	Servers []FileServer
	Tenants []FileTenant
	// Settings, when the file has a settings block, are the fleet's
	// settings it names; the others stay as they are.
	Settings *FileSettings
	// Warnings are problems that do not stop an apply, such as a token
	// file others can read. ResolveTokens adds them.
	Warnings []string
	// Text is what the file was parsed from: a fleet the caller does not
	// hold is sent the text (see Send), not the values parsed from it.
	Text []byte

	versioned bool // the file gives its version
	// parsed is the file as Parse returned it, before its tokens were
	// resolved, and parsedText a copy of Text then: Send packs that
	// text with the parse for Receive (see sentParse).
	parsed     *File
	parsedText string
}

// ServerIDs are the ids of the file's servers, in the file's order.
func (f *File) ServerIDs() []string {
	ids := make([]string, len(f.Servers))
	for i, s := range f.Servers {
		ids[i] = s.ID
	}
	return ids
}

// FileServer is one server of a fleet file. Token is set only when the file
// names a token source (token_env or token_file) or says no_token;
// otherwise the stored token is kept. A new server needs one of the three.
type FileServer struct {
	slum.Server
	Line      int
	TokenEnv  string
	TokenFile string
	NoToken   bool // no_token: true, the server has no token
	TokenSet  bool
	StateSet  bool
	DomainSet bool // the file gives the domain; otherwise it is the URL's host

	tokenLine int
}

// SetURL points the server at another URL; its domain follows unless the
// file gives one.
func (s *FileServer) SetURL(u string) {
	s.URL = strings.TrimSuffix(u, "/")
	if !s.DomainSet {
		s.Domain = DefaultDomain(s.URL)
	}
}

// FileTenant is one tenant of a fleet file with its instances.
type FileTenant struct {
	slum.Tenant
	Line      int
	Instances []FileInstance
}

// FileInstance is one instance of a fleet file. ServerID "" keeps the
// current placement, or lets slum place a new instance.
type FileInstance struct {
	slum.Instance
	Line int
}

// FileSettings are the fleet settings a file names.
type FileSettings struct {
	Line  int
	given []func(*slum.Settings) // each sets one named setting
	node  *yaml.Node             // as written, for Encode
}

// Over returns cur with the file's settings applied.
func (fs *FileSettings) Over(cur slum.Settings) slum.Settings {
	for _, set := range fs.given {
		set(&cur)
	}
	return cur
}
