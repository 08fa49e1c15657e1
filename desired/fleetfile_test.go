package desired

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/examples"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"empty", "", "fleet.yaml: the file is empty"},
		{"only a comment", "# nothing\n", "fleet.yaml: the file is empty"},
		{"not yaml", "servers: [", "not valid YAML"},
		{"not a mapping", "- a\n- b\n", "fleet.yaml:1: file: must be a mapping"},
		{"version", "version: 2\n", `fleet.yaml:1: version "2": is not supported`},
		{"second document", "version: 1\nservers: []\n---\ntenants: []\n", "fleet.yaml:3: a second YAML document"},
		{"empty second document", "version: 1\n---\n", "fleet.yaml:2: a second YAML document"},
		{"bad second document", "version: 1\n---\n[\n", "not valid YAML"},
		{"unknown top", "version: 1\nservrs: []\n", `fleet.yaml:2: servrs: is not a known field; did you mean servers? (known: version, settings, servers, tenants)`},
		{"unknown far off", "version: 1\nwhatever: []\n", `fleet.yaml:2: whatever: is not a known field (known: version, settings, servers, tenants)`},
		{"unknown block key", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 5\n    cpus:\n      - 3\n", `fleet.yaml:6: servers[0].cpus: is not a known field (known: id,`},
		{"unknown server field", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 5\n    cpu: 3\n", `fleet.yaml:6: servers[0].cpu: is not a known field`},
		{"misspelled instance field", "version: 1\ntenants:\n  - id: a\n    domain: x.com\n    instances:\n      - {id: p, process: api, memory: 5}\n", `tenants[0].instances[0].memory: is not a known field`},
		{"bad server id", "version: 1\nservers:\n  - id: S1\n    url: http://a\n    capacity_mb: 5\n", `fleet.yaml:3: servers[0].id "S1"`},
		{"bad url", "version: 1\nservers:\n  - id: s1\n    url: a:80\n    capacity_mb: 5\n", `fleet.yaml:4: servers[0].url "a:80"`},
		{"url with password", "version: 1\nservers:\n  - id: s1\n    url: http://admin:hunter2@a\n    capacity_mb: 5\n", `servers[0].url "http://(hidden)@a": must not hold credentials`},
		{"url port 0", "version: 1\nservers:\n  - id: s1\n    url: http://a:0\n    capacity_mb: 5\n", `servers[0].url "http://a:0": has port 0`},
		{"url empty port", "version: 1\nservers:\n  - id: s1\n    url: 'http://a:'\n    capacity_mb: 5\n", `has an empty port`},
		{"empty server state", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 5\n    state:\n", `fleet.yaml:6: servers[0].state: is empty: give active, cordoned or draining`},
		{"no capacity", "version: 1\nservers:\n  - id: s1\n    url: http://a\n", `fleet.yaml:3: servers[0].capacity_mb: is required`},
		{"bad capacity", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: lots\n", `fleet.yaml:5: servers[0].capacity_mb "lots"`},
		{"negative capacity", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: -1\n", `must be a positive integer`},
		{"literal token", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 1\n    token: abc\n", `tokens do not belong in a fleet file`},
		{"two token sources", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 1\n    token_env: A\n    token_file: b\n", `not both`},
		{"bad token_env", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 1\n    token_env: \"A B\"\n", `fleet.yaml:6: servers[0].token_env "A B": must be an environment variable name`},
		{"token and no_token", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 1\n    token_env: A\n    no_token: true\n", `give a token source or no_token: true, not both`},
		{"bad no_token", "version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 1\n    no_token: maybe\n", `servers[0].no_token "maybe": must be true or false`},
		{"dup server", "version: 1\nservers:\n  - {id: s1, url: 'http://a', capacity_mb: 1}\n  - {id: s1, url: 'http://b', capacity_mb: 1}\n", `fleet.yaml:4: servers[1].id "s1": is already used at line 3`},
		{"dup key", "version: 1\nservers:\n  - id: s1\n    id: s2\n", `fleet.yaml:4: servers[0].id: is given twice (first at line 3)`},
		{"bad domain", "version: 1\ntenants:\n  - id: a\n    domain: A..b\n", `fleet.yaml:4: tenants[0].domain "A..b"`},
		{"domain with a newline", "version: 1\ntenants:\n  - id: a\n    domain: \"a\\nb.com\"\n", `tenants[0].domain "a\nb.com": must be a host name of dot-separated labels; label "a\nb" must be`},
		{"ip as domain", "version: 1\ntenants:\n  - id: a\n    domain: 10.0.0.1\n", `tenants[0].domain "10.0.0.1": must be a host name, not an IP address`},
		{"dup domain", "version: 1\ntenants:\n  - {id: a, domain: x.com}\n  - {id: b, domain: x.com}\n", `is already tenant a's`},
		{"bad instance", "version: 1\ntenants:\n  - id: a\n    domain: x.com\n    instances:\n      - {id: ../etc, process: api}\n", `fleet.yaml:6: tenants[0].instances[0].id "../etc"`},
		{"bad process", "version: 1\ntenants:\n  - id: a\n    domain: x.com\n    instances:\n      - {id: p, process: 'a:b'}\n", `instances[0].process "a:b"`},
		{"bad mode", "version: 1\ntenants:\n  - id: a\n    domain: x.com\n    instances:\n      - {id: p, process: api, mode: never}\n", `instances[0].mode "never"`},
		{"zero memory", "version: 1\ntenants:\n  - id: a\n    domain: x.com\n    instances:\n      - {id: p, process: api, memory_mb: 0}\n", `instances[0].memory_mb "0": must be a positive integer`},
		{"dup instance", "version: 1\ntenants:\n  - id: a\n    domain: x.com\n    instances:\n      - {id: p, process: api}\n      - {id: p, process: web}\n", `is already used at line 6`},
		{"bad data", "version: 1\ntenants:\n  - {id: a, domain: x.com, data: shared}\n", `tenants[0].data "shared": must be local or replicated`},
		{"replicated without a replica", "version: 1\ntenants:\n  - {id: a, domain: x.com, data: replicated}\n", `tenants[0].replica "": is required with data: replicated`},
		{"replica of local data", "version: 1\ntenants:\n  - {id: a, domain: x.com, replica: 's3://b/a'}\n", `tenants[0].replica "(not shown)": is for data: replicated only`},
		{"replica not s3", "version: 1\ntenants:\n  - {id: a, domain: x.com, data: replicated, replica: 'file:///srv/a'}\n", `tenants[0].replica "file:///srv/a": must be an s3:// URL`},
		{"replica with credentials", "version: 1\ntenants:\n  - {id: a, domain: x.com, data: replicated, replica: 's3://me:hunter2@b/a'}\n", `tenants[0].replica "s3://REDACTED@b/a": must not carry credentials`},
		{"replica template", "version: 1\ntenants:\n  - {id: a, domain: x.com, data: replicated, replica: 's3://b/{tenant}'}\n", `must name the tenant's own replica, not a template`},
		{"replica option", "version: 1\ntenants:\n  - {id: a, domain: x.com, data: replicated, replica: 's3://b/a?sse=x'}\n", `has the option "sse"`},
		{"list expected", "version: 1\nservers: s1\n", `fleet.yaml:2: servers: must be a list`},
		{"nested value", "version: 1\nservers:\n  - id: [s1]\n", `fleet.yaml:3: servers[0].id: must be a single value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("fleet.yaml", []byte(tc.text))
			if err == nil {
				t.Fatalf("parsed")
			}
			if !errors.Is(err, slum.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q splits a line or shows a password", err)
			}
		})
	}
}

func TestResolveTokensErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("empty", "", 0o600)
	write("blank", " \n\t\n", 0o600)
	write("good", "tok-1\n", 0o600)
	write("open", "tok-2\n", 0o644)
	env := map[string]string{"EMPTY": "", "SPACES": "  ", "BAD": "a b", "GOOD": "tok"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		source, want string
	}{
		{"token_env: NOPE", `fleet.yaml:6: servers[0].token_env "NOPE": environment variable is not set: export NOPE=<the admin token of server s1>`},
		{"token_env: EMPTY", `fleet.yaml:6: servers[0].token: the environment variable EMPTY is empty`},
		{"token_env: SPACES", `the environment variable SPACES is empty`},
		{"token_env: BAD", `servers[0].token "(hidden)": must be printable ASCII`},
		{"token_file: missing", `fleet.yaml:6: servers[0].token_file "missing": cannot be read: no such file or directory`},
		{"token_file: empty", `servers[0].token: the token file "empty" is empty`},
		{"token_file: blank", `servers[0].token: the token file "blank" is empty`},
	} {
		f, err := Parse("fleet.yaml", []byte("version: 1\nservers:\n  - id: s1\n    url: http://a\n    capacity_mb: 1\n    "+tc.source+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		err = f.ResolveTokens(lookup, dir)
		if !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.source, err, tc.want)
		}
	}
	f, err := Parse("fleet.yaml", []byte("version: 1\nservers:\n  - {id: s1, url: 'http://a', capacity_mb: 1, token_file: good}\n  - {id: s2, url: 'http://b', capacity_mb: 1, token_file: open}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ResolveTokens(lookup, dir); err != nil {
		t.Fatal(err)
	}
	if f.Servers[0].Token != "tok-1" || f.Servers[1].Token != "tok-2" {
		t.Fatalf("tokens %q %q", f.Servers[0].Token, f.Servers[1].Token)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "fleet.yaml:4: token file") || !strings.Contains(f.Warnings[0], "mode 0644") {
		t.Fatalf("warnings %q, want one for the file others can read", f.Warnings)
	}
}

func TestExampleFleetFileParses(t *testing.T) {
	f, err := LoadFile("../examples/fleet.yaml")
	if err != nil && !strings.Contains(err.Error(), "SLUM_TOKEN_") {
		t.Fatal(err)
	}
	if err == nil && len(f.Tenants) == 0 {
		t.Fatal("example has no tenants")
	}
	data, _ := os.ReadFile("../examples/fleet.yaml")
	if _, err := Parse("examples/fleet.yaml", data); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(examples.Fleet))
	f.Add([]byte("version: 1\nservers: []\ntenants: []\n"))
	f.Add([]byte("version: 1\ntenants:\n  - {id: a, domain: x.com, instances: [{id: p, process: api}]}\n"))
	f.Add([]byte("version: 1\nservers:\n  - {id: s1, url: 'http://a:1/', capacity_mb: 1, no_token: true, state: cordoned, domain: b.c}\n"))
	f.Add([]byte("version: 1\ntenants:\n  - {id: a, domain: x.com, data: replicated, replica: 's3://b/t/a?endpoint=http://127.0.0.1:8333'}\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("version: 1\n---\nversion: 1\n"))
	data, err := os.ReadFile("../examples/fleet.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, slum.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q splits a line", err)
			}
			return
		}
		// Whatever parses is valid through and through.
		for _, s := range file.Servers {
			if ValidateID("id", s.ID) != nil || ValidateURL("url", s.URL) != nil || s.CapacityMB <= 0 {
				t.Fatalf("invalid server accepted: %+v", s)
			}
		}
		for _, tn := range file.Tenants {
			if ValidateID("id", tn.ID) != nil || ValidateDomain("d", tn.Domain) != nil || ValidateTenant(tn.Tenant) != nil {
				t.Fatalf("invalid tenant accepted: %+v", tn)
			}
			for _, in := range tn.Instances {
				if ValidateInstance(in.Instance) != nil {
					t.Fatalf("invalid instance accepted: %+v", in)
				}
			}
		}
		// And it writes back to a file that parses to the same fleet.
		var out bytes.Buffer
		if err := file.Encode(&out); err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := Parse("fuzz.yaml", out.Bytes())
		if err != nil {
			t.Fatalf("the encoded file does not parse: %v\n%s", err, out.Bytes())
		}
		if a, b := withoutLines(file), withoutLines(again); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the fleet:\n%+v\n%+v", a, b)
		}
	})
}

// withoutLines is f without its file positions, to compare two parses.
func withoutLines(f *File) *File {
	c := *f
	c.versioned = false // Encode always writes it
	c.Text = nil        // the text differs; the fleet it holds must not
	c.Settings = nil    // functions; compared by what they set
	c.Servers = append([]FileServer(nil), f.Servers...)
	for i := range c.Servers {
		c.Servers[i].Line, c.Servers[i].tokenLine = 0, 0
	}
	c.Tenants = append([]FileTenant(nil), f.Tenants...)
	for i := range c.Tenants {
		c.Tenants[i].Line = 0
		c.Tenants[i].Instances = append([]FileInstance(nil), c.Tenants[i].Instances...)
		for j := range c.Tenants[i].Instances {
			c.Tenants[i].Instances[j].Line = 0
		}
	}
	return &c
}

func TestLoadNeedsTheVersion(t *testing.T) {
	_, err := Load("fleet.yaml", strings.NewReader("# no version\nservers: []\ntenants: []\n"), "", nil)
	if !errors.Is(err, slum.ErrInvalid) || err.Error() != "fleet.yaml:1: version: is missing: a fleet file starts with version: 1" {
		t.Fatalf("a file without its version: %v", err)
	}
	path := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(path, []byte("tenants: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), "version: is missing") {
		t.Fatalf("LoadFile of a file without its version: %v", err)
	}
}

func TestLoadFromAReader(t *testing.T) {
	text := "version: 1\nservers:\n  - {id: s1, url: 'http://a:1', capacity_mb: 1, token_env: T}\n  - id: s2\n    url: http://b:1\n    capacity_mb: 1\n    token_file: s2.token\n"
	f, err := Load("stdin", strings.NewReader(text), t.TempDir(), func(k string) (string, bool) { return "tok-" + k, true })
	if err == nil || !strings.Contains(err.Error(), `stdin:7: servers[1].token_file "s2.token": cannot be read`) {
		t.Fatalf("a relative token file that is not there: %v %v", f, err)
	}
}

func TestEncodeWritesWhatParses(t *testing.T) {
	// Policies that are not the defaults, and a settings block.
	text := strings.Replace(examples.Fleet, "    region: eu\n    instances:", "    region: eu\n    failover: none\n    serving: all\n    data: replicated\n    replica: s3://replicas/tenants/alice?endpoint=http://127.0.0.1:8333\n    instances:", 1) +
		"settings:\n  dead_after: 5\n  failback: return\n"
	f, err := Parse("fleet.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if f.Tenants[0].Failover != slum.FailoverNone || f.Tenants[0].Serving != slum.ServingAll || f.Tenants[0].Data != slum.DataReplicated ||
		f.Tenants[0].Replica != "s3://replicas/tenants/alice?endpoint=http://127.0.0.1:8333" || f.Tenants[1].Data != slum.DataLocal || f.Settings == nil {
		t.Fatalf("the test's fleet: %+v %+v", f.Tenants[0].Tenant, f.Settings)
	}
	f.Servers[0].SetURL("http://10.9.9.9:9/")
	f.Servers[1].TokenFile, f.Servers[1].TokenEnv = "", ""
	f.Servers[1].NoToken = true
	var out bytes.Buffer
	if err := f.Encode(&out); err != nil {
		t.Fatal(err)
	}
	again, err := Parse("fleet.yaml", out.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, out.Bytes())
	}
	if !reflect.DeepEqual(withoutLines(f), withoutLines(again)) {
		t.Fatalf("round trip changed the fleet:\n%s", out.Bytes())
	}
	if again.Settings == nil || again.Settings.Over(slum.DefaultSettings()) != f.Settings.Over(slum.DefaultSettings()) {
		t.Fatalf("round trip changed the settings:\n%s", out.Bytes())
	}
	if again.Servers[0].URL != "http://10.9.9.9:9" || again.Servers[0].Domain != "10.9.9.9" {
		t.Fatalf("SetURL: %+v", again.Servers[0])
	}
	// A token without a source cannot be written.
	f.Servers[0].TokenEnv, f.Servers[0].Token = "", "secret"
	if err := f.Encode(&out); !errors.Is(err, slum.ErrInvalid) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("a token without a source: %v", err)
	}
}
