package reconcile

import (
	"testing"
	"time"

	"github.com/slum-fleet/slum/observed"
)

func TestServerHealth(t *testing.T) {
	p := HealthPolicy{SuspectAfter: 2, OfflineAfter: 10 * time.Second}
	down := &observed.Error{Class: observed.ErrUnavailable, Message: "connection refused"}
	unauthorized := &observed.Error{Class: observed.ErrUnauthorized}
	limited := &observed.Error{Class: observed.ErrRateLimited}
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		steps []struct {
			at  time.Duration
			err error
		}
		want []Health
	}{
		{"online", steps(0, nil), []Health{HealthOnline}},
		{"one miss is not suspect", steps(0, nil, 1, down), []Health{HealthOnline, HealthOnline}},
		{"two misses are suspect, then offline after the grace",
			steps(0, nil, 1, down, 2, down, 5, down, 10, down, 11, nil),
			[]Health{HealthOnline, HealthOnline, HealthSuspect, HealthSuspect, HealthOffline, HealthOnline}},
		{"never seen: offline counts from start", steps(1, down, 2, down, 11, down), []Health{HealthUnknown, HealthSuspect, HealthOffline}},
		{"bad token: alive but unauthorized", steps(0, unauthorized, 1, nil), []Health{HealthUnauthorized, HealthOnline}},
		{"rate limited answers: not a miss", steps(0, nil, 1, limited, 2, limited, 3, limited), []Health{HealthOnline, HealthOnline, HealthOnline, HealthOnline}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newServerHealth(t0)
			for i, s := range tc.steps {
				h.observe(t0.Add(s.at), s.err, p)
				if h.state != tc.want[i] {
					t.Fatalf("step %d (t+%v, %v): %s, want %s", i, s.at, s.err, h.state, tc.want[i])
				}
			}
		})
	}
	h := newServerHealth(t0)
	if _, changed := h.observe(t0, nil, p); !changed {
		t.Fatal("unknown -> online not reported as a change")
	}
	if _, changed := h.observe(t0.Add(time.Second), nil, p); changed {
		t.Fatal("online -> online reported as a change")
	}
}

func steps(pairs ...any) []struct {
	at  time.Duration
	err error
} {
	var out []struct {
		at  time.Duration
		err error
	}
	for i := 0; i < len(pairs); i += 2 {
		var err error
		if pairs[i+1] != nil {
			err = pairs[i+1].(error)
		}
		out = append(out, struct {
			at  time.Duration
			err error
		}{time.Duration(pairs[i].(int)) * time.Second, err})
	}
	return out
}
