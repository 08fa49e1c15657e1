package desired

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired/quickyaml"
	"github.com/slum-fleet/slum/examples"
)

// sameParse holds Parse's quick reading of data to yaml.v3's: the same
// error, or the same fleet, lines included, with the same settings,
// written back alike.
func sameParse(t *testing.T, data []byte) {
	t.Helper()
	quick, qerr := parse("f.yaml", data, true)
	slow, serr := parse("f.yaml", data, false)
	if (qerr == nil) != (serr == nil) || qerr != nil && qerr.Error() != serr.Error() {
		t.Fatalf("%q: quick: %v; yaml.v3: %v", data, qerr, serr)
	}
	if qerr != nil {
		return
	}
	if (quick.Settings == nil) != (slow.Settings == nil) {
		t.Fatalf("%q: settings %v and %v", data, quick.Settings, slow.Settings)
	}
	if quick.Settings != nil {
		if a, b := quick.Settings.Over(slum.Settings{}), slow.Settings.Over(slum.Settings{}); a != b || quick.Settings.Line != slow.Settings.Line {
			t.Fatalf("%q: settings %+v and %+v", data, a, b)
		}
	}
	var a, b bytes.Buffer
	if err := quick.Encode(&a); err != nil {
		t.Fatal(err)
	}
	if err := slow.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatalf("%q: written back as\n%s\nand as\n%s", data, a.String(), b.String())
	}
	quick.Settings, slow.Settings = nil, nil
	if !reflect.DeepEqual(quick, slow) {
		t.Fatalf("%q: read as\n%+v\nand as\n%+v", data, quick, slow)
	}
}

// A big file's parse is quickyaml's: the example and the files the
// benchmarks apply (BenchmarkApply's and scripts/genfleet's), with comments
// everywhere but the settings block.
func TestParseReadsFleetFilesQuickly(t *testing.T) {
	bench := "version: 1\nservers:\n  - {id: s0, url: 'http://10.0.0.0:8080', region: r0, capacity_mb: 65536, token_env: TOK}\n" +
		"tenants:\n  - id: t0\n    domain: t0.example.com\n    region: r0\n    instances:\n      - {id: prod, process: api, memory_mb: 128}\n      - {id: backup, process: api, memory_mb: 128}\n"
	commented := "# fleet\nversion: 1  # the format\nsettings:\n  dead_after: 3\nservers:  # below\n  # the first\n  - id: s0\n    url: http://a:1\n    capacity_mb: 10\n    no_token: true\n"
	genfleet := "version: 1\nservers:\n  - {id: s0, url: 'http://127.0.0.1:21000', capacity_mb: 10000000, token_env: T}\n" +
		"tenants:\n  - id: t0\n    domain: t0.example.com\n    instances: [{id: prod, process: api, server: s0, memory_mb: 1}]\n"
	for name, text := range map[string]string{"example": examples.Fleet, "bench": bench, "commented": commented, "scripts/genfleet": genfleet} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("f.yaml", []byte(text)); err != nil {
				t.Fatal(err)
			}
			if doc, ok := quickyamlParse(text); !ok || commentsInSettings(doc) {
				t.Fatalf("quickyaml declined it (%v), or found comments in its settings", ok)
			}
			sameParse(t, []byte(text))
		})
	}
}

// Comments in the settings block send the file to yaml.v3: Encode writes
// them back.
func TestCommentsInSettingsAreKept(t *testing.T) {
	text := "version: 1\nsettings:\n  # how often\n  probe_interval: 2s  # quick\nservers: []\n"
	f, err := Parse("f.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := f.Encode(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "# how often") || !strings.Contains(out.String(), "# quick") {
		t.Fatalf("settings' comments lost:\n%s", out.String())
	}
	sameParse(t, []byte(text))
}

func FuzzQuickParse(f *testing.F) {
	f.Add([]byte(examples.Fleet))
	f.Add([]byte("version: 1\nsettings:\n  probe_interval: 1s\n  # c\nservers:\n- {id: s1, url: 'http://a:1/', capacity_mb: 1, no_token: true}\n"))
	f.Add([]byte("version: 1\ntenants:\n  - id: a\n    domain: x.com\n    instances:\n      - {id: p, process: api, memory_mb: 0}\n"))
	f.Add([]byte("version: 1\ntenants:\n  - {id: a, domain: x.com, data: replicated, replica: 's3://b/t/a?endpoint=http://127.0.0.1:8333'}\n"))
	f.Add([]byte("version: 2\nservers:\n  - id: s1\n    id: s2\n"))
	f.Add([]byte("version: 1\nservers: []\ntenants:\n  - id: t0\n    domain: t0.example.com\n    instances: [{id: prod, process: api, server: s0, memory_mb: 1}, {id: b}]\n"))
	if data, err := os.ReadFile("../examples/fleet.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameParse(t, data) })
}

func quickyamlParse(text string) (quickyaml.Doc, bool) { return quickyaml.Parse([]byte(text)) }

// BenchmarkParse reads a fleet file of n instances (n/2 tenants of two
// over 1,000 servers, as BenchmarkApply in sqlite/) both ways.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		var s strings.Builder
		s.WriteString("version: 1\nservers:\n")
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(&s, "  - {id: s%d, url: 'http://10.0.%d.%d:8080', region: r%d, capacity_mb: 65536, token_env: TOK}\n", i, i/256, i%256, i%4)
		}
		s.WriteString("tenants:\n")
		for i := 0; i < n/2; i++ {
			fmt.Fprintf(&s, "  - id: t%d\n    domain: t%d.example.com\n    region: r%d\n    instances:\n", i, i, i%4)
			s.WriteString("      - {id: prod, process: api, memory_mb: 128}\n      - {id: backup, process: api, memory_mb: 128}\n")
		}
		data := []byte(s.String())
		for _, way := range []struct {
			name  string
			quick bool
		}{{"quickyaml", true}, {"yaml.v3", false}} {
			b.Run(fmt.Sprintf("instances=%d/%s", n, way.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := parse("f.yaml", data, way.quick); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
