package desired

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

const fleetYAML = `version: 1
servers:
  - id: s1
    url: http://10.0.0.1:8080
    region: eu
    capacity_mb: 1000
    token_env: TOK_S1
  - id: s2
    url: http://10.0.0.2:8080
    region: eu
    capacity_mb: 1000
    token_file: s2.token
tenants:
  - id: alice
    domain: alice.example.com
    region: eu
    instances:
      - id: prod
        process: api
        memory_mb: 300
      - id: backup
        process: api
        memory_mb: 300
  - id: bob
    domain: bob.example.com
    instances:
      - {id: prod, process: api, server: s2, mode: on-demand}
`

func parseFleet(t testing.TB, text string) *File {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s2.token"), []byte("token-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("fleet.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	env := map[string]string{"TOK_S1": "token-one"}
	if err := f.ResolveTokens(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, dir); err != nil {
		t.Fatalf("tokens: %v", err)
	}
	return f
}

func TestApplyCreatesThenChangesNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	f := parseFleet(t, fleetYAML)

	dry, err := s.applyFile(ctx, f, slum.ApplyOptions{Prune: false, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, u, d := dry.Counts(); c != 7 || u != 0 || d != 0 {
		t.Fatalf("diff counts %d %d %d: %v", c, u, d, dry.Changes)
	}
	if n, _ := s.ListServers(ctx); len(n) != 0 {
		t.Fatal("diff wrote to the database")
	}
	plan, err := s.applyFile(ctx, f, slum.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary() != "7 to create, 0 to update, 0 to delete" {
		t.Fatalf("summary %q", plan.Summary())
	}
	s1, _ := s.GetServer(ctx, "s1")
	s2, _ := s.GetServer(ctx, "s2")
	if s1.Token != "token-one" || s2.Token != "token-two" {
		t.Fatalf("tokens %q %q", s1.Token, s2.Token)
	}
	prod, _ := s.GetInstance(ctx, "alice:prod")
	backup, _ := s.GetInstance(ctx, "alice:backup")
	if prod.ServerID == backup.ServerID {
		t.Fatal("alice's prod and backup share a server")
	}
	bob, _ := s.GetInstance(ctx, "bob:prod")
	if bob.ServerID != "s2" || bob.Mode != slum.ModeOnDemand || bob.MemoryMB != slum.DefaultMemoryMB {
		t.Fatalf("bob:prod %+v", bob)
	}
	before := snapshot(t, s)
	again, err := s.applyFile(ctx, parseFleet(t, fleetYAML), slum.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() {
		t.Fatalf("second apply changes %v", again.Changes)
	}
	if snapshot(t, s) != before {
		t.Fatal("second apply wrote to the database")
	}
}

func TestApplyUpdatesMovesAndPrunes(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.applyFile(ctx, parseFleet(t, fleetYAML), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	mustTenant(t, s, "carol", "") // not in the file
	prod, _ := s.GetInstance(ctx, "alice:prod")
	other := map[string]string{"s1": "s2", "s2": "s1"}
	backup, _ := s.GetInstance(ctx, "alice:backup")

	// Move alice:prod by naming a server: backup must move too (anti-affinity), drop bob.
	text := strings.Replace(fleetYAML, "      - id: prod\n        process: api\n        memory_mb: 300",
		"      - id: prod\n        process: api\n        memory_mb: 300\n        server: "+backup.ServerID, 1)
	text = strings.Replace(text, "      - id: backup\n        process: api\n        memory_mb: 300",
		"      - id: backup\n        process: api\n        memory_mb: 300\n        server: "+prod.ServerID, 1)
	text = text[:strings.Index(text, "  - id: bob")]
	f := parseFleet(t, text)

	plan, err := s.applyFile(ctx, f, slum.ApplyOptions{Prune: false, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, u, d := plan.Counts(); c != 0 || u != 2 || d != 0 || plan.Unlisted != 3 {
		t.Fatalf("diff without prune: %d %d %d unlisted %d: %v", c, u, d, plan.Unlisted, plan.Changes)
	}
	if !strings.Contains(plan.Changes[0].String(), "server: "+prod.ServerID+" -> "+backup.ServerID) ||
		!strings.Contains(plan.Changes[0].String(), "storage_persist") {
		t.Fatalf("move change reads %q", plan.Changes[0].String())
	}
	_ = other
	// The swap crosses anti-affinity mid-way; apply must still land it whole.
	if _, err := s.applyFile(ctx, f, slum.ApplyOptions{}); err != nil {
		t.Fatalf("apply swap: %v", err)
	}
	moved, _ := s.GetInstance(ctx, "alice:prod")
	if moved.ServerID != backup.ServerID || moved.Generation != prod.Generation+1 {
		t.Fatalf("alice:prod after apply: %+v", moved)
	}
	if _, err := s.GetTenant(ctx, "bob"); err != nil {
		t.Fatal("bob removed without --prune")
	}

	// bob and carol are two of the three tenants: most of them.
	before := snapshot(t, s)
	var mass *slum.MassPruneError
	if _, err := s.applyFile(ctx, f, slum.ApplyOptions{Prune: true}); !errors.As(err, &mass) || !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("a prune of most tenants: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a refused prune changed the database")
	}
	pruned, err := s.applyFile(ctx, f, slum.ApplyOptions{Prune: true, AllowMassPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, d := pruned.Counts(); d != 3 {
		t.Fatalf("prune deleted %d, want bob, bob:prod and carol: %v", d, pruned.Changes)
	}
	for _, id := range []string{"bob", "carol"} {
		if _, err := s.GetTenant(ctx, id); !errors.Is(err, slum.ErrNotFound) {
			t.Fatalf("%s after prune: %v", id, err)
		}
	}
}

func TestApplyRejectsAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		text string
		want error
		msg  string
	}{
		"unknown server": {strings.Replace(fleetYAML, "server: s2", "server: s9", 1), slum.ErrInvalid, "fleet.yaml:27"},
		"over capacity": {strings.Replace(fleetYAML, "memory_mb: 300\n      - id: backup", "memory_mb: 900\n      - id: backup", 1) +
			"  - id: carol\n    domain: carol.example.com\n    instances:\n      - {id: prod, process: api, memory_mb: 900}\n      - {id: backup, process: api, memory_mb: 900}\n",
			slum.ErrNoCapacity, "no server can take"},
		"affinity": {strings.Replace(fleetYAML, "memory_mb: 300\n      - id: backup\n        process: api\n        memory_mb: 300",
			"memory_mb: 300\n        server: s1\n      - id: backup\n        process: api\n        memory_mb: 300\n        server: s1", 1), slum.ErrInvalid, "never share a server"},
	} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t)
			mustTenant(t, s, "zed", "")
			before := snapshot(t, s)
			_, err := s.applyFile(ctx, parseFleet(t, tc.text), slum.ApplyOptions{Prune: true})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("apply: %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
			if snapshot(t, s) != before {
				t.Fatal("a rejected apply changed the database")
			}
		})
	}
}

func TestApplyDomainConflictWithUnlistedTenant(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "zed", Domain: "alice.example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.applyFile(ctx, parseFleet(t, fleetYAML), slum.ApplyOptions{})
	if !errors.Is(err, slum.ErrConflict) || !strings.Contains(err.Error(), "alice.example.com") {
		t.Fatalf("apply: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "fleet.yaml:14: ") {
		t.Fatalf("the conflict is not placed at alice's entry: %v", err)
	}
	// With --prune zed goes, so the domain is free.
	if _, err := s.applyFile(ctx, parseFleet(t, fleetYAML), slum.ApplyOptions{Prune: true, AllowMassPrune: true}); err != nil {
		t.Fatalf("apply --prune: %v", err)
	}
}

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
	f.Add([]byte(fleetYAML))
	f.Add([]byte("version: 1\nservers: []\ntenants: []\n"))
	f.Add([]byte("version: 1\ntenants:\n  - {id: a, domain: x.com, instances: [{id: p, process: api}]}\n"))
	f.Add([]byte("version: 1\nservers:\n  - {id: s1, url: 'http://a:1/', capacity_mb: 1, no_token: true, state: cordoned, domain: b.c}\n"))
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
			if ValidateID("id", tn.ID) != nil || ValidateDomain("d", tn.Domain) != nil {
				t.Fatalf("invalid tenant accepted: %+v", tn)
			}
			for _, in := range tn.Instances {
				if validateInstance(in.Instance) != nil {
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

// A failed-over instance stays where it runs when the file that declared
// it is applied again; the diff says why.
func TestApplyDoesNotUndoAFailover(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	text := `version: 1
servers:
  - {id: s1, url: "http://10.0.0.1:8080", capacity_mb: 1000, no_token: true}
  - {id: s2, url: "http://10.0.0.2:8080", capacity_mb: 1000, no_token: true}
tenants:
  - {id: a, domain: a.example.com, instances: [{id: prod, process: api, server: s1}]}
`
	if _, err := s.applyFile(ctx, parseFleet(t, text), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.GetInstance(ctx, "a:prod")
	before, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Reschedule(ctx, lease.Fence(), []slum.Reschedule{
		{TenantID: "a", InstanceID: "prod", From: "s1", To: "s2", Generation: in.Generation, Reason: "server s1 is dead"},
		{TenantID: "a", InstanceID: "prod", From: "s1", To: "s2", Generation: in.Generation + 7, Reason: "planned on a stale generation"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moves) != 1 || len(res.Instances) != 1 || res.Instances[0].ServerID != "s2" || res.Revision != before.Revision+1 {
		t.Fatalf("reschedule: %+v, want the one move made, a:prod on s2, revision %d", res, before.Revision+1)
	}
	// The snapshot with the moved instances applied is what a fresh read
	// gives: the controller relies on it instead of reading again.
	patched, ok := before.WithInstances(res.Instances, res.Revision)
	after, err := s.Snapshot(ctx)
	if err != nil || !ok || !reflect.DeepEqual(patched, after) {
		t.Fatalf("patched snapshot (ok %v)\n%+v\ndiffers from a fresh read (%v)\n%+v", ok, patched.Instances, err, after.Instances)
	}
	if before.Instances[0].ServerID != "s1" || before.Revision == res.Revision {
		t.Fatal("WithInstances changed the snapshot it was called on")
	}
	if _, ok := before.WithInstances([]slum.Instance{{TenantID: "zz", ID: "nope"}}, res.Revision); ok {
		t.Fatal("WithInstances accepted an instance the snapshot does not hold")
	}
	plan, err := s.applyFile(ctx, parseFleet(t, text), slum.ApplyOptions{})
	if err != nil || !plan.Empty() || len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "declared on s1 and failed over to s2: it stays there") {
		t.Fatalf("re-apply after a failover: %+v %v", plan, err)
	}
	if in, _ := s.GetInstance(ctx, "a:prod"); in.ServerID != "s2" || in.HomeServerID != "s1" {
		t.Fatalf("a:prod after the re-apply: %+v", in)
	}
	// Declaring it where it now runs makes that its home.
	plan, err = s.applyFile(ctx, parseFleet(t, strings.Replace(text, "server: s1", "server: s2", 1)), slum.ApplyOptions{})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Fields[0].Field != "home" {
		t.Fatalf("adopting the new server: %+v %v", plan, err)
	}
	if in, _ := s.GetInstance(ctx, "a:prod"); in.ServerID != "s2" || in.HomeServerID != "s2" {
		t.Fatalf("a:prod after adopting s2: %+v", in)
	}
}

func TestApplySettings(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	f := parseFleet(t, "version: 1\nsettings:\n  probe_interval: 2s\n  dead_after: 5\n  failback: return\n")
	plan, err := s.applyFile(ctx, f, slum.ApplyOptions{})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Kind != "settings" || len(plan.Changes[0].Fields) != 3 {
		t.Fatalf("plan %+v %v", plan, err)
	}
	got, _ := s.Settings(ctx)
	want := slum.DefaultSettings()
	want.ProbeInterval, want.DeadAfter, want.Failback = 2*time.Second, 5, slum.FailbackReturn
	if got != want {
		t.Fatalf("settings %+v", got)
	}
	if plan, err := s.applyFile(ctx, f, slum.ApplyOptions{}); err != nil || !plan.Empty() {
		t.Fatalf("again: %+v %v", plan, err)
	}
	for text, msg := range map[string]string{
		"version: 1\nsettings: {dead_after: 0}\n":         "must be a positive integer",
		"version: 1\nsettings: {probe_interval: soon}\n":  "must be a duration",
		"version: 1\nsettings: {probe_interval: 1h}\n":    "must be between 100ms and 10m0s",
		"version: 1\nsettings: {failback: sometimes}\n":   "must be stay or return",
		"version: 1\nsettings: {probe_intervall: 1s}\n":   "did you mean probe_interval",
		"version: 1\nsettings: {partition_fraction: 2}\n": "more than 0 and at most 1",
	} {
		if _, err := Parse("fleet.yaml", []byte(text)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", text, err, msg)
		}
	}
}
