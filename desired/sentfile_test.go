package desired

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

const sentFleet = `version: 1
servers:
  - id: s1
    url: http://10.0.0.1:8080
    capacity_mb: 1000
    token_env: TOK_S1
  - id: s2
    url: http://10.0.0.2:8080
    capacity_mb: 1000
    token_file: s2.token
  - {id: s3, url: 'http://10.0.0.3:8080', capacity_mb: 1000, no_token: true}
settings:
  dead_after: 5
tenants:
  - id: alice
    domain: alice.example.com
    instances: [{id: prod, process: api, server: s1}]
`

// A file sent elsewhere arrives as Load would read it where it was sent
// from: same servers, tokens, settings and positions.
func TestSentFileArrivesAsLoaded(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s2.token"), []byte("tok-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return map[string]string{"TOK_S1": "tok-1"}[k], k == "TOK_S1" }
	loaded, err := Load("fleet.yaml", strings.NewReader(sentFleet), dir, env)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := Send(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sf.Tokens, map[string]string{"s1": "tok-1", "s2": "tok-2"}) || sf.Name != "fleet.yaml" || sf.Text != sentFleet {
		t.Fatalf("sent %+v", sf)
	}
	got, err := Receive(sf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Servers, loaded.Servers) || !reflect.DeepEqual(got.Tenants, loaded.Tenants) ||
		got.Settings.Over(slum.DefaultSettings()) != loaded.Settings.Over(slum.DefaultSettings()) {
		t.Fatalf("received\n%+v\nloaded\n%+v", got, loaded)
	}
}

func TestSentFileIsChecked(t *testing.T) {
	ok := map[string]string{"s1": "tok-1", "s2": "tok-2"}
	with := func(k, v string) map[string]string {
		m := map[string]string{"s1": "tok-1", "s2": "tok-2"}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name string
		sf   slum.FileSource
		want string
	}{
		{"no name", slum.FileSource{Text: sentFleet, Tokens: ok}, `file name "": must be printable text`},
		{"name with a newline", slum.FileSource{Name: "a\nb", Text: sentFleet, Tokens: ok}, "must be printable text"},
		{"no version", slum.FileSource{Name: "f", Text: "servers: []\n"}, "f:1: version: is missing"},
		{"bad yaml", slum.FileSource{Name: "f", Text: "version: 1\nservers: 3\n"}, "f:2: servers: must be a list"},
		{"token not sent", slum.FileSource{Name: "f", Text: sentFleet, Tokens: with("s2", "")}, "f:10: servers[1].token: was not sent"},
		{"token for a server without a source", slum.FileSource{Name: "f", Text: sentFleet, Tokens: with("s3", "x")}, "f:11: servers[2].token: was sent for server s3"},
		{"token for a server not in the file", slum.FileSource{Name: "f", Text: sentFleet, Tokens: with("s9", "x")}, "f: tokens: were sent for servers the file does not name: s9"},
		{"empty token", slum.FileSource{Name: "f", Text: sentFleet, Tokens: with("s1", " ")}, `f:6: servers[0].token "(hidden)": must be printable ASCII`},
		{"token with a space", slum.FileSource{Name: "f", Text: sentFleet, Tokens: with("s1", "a b")}, `servers[0].token "(hidden)"`},
	} {
		_, err := Receive(tc.sf)
		if !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok-") {
			t.Errorf("%s: the error shows a token: %v", tc.name, err)
		}
	}
	if _, err := Send(&File{Name: "x"}); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a file without text was sent: %v", err)
	}
	f, err := Parse("f", []byte(sentFleet))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Send(f); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a file whose tokens were not read was sent: %v", err)
	}
}

func FuzzSentFileReceive(f *testing.F) {
	f.Add("f.yaml", sentFleet, "s1", "-1")
	f.Add("f", "version: 1\n", "", "")
	f.Add("f", "version: 1\nservers:\n  - {id: a, url: 'http://a:1', capacity_mb: 1, token_env: X}\n", "a", "t")
	f.Fuzz(func(t *testing.T, name, text, id, token string) {
		token = "S3CR3T" + token
		sf := slum.FileSource{Name: name, Text: text, Tokens: map[string]string{id: token}}
		got, err := Receive(sf)
		if err != nil {
			if !errors.Is(err, slum.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "S3CR3T") && !strings.Contains(name+text+id, "S3CR3T") {
				t.Fatalf("the error shows the token: %v", err)
			}
			return
		}
		for _, s := range got.Servers {
			if s.TokenEnv != "" || s.TokenFile != "" {
				if s.Token != token || ValidateToken(s.Token) != nil {
					t.Fatalf("server %s got token %q", s.ID, s.Token)
				}
			}
		}
	})
}

// Receive in the process that sent a file starts from the parse Load made
// (see sentParse); what it returns must still be what parsing the
// sent text gives, whatever the sender or an earlier receiver changed in
// their own copies since.
func TestReceiveOfASentFileIsItsParse(t *testing.T) {
	env := func(k string) (string, bool) { return "tok-1", k == "TOK_S1" }
	text := strings.Replace(sentFleet, "    token_file: s2.token\n", "", 1)
	loaded, err := Load("fleet.yaml", strings.NewReader(text), ".", env)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := Send(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if recallParse(sf) == nil {
		t.Fatal("Send did not carry the parse of the text it packed")
	}
	want, err := Parse("fleet.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want.Servers[0].Token = "tok-1"
	// The sender changes its file after sending; a receiver its copy.
	loaded.Tenants[0].Domain = "changed.example.com"
	loaded.Tenants[0].Instances[0].Process = "changed"
	for round := 0; round < 2; round++ {
		got, err := Receive(sf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Servers, want.Servers) || !reflect.DeepEqual(got.Tenants, want.Tenants) ||
			string(got.Text) != text || got.Settings.Over(slum.DefaultSettings()) != want.Settings.Over(slum.DefaultSettings()) {
			t.Fatalf("round %d: received\n%+v\nparsing the text gives\n%+v", round, got, want)
		}
		got.Tenants[0].Instances[0].ID = "changed"
		got.Servers[1].ID = "changed"
	}
	// What crosses the API carries no parse; a text changed after Send,
	// or a name, is not taken for the one parsed.
	b, err := json.Marshal(sf)
	if err != nil {
		t.Fatal(err)
	}
	var over slum.FileSource
	if err := json.Unmarshal(b, &over); err != nil || over.Parsed != nil || recallParse(over) != nil {
		t.Fatalf("a file sent over the API carried its parse: %+v %v", over.Parsed, err)
	}
	edited := sf
	edited.Text = strings.Replace(sf.Text, "version: 1", "version: 1 ", 1)
	renamed := sf
	renamed.Name = "other.yaml"
	if recallParse(edited) != nil || recallParse(renamed) != nil {
		t.Fatal("a parse was taken for a different text or name")
	}
	// A file changed after Load is sent as its text, not remembered as parsed.
	loaded.Text = append([]byte(nil), loaded.Text...)
	loaded.Text[len(loaded.Text)-2] = 'x'
	sf2, err := Send(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if recallParse(sf2) != nil || sf2.Parsed != nil {
		t.Fatal("Send carried the parse of a text that was changed after it was parsed")
	}
}
