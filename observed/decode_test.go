package observed

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

const sampleList = `[{"id":"api:alice--prod","socket":"127.0.0.1:30000","uptime_secs":12,"idle_secs":3,"restarts":0,"health":"healthy","storage_used_bytes":4096,"storage_quota_bytes":null,"weight":100},
 {"id":"api:bob--prod","socket":"127.0.0.1:30001","uptime_secs":1,"idle_secs":1,"restarts":2,"health":"degraded","storage_used_bytes":0,"storage_quota_bytes":1048576,"weight":50}]`

func TestDecodeList(t *testing.T) {
	for _, in := range []string{sampleList, `[]`, ` [ ] `, `[{}]`, `[{"id":"a\u0041"}]`, `[{"id":"x","extra":{"a":1}}]`} {
		got, err := decodeList([]byte(in))
		var want []Instance
		werr := json.Unmarshal([]byte(in), &want)
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeList(%s) = %+v, %v; encoding/json: %+v, %v", in, got, err, want, werr)
		}
	}
	if _, ok := scanList([]byte(sampleList)); !ok {
		t.Fatal("the common shape took the slow path")
	}
	for _, bad := range []string{``, `[`, `[{"id":}]`, `{"id":"x"}`, `[1]`, `[{"id":"x"}] x`} {
		if _, err := decodeList([]byte(bad)); err == nil {
			t.Errorf("decodeList(%q) accepted", bad)
		}
	}
}

func FuzzDecodeList(f *testing.F) {
	f.Add([]byte(sampleList))
	f.Add([]byte(`[{"id":"a","weight":null,"restarts":4294967296}]`))
	f.Add([]byte(`[{"id":"a","id":"b"}]`))
	f.Add([]byte(`[{"uptime_secs":01}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeList(data)
		var want []Instance
		werr := json.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("decodeList error %v, encoding/json error %v", err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeList = %+v, encoding/json = %+v", got, want)
		}
	})
}

func FuzzDecodeSpawn(f *testing.F) {
	f.Add([]byte(`{"instance":"api:a--b","socket":"/tmp/tenement/api-a--b.sock","port":30001}`))
	f.Add([]byte(`{"instance":"api:a--b","socket":"x","port":null}`))
	f.Add([]byte(`{"instance":"a","instance":"b"}`))
	f.Add([]byte(`{"Port":1,"socket":"\u00e9"}`))
	f.Add([]byte(` { } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got SpawnResult
		err := got.decode(data)
		var want SpawnResult
		werr := json.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("decode error %v, encoding/json error %v", err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decode = %+v, encoding/json = %+v", got, want)
		}
	})
}

func TestDecodeSpawn(t *testing.T) {
	var r SpawnResult
	if err := r.decode([]byte(`{"instance":"api:a--b","socket":"/s","port":30001}`)); err != nil || r.Instance != "api:a--b" || r.Socket != "/s" || r.Port == nil || *r.Port != 30001 {
		t.Fatalf("decode = %+v, %v", r, err)
	}
	if _, ok := scanSpawn([]byte(`{"instance":"api:a--b","socket":"/s","port":30001}`)); !ok {
		t.Fatal("tenement's spawn answer went to encoding/json")
	}
	if err := r.decode([]byte(`{"instance":`)); err == nil {
		t.Fatal("a broken answer decoded")
	}
}

// namesOf is what a watcher should keep of a list, by way of encoding/json.
func namesOf(t testing.TB, data []byte) (map[string]slum.InstanceHealth, error) {
	var list []Instance
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, err
	}
	m := make(map[string]slum.InstanceHealth, len(list))
	for _, in := range list {
		m[in.Name] = slum.InstanceHealth(in.Health)
	}
	return m, nil
}

