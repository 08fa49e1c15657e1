package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The adapter in the repository is what the generator writes from
// today's db.Querier: run 'go generate ./postgres' when this fails.
func TestAdapterIsFresh(t *testing.T) {
	want, err := generate("../../db", "../../postgres/pgdb")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../postgres/querier.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("postgres/querier.gen.go is stale: run 'go generate ./postgres' and commit the result")
	}
}

// The SQLite engine's classifier in the repository is what the generator
// writes from today's db.Querier, and wraps every method.
func TestClassifierIsFresh(t *testing.T) {
	want, err := generateClassifier("../../db", "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../sqlite/classified.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("sqlite/classified.gen.go is stale: run 'go generate ./sqlite' and commit the result")
	}
	ms, _, err := readQuerier("../../db")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 80 {
		t.Fatalf("only %d methods read from db.Querier", len(ms))
	}
	for _, m := range ms {
		if !strings.Contains(string(got), "func (c classified) "+m.name+"(") || !strings.Contains(string(got), "c.q."+m.name+"(ctx") {
			t.Errorf("%s is not wrapped", m.name)
		}
	}
}

// Every method of db.Querier is adapted, and the controller's bulk
// statements are queued.
func TestEveryMethodIsAdapted(t *testing.T) {
	ms, _, err := readQuerier("../../db")
	if err != nil {
		t.Fatal(err)
	}
	src, err := generate("../../db", "../../postgres/pgdb")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 80 {
		t.Fatalf("only %d methods read from db.Querier", len(ms))
	}
	for _, m := range ms {
		if !strings.Contains(string(src), "func (q querier) "+m.name+"(") {
			t.Errorf("%s is not adapted", m.name)
		}
	}
	for _, name := range queued {
		if !strings.Contains(string(src), "q.later."+name+"(") && !strings.Contains(string(src), "q.pipe, "+strings.ToLower(name[:1])+name[1:]+"Rows") {
			t.Errorf("%s is not queued", name)
		}
	}
	for _, name := range []string{"UpsertInstanceStatus", "UpsertTenantStatus", "InsertPlacement", "InsertEvent"} {
		if !strings.Contains(string(src), "return q."+name+"Rows(ctx, p)") {
			t.Errorf("%s is not sent in bulk", name)
		}
	}
}

func TestQualify(t *testing.T) {
	structs := map[string][]string{"Server": {"ID"}}
	for in, want := range map[string]string{"Server": "db.Server", "[]Server": "[]db.Server", "int64": "int64", "[]byte": "[]byte"} {
		if got := qualify(in, "db", structs); got != want {
			t.Errorf("qualify(%q) = %q, want %q", in, got, want)
		}
	}
}
