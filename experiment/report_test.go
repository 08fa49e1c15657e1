package experiment

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

func sampleReport() *Report {
	m := func(s float64) *Millis { v := Millis(s * float64(time.Second)); return &v }
	var trials []Trial
	for i := 1; i <= 4; i++ {
		f := float64(i) / 10
		trials = append(trials, Trial{Fault: FaultKill, Trial: i, Victims: []string{"s1"}, Detected: m(0.5 + f), FailoverStarted: m(0.5 + f),
			Displaced: 2, Replaced: m(1 + f), ReplacedEach: map[string]Millis{"api:t01--prod": Millis(time.Second), "api:t02--prod": Millis(1100 * time.Millisecond)},
			ServedAgain: m(1.1 + f), Healed: m(3), Back: m(3.5), LongestGap: Millis(time.Second), Failed: 3, Failures: map[string]int{"503": 3},
			Tenants:      []Tenant{{Tenant: "t01"}, {Tenant: "t02"}},
			FailedReqs:   []Request{{Tenant: "t01", Sent: Millis(100 * time.Millisecond), Outcome: "503"}, {Tenant: "t02", Sent: Millis(600 * time.Millisecond), Outcome: "503"}},
			OnTwoServers: []Duplicate{{Name: "api:t01--prod", Servers: []string{"s1", "s2"}, First: Millis(3600 * time.Millisecond), Last: Millis(3700 * time.Millisecond)}},
			Marks:        []MarkAt{{At: Millis(3600 * time.Millisecond), Kind: MarkFenced, Subject: "t01:prod"}}, LeftBehind: []string{}, Moved: []string{"t01:prod: s1 -> s2"}})
	}
	rep := &Report{Backend: "tenement", Servers: 3, Tenants: 2, Settings: slum.DefaultSettings(), TrialsAsked: 4, Faults: []Fault{FaultKill}, Rate: 20, Trials: trials}
	rep.Summaries = Summarize(rep.Trials)
	return rep
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"real tenement servers", "kill: kill -9 of a tenement server, 4 trials",
		"every tenant served again", "1.50s", "503 ×12", "met    kill -9: every tenant served again in under 5s, p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

func TestWritePictures(t *testing.T) {
	dir := t.TempDir()
	files, err := WritePictures(sampleReport(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("wrote %v, want a timeline and a distribution, each as PNG and SVG", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(f) {
		case ".png":
			if !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Errorf("%s is not a PNG", f)
			}
		case ".svg":
			if !bytes.Contains(b[:min(len(b), 400)], []byte("<svg")) || !bytes.Contains(b, []byte("served again")) {
				t.Errorf("%s is not an SVG with a legend", f)
			}
		}
	}
}

func TestPrepareDirWipesOnlyItsOwn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exp")
	if err := PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.json")); !os.IsNotExist(err) {
		t.Errorf("a rerun kept the last run's files: %v", err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PrepareDir(other); err == nil {
		t.Fatal("a directory an experiment did not make was taken")
	}
	if _, err := os.Stat(filepath.Join(other, "precious")); err != nil {
		t.Errorf("refused, yet changed: %v", err)
	}
}

func TestDefaultFleet(t *testing.T) {
	f, err := DefaultFleet(3, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Servers) != 3 || len(f.Tenants) != 6 {
		t.Fatalf("%d servers, %d tenants", len(f.Servers), len(f.Tenants))
	}
	spares := 0
	for i, tn := range f.Tenants {
		if got, want := tn.Instances[0].ServerID, f.Servers[i%3].ID; got != want {
			t.Errorf("%s's prod on %s, want %s", tn.ID, got, want)
		}
		if len(tn.Instances) == 2 {
			spares++
			if tn.Instances[1].ServerID == tn.Instances[0].ServerID {
				t.Errorf("%s's spare shares its server", tn.ID)
			}
		}
	}
	if spares != 3 {
		t.Errorf("%d tenants with a warm spare, want every other one", spares)
	}
	if p := Processes(f); len(p) != 1 || p[0].Name != "api" {
		t.Errorf("processes %v", p)
	}
}
