package desired

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is a parsed fleet file: the servers and tenants a fleet should have.
// See examples/fleet.yaml for the format.
type File struct {
	Name    string
	Servers []FileServer
	Tenants []FileTenant
}

// FileServer is one server of a fleet file. Token is set only when the file
// names a token source (token_env or token_file); otherwise the stored token
// is kept.
type FileServer struct {
	Server
	Line      int
	TokenEnv  string
	TokenFile string
	TokenSet  bool
	StateSet  bool
}

// FileTenant is one tenant of a fleet file with its instances.
type FileTenant struct {
	Tenant
	Line      int
	Instances []FileInstance
}

// FileInstance is one instance of a fleet file. ServerID "" keeps the
// current placement, or lets slum place a new instance.
type FileInstance struct {
	Instance
	Line int
}

// MaxFileSize bounds what ParseFile reads.
const MaxFileSize = 256 << 20

// LoadFile reads and parses a fleet file, then resolves its tokens:
// token_env from the environment, token_file relative to the fleet file.
func LoadFile(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read fleet file: %w", err)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("read fleet file %s: %w: larger than %d bytes", path, ErrInvalid, MaxFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fleet file: %w", err)
	}
	f, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := f.ResolveTokens(os.LookupEnv, filepath.Dir(path)); err != nil {
		return nil, err
	}
	return f, nil
}

// ResolveTokens fills in each server's token from its token_env or
// token_file. A missing variable or file is an error naming the server.
func (f *File) ResolveTokens(lookupEnv func(string) (string, bool), dir string) error {
	for i := range f.Servers {
		s := &f.Servers[i]
		where := fmt.Sprintf("%s:%d", f.Name, s.Line)
		switch {
		case s.TokenEnv != "":
			v, ok := lookupEnv(s.TokenEnv)
			if !ok || v == "" {
				return &FieldError{Where: where, Field: "servers." + s.ID + ".token_env", Value: s.TokenEnv, Reason: "environment variable is not set"}
			}
			s.Token = strings.TrimSpace(v)
		case s.TokenFile != "":
			p := s.TokenFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return &FieldError{Where: where, Field: "servers." + s.ID + ".token_file", Value: s.TokenFile, Reason: "cannot be read: " + err.Error()}
			}
			s.Token = strings.TrimSpace(string(b))
		default:
			continue
		}
		if err := ValidateToken(s.Token); err != nil {
			return &FieldError{Where: where, Field: "servers." + s.ID + ".token", Value: "(hidden)", Reason: "must be printable ASCII without spaces"}
		}
	}
	return nil
}