func TestDecodeNames(t *testing.T) {
	first, changed, err := decodeNames([]byte(sampleList), nil)
	want := map[string]slum.InstanceHealth{"api:alice--prod": "healthy", "api:bob--prod": "degraded"}
	if err != nil || !changed || !reflect.DeepEqual(first, want) {
		t.Fatalf("decodeNames = %v, %v, %v; want %v, changed", first, changed, err, want)
	}
	// The same list again: the same map back, nothing allocated.
	again, changed, err := decodeNames([]byte(sampleList), first)
	if err != nil || changed || reflect.ValueOf(again).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() {
		t.Fatalf("an unchanged list: changed %v, err %v, same map %v", changed, err, reflect.ValueOf(again).UnsafePointer() == reflect.ValueOf(first).UnsafePointer())
	}
	data := []byte(sampleList)
	if n := testing.AllocsPerRun(100, func() { decodeNames(data, first) }); n != 0 {
		t.Errorf("an unchanged list allocated %v times", n)
	}
	// The names kept are not views of the (reused) answer.
	scratch := []byte(sampleList)
	kept, _, _ := decodeNames(scratch, nil)
	for i := range scratch {
		scratch[i] = 'x'
	}
	if !reflect.DeepEqual(kept, want) {
		t.Fatalf("names kept changed with the buffer: %v", kept)
	}
	for _, tc := range []struct{ name, list string }{
		{"health changed", strings.Replace(sampleList, `"degraded"`, `"healthy"`, 1)},
		{"one gone", `[{"id":"api:alice--prod","health":"healthy"}]`},
		{"one more", strings.Replace(sampleList, `]`, `,{"id":"api:carol--prod","health":"healthy"}]`, 1)},
		{"one other", strings.Replace(sampleList, `bob`, `carol`, 1)},
		{"slow path, same names", strings.Replace(sampleList, `"api:bob--prod"`, `"api:b\u006fb--prod"`, 1)},
		{"empty", `[]`},
		{"one twice, one gone", `[{"id":"api:alice--prod","health":"healthy"},{"id":"api:alice--prod","health":"healthy"}]`},
		{"one twice, one gone, unordered", `[{"id":"api:bob--prod","health":"degraded"},{"id":"api:bob--prod","health":"degraded"}]`},
	} {
		got, changed, err := decodeNames([]byte(tc.list), first)
		wantNames, _ := namesOf(t, []byte(tc.list))
		if err != nil || !changed || !reflect.DeepEqual(got, wantNames) {
			t.Errorf("%s: decodeNames = %v, changed %v, %v; want %v, changed", tc.name, got, changed, err, wantNames)
		}
	}
	// prev's names, not in increasing order, or one of them twice: the
	// same names.
	for _, list := range []string{
		`[{"id":"api:bob--prod","health":"degraded"},{"id":"api:alice--prod","health":"healthy"}]`,
		`[{"id":"api:bob--prod","health":"degraded"},{"id":"api:alice--prod","health":"healthy"},{"id":"api:bob--prod","health":"degraded"}]`,
	} {
		got, changed, err := decodeNames([]byte(list), first)
		if err != nil || changed || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decodeNames = %v, changed %v, %v; want %v, unchanged", list, got, changed, err, want)
		}
	}
	// Out of order and unchanged, as tenement and the simulator list:
	// nothing allocated either.
	unordered := []byte(`[{"id":"api:bob--prod","health":"degraded"},{"id":"api:alice--prod","health":"healthy"}]`)
	if n := testing.AllocsPerRun(100, func() { decodeNames(unordered, first) }); n != 0 {
		t.Errorf("an unchanged list out of order allocated %v times", n)
	}
	for _, bad := range []string{``, `[`, `[{"id":}]`, `{"id":"x"}`, `[1]`, `[{"id":"x"}] x`} {
		if _, _, err := decodeNames([]byte(bad), first); err == nil {
			t.Errorf("decodeNames(%q) accepted", bad)
		}
	}
}

func FuzzDecodeNames(f *testing.F) {
	f.Add([]byte(sampleList), false)
	f.Add([]byte(`[{"id":"a","id":"b"}]`), true)
	f.Add([]byte(`[{"id":"api:alice--prod","health":"healthy"}]`), true)
	f.Add([]byte(`[{"id":"api:alice--prod","health":"healthy"},{"id":"api:alice--prod","health":"healthy"}]`), true)
	prev := map[string]slum.InstanceHealth{"api:alice--prod": "healthy", "api:bob--prod": "degraded"}
	f.Fuzz(func(t *testing.T, data []byte, withPrev bool) {
		p := map[string]slum.InstanceHealth(nil)
		if withPrev {
			p = prev
		}
		got, changed, err := decodeNames(data, p)
		want, werr := namesOf(t, data)
		if (err == nil) != (werr == nil) {
			t.Fatalf("decodeNames error %v, encoding/json error %v", err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("decodeNames = %v, encoding/json = %v", got, want)
		}
		if err == nil && !changed && !reflect.DeepEqual(want, p) {
			t.Fatalf("unchanged, yet the list says %v, not %v", want, p)
		}
	})
}
