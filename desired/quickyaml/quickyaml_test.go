package quickyaml

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// decode is yaml.v3's tree of data, or an error; like desired.Parse it
// wants exactly one document.
func decode(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		return nil, fmt.Errorf("a second document: %v", err)
	}
	return &doc, nil
}

// diff is where got differs from want (yaml.v3's), comments aside, or "".
func diff(path string, got, want *yaml.Node) string {
	switch {
	case got == nil || want == nil:
		if got != want {
			return fmt.Sprintf("%s: got %v, want %v", path, got, want)
		}
		return ""
	case got.Kind != want.Kind, got.Style != want.Style, got.Tag != want.Tag, got.Value != want.Value,
		got.Anchor != want.Anchor, got.Alias != nil || want.Alias != nil,
		got.Line != want.Line, got.Column != want.Column, len(got.Content) != len(want.Content):
		return fmt.Sprintf("%s: got {kind %d style %d tag %s value %q at %d:%d, %d children}, want {kind %d style %d tag %s value %q at %d:%d, %d children}",
			path, got.Kind, got.Style, got.Tag, got.Value, got.Line, got.Column, len(got.Content),
			want.Kind, want.Style, want.Tag, want.Value, want.Line, want.Column, len(want.Content))
	}
	for i := range got.Content {
		if d := diff(fmt.Sprintf("%s/%d", path, i), got.Content[i], want.Content[i]); d != "" {
			return d
		}
	}
	return ""
}

// check holds an accepted text to yaml.v3's reading of it.
func check(t *testing.T, data []byte) {
	t.Helper()
	doc, ok := Parse(data)
	if !ok {
		return
	}
	want, err := decode(data)
	if err != nil {
		t.Fatalf("accepted %q, which yaml.v3 refuses: %v", data, err)
	}
	if d := diff("", doc.Root, want); d != "" {
		t.Fatalf("%q: %s", data, d)
	}
	lines := strings.Split(string(data), "\n")
	for i, n := range doc.CommentLines {
		if n < 1 || n > len(lines) || !strings.Contains(lines[n-1], "#") || i > 0 && doc.CommentLines[i-1] >= n {
			t.Fatalf("%q: comment lines %v", data, doc.CommentLines)
		}
	}
}

const fleetFile = `# The fleet.
version: 1
settings:
  probe_interval: 500ms
  dead_after: 3
servers:
  - {id: s0, url: 'http://10.0.0.0:8080', region: r0, capacity_mb: 65536, token_env: TOK}
  - id: s1
    url: "http://10.0.0.1:8080"   # the second
    region: r1
    no_token: true
tenants:
- id: t0
  domain: t0.example.com
  region: r0
  failover: stay
  instances:
    - {id: prod, process: api, memory_mb: 128}
    -   id: backup
        process: api
        state: stopped

  # a gap
- id: 'it''s'
  domain: x.example.com
  instances:
  - id: a
    memory_mb: 1.5
    mode: ~
`

func TestReadsFleetFiles(t *testing.T) {
	for name, text := range map[string]string{
		"fleet file":        fleetFile,
		"example":           mustRead(t, "../../examples/fleet.yaml"),
		"no final newline":  "version: 1\nservers:\n  - id: a",
		"scalars":           "a: 0\nb: 007\nd: +1\ne: .5\nf: 1e3\ng: 2001-12-14\nh: True\ni: yes\nj: 0x1F\nk: 1_000\nl: '1'\nm: \"\"\nn: ''\no: a:b\np: a#b\nq: x  # c\n",
		"keys":              "1: a\ntrue: b\n<<: c\n",
		"flow":              "a: {x: 1, y: 'two', z: \"3\"}\nb: { x: 1 ,y: 2 }\n",
		"indentless":        "a:\n- 1\n- 2\nb: 3\n",
		"sequence of flows": "a:\n  - {x: 1}\n  - {x: 2}  # c\n",
		"flow sequences":    "a: [1, 'two', \"3\"]\nb: [{id: p, m: 1}, {id: q, s: [x, y]}]\nc: []\nd: {}\ne: {f: {g: []}}\nf:\n- [x]\n",
	} {
		t.Run(name, func(t *testing.T) {
			data := []byte(text)
			if _, ok := Parse(data); !ok {
				t.Fatalf("declined %q", text)
			}
			check(t, data)
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeclinesWhatItDoesNotRead(t *testing.T) {
	for name, text := range map[string]string{
		"empty":              "",
		"comments only":      "# nothing\n",
		"scalar document":    "just words\n",
		"sequence document":  "- a\n",
		"document marker":    "---\na: 1\n",
		"directive":          "%YAML 1.2\n---\na: 1\n",
		"two documents":      "a: 1\n---\nb: 2\n",
		"anchor":             "a: &x 1\nb: *x\n",
		"tag":                "a: !!str 1\n",
		"block scalar":       "a: |\n  text\n",
		"multi-line plain":   "a: one\n  two\n",
		"multi-line quoted":  "a: 'one\n  two'\n",
		"escape":             "a: \"x\\ty\"\n",
		"empty value":        "a:\nb: 1\n",
		"trailing comma":     "a: [1, 2,]\n",
		"pair in sequence":   "a: [b: 1]\n",
		"deep flow":          "a: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n",
		"open flow":          "a: {b: 1,\n  c: 2}\n",
		"tab":                "a:\t1\n",
		"crlf":               "a: 1\r\n",
		"non-ASCII":          "a: café\n",
		"non-ASCII comment":  "# café\na: 1\n",
		"quoted key":         "'a': 1\n",
		"space before colon": "a : 1\n",
		"bad indent":         "a:\n  b: 1\n   c: 2\n",
		"mapping in value":   "a: b: c\n",
		"nested sequence":    "a:\n- - 1\n",
		"indented document":  "  a: 1\n",
		"empty entry":        "a:\n-\n- 1\n",
		"deep block":         nested(maxBlockDepth + 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := Parse([]byte(text)); ok {
				t.Fatalf("read %q, which it should leave to yaml.v3", text)
			}
		})
	}
}

// nested is depth block mappings, each the value of the one before.
func nested(depth int) string {
	var b strings.Builder
	for i := range depth - 1 {
		b.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	b.WriteString(strings.Repeat(" ", depth-1) + "a: 1\n")
	return b.String()
}

func TestReadsNestingUpToItsLimit(t *testing.T) {
	check(t, []byte(nested(maxBlockDepth)))
	if _, ok := Parse([]byte(nested(maxBlockDepth))); !ok {
		t.Fatalf("declined %d nested mappings", maxBlockDepth)
	}
}

// FuzzParse holds every text Parse accepts to yaml.v3's tree of it.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fleetFile))
	f.Add([]byte("a: {x: 1, y: 'two'}\nb:\n- c: 1\n  d: [x]\n"))
	f.Add([]byte("a: 'it''s' # c\nb: \"q\"\n"))
	f.Add([]byte("a: [{id: p, m: 1}, [x, 'y'], {}]\nb: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) { check(t, data) })
}
