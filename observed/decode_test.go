package observed

import (
	"encoding/json"
	"reflect"
	"testing"
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