// Parse parses a fleet file and validates every field, so that a file that
// parses can be applied as far as its own contents go. name is used in
// error positions.
func Parse(name string, data []byte) (*File, error) {
	p := parser{name: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &FieldError{Where: name, Reason: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, &FieldError{Where: name, Reason: "the file is empty; a fleet file names servers and tenants"}
	}
	f := &File{Name: name}
	if err := p.file(root.Content[0], f); err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct{ name string }

func (p parser) errAt(n *yaml.Node, field, value, reason string) error {
	return &FieldError{Where: fmt.Sprintf("%s:%d", p.name, n.Line), Field: field, Value: value, Reason: reason}
}

// wrap places a validation error at the line of the field it names, or
// else at the line of the mapping n.
func (p parser) wrap(n *yaml.Node, err error) error {
	fe, ok := err.(*FieldError)
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
func (p parser) fields(n *yaml.Node, what string, fn func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errAt(n, what, n.Value, "must be a mapping of fields")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errAt(k, what, "", "field names must be plain words")
		}
		if seen[k.Value] {
			return p.errAt(k, what+"."+k.Value, "", "is given twice")
		}
		seen[k.Value] = true
		if err := fn(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func (p parser) str(v *yaml.Node, field string) (string, error) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v == nil || v.Kind != yaml.ScalarNode {
		return "", p.errAt(v, field, "", "must be a single value")
	}
	if v.Tag == "!!null" {
		return "", nil
	}
	return v.Value, nil
}

func (p parser) num(v *yaml.Node, field string) (int64, error) {
	s, err := p.str(v, field)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, p.errAt(v, field, s, "must be a positive integer")
	}
	return n, nil
}

func (p parser) list(v *yaml.Node, field string, fn func(i int, item *yaml.Node) error) error {
	if v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return p.errAt(v, field, "", "must be a list")
	}
	for i, item := range v.Content {
		if err := fn(i, item); err != nil {
			return err
		}
	}
	return nil
}

func unknown(p parser, v *yaml.Node, field string, known string) error {
	return p.errAt(v, field, "", "is not a known field (known: "+known+")")
}

func (p parser) file(n *yaml.Node, f *File) error {
	if n.Kind != yaml.MappingNode {
		return p.errAt(n, "file", "", "must be a mapping with servers and tenants")
	}
	return p.fields(n, "file", func(key string, v *yaml.Node) error {
		switch key {
		case "version":
			s, err := p.str(v, "version")
			if err != nil {
				return err
			}
			if s != "1" {
				return p.errAt(v, "version", s, "is not supported; this slum reads version 1")
			}
		case "servers":
			ids := map[string]int{}
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
			ids := map[string]int{}
			domains := map[string]string{}
			return p.list(v, "tenants", func(i int, item *yaml.Node) error {
				t, err := p.tenant(item, fmt.Sprintf("tenants[%d]", i))
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
		default:
			return unknown(p, v, key, "version, servers, tenants")
		}
		return nil
	})
}

func (p parser) server(n *yaml.Node, at string) (FileServer, error) {
	s := FileServer{Line: n.Line}
	err := p.fields(n, at, func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "id":
			s.ID, err = p.str(v, at+".id")
		case "url":
			s.URL, err = p.str(v, at+".url")
		case "region":
			s.Region, err = p.str(v, at+".region")
		case "capacity_mb":
			s.CapacityMB, err = p.num(v, at+".capacity_mb")
		case "domain":
			s.Domain, err = p.str(v, at+".domain")
		case "state":
			var st string
			st, err = p.str(v, at+".state")
			s.State, s.StateSet = ServerState(st), true
		case "token_env":
			s.TokenEnv, err = p.str(v, at+".token_env")
			s.TokenSet = true
		case "token_file":
			s.TokenFile, err = p.str(v, at+".token_file")
			s.TokenSet = true
		case "token":
			return p.errAt(v, at+".token", "(hidden)", "tokens do not belong in a fleet file; use token_env or token_file")
		default:
			return unknown(p, v, at+"."+key, "id, url, region, capacity_mb, domain, state, token_env, token_file")
		}
		return err
	})
	if err != nil {
		return s, err
	}
	if s.TokenEnv != "" && s.TokenFile != "" {
		return s, p.errAt(n, at, s.ID, "give token_env or token_file, not both")
	}
	if s.TokenSet && s.TokenEnv == "" && s.TokenFile == "" {
		return s, p.errAt(n, at, s.ID, "token_env or token_file is empty")
	}
	state := s.State
	normalizeServer(&s.Server)
	if err := ValidateID(at+".id", s.ID); err != nil {
		return s, p.wrap(n, err)
	}
	if s.CapacityMB == 0 {
		return s, p.errAt(n, at+".capacity_mb", "", "is required")
	}
	if err := validateServer(s.Server); err != nil {
		return s, p.wrap(n, prefixField(err, at+"."))
	}
	if state == "" {
		s.State = ""
	}
	return s, nil
}

func prefixField(err error, prefix string) error {
	if fe, ok := err.(*FieldError); ok {
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
	err := p.fields(n, at, func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "id":
			t.ID, err = p.str(v, at+".id")
		case "domain":
			t.Domain, err = p.str(v, at+".domain")
		case "region":
			t.Region, err = p.str(v, at+".region")
		case "failover":
			var s string
			s, err = p.str(v, at+".failover")
			t.Failover = FailoverPolicy(s)
		case "serving":
			var s string
			s, err = p.str(v, at+".serving")
			t.Serving = ServingPolicy(s)
		case "instances":
			instNodes = v
		default:
			return unknown(p, v, at+"."+key, "id, domain, region, failover, serving, instances")
		}
		return err
	})
	if err != nil {
		return t, err
	}
	normalizeTenant(&t.Tenant)
	if err := validateTenant(t.Tenant); err != nil {
		return t, p.wrap(n, prefixField(err, at+"."))
	}
	if instNodes == nil {
		return t, nil
	}
	ids := map[string]int{}
	err = p.list(instNodes, at+".instances", func(i int, item *yaml.Node) error {
		in, err := p.instance(item, fmt.Sprintf("%s.instances[%d]", at, i), t.ID)
		if err != nil {
			return err
		}
		if prev, dup := ids[in.ID]; dup {
			return p.errAt(item, fmt.Sprintf("%s.instances[%d].id", at, i), in.ID, fmt.Sprintf("is already used at line %d", prev))
		}
		ids[in.ID] = in.Line
		t.Instances = append(t.Instances, in)
		return nil
	})
	return t, err
}

func (p parser) instance(n *yaml.Node, at, tenant string) (FileInstance, error) {
	in := FileInstance{Line: n.Line, Instance: Instance{TenantID: tenant, MemoryMB: DefaultMemoryMB, Mode: ModeAlways, DesiredState: StateRunning}}
	err := p.fields(n, at, func(key string, v *yaml.Node) error {
		var err error
		var s string
		switch key {
		case "id":
			in.ID, err = p.str(v, at+".id")
		case "process":
			in.Process, err = p.str(v, at+".process")
		case "server":
			in.ServerID, err = p.str(v, at+".server")
		case "memory_mb":
			in.MemoryMB, err = p.num(v, at+".memory_mb")
		case "mode":
			s, err = p.str(v, at+".mode")
			in.Mode = Mode(s)
		case "state":
			s, err = p.str(v, at+".state")
			in.DesiredState = DesiredState(s)
		default:
			return unknown(p, v, at+"."+key, "id, process, server, memory_mb, mode, state")
		}
		return err
	})
	if err != nil {
		return in, err
	}
	if err := validateInstance(in.Instance); err != nil {
		return in, p.wrap(n, prefixField(err, at+"."))
	}
	return in, nil
}
