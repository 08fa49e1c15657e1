package lease

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/internal/replicamem"
	"github.com/slum-fleet/slum/replica"
)

// memStore is a Store with S3's conditional semantics, for the rule tests;
// the same behaviours run against the real store in s3_test.go.
type memStore = replicamem.Store

func newMemStore() *memStore { return replicamem.New() }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestNextStep(t *testing.T) {
	held := Record{Holder: "a", Generation: 3, State: StateHeld, TTLMillis: 2000}
	slow := held
	slow.TTLMillis = 5000
	rel, rev := held, held
	rel.State, rev.State = StateReleased, StateRevoked
	obs := func(r Record, unchanged time.Duration) Observation {
		return Observation{Present: true, Record: r, ETag: "e", Since: t0, At: t0.Add(unchanged)}
	}
	cases := []struct {
		name string
		o    Observation
		want Step
	}{
		{"absent", Observation{Since: t0, At: t0}, StepCreate},
		{"released: at once", obs(rel, 0), StepTake},
		{"held, just seen", obs(held, 0), StepWait},
		{"held, unchanged just short of ttl", obs(held, 2*time.Second-time.Millisecond), StepWait},
		{"held, unchanged a whole ttl", obs(held, 2*time.Second), StepTake},
		{"held with a longer ttl than the taker's: the holder's counts", obs(slow, 3*time.Second), StepWait},
		{"held with a longer ttl, lapsed", obs(slow, 5*time.Second), StepTake},
		{"revoked is waited for like held", obs(rev, time.Second), StepWait},
		{"revoked, lapsed", obs(rev, 2*time.Second), StepTake},
	}
	for _, c := range cases {
		if got := NextStep(c.o, 2*time.Second); got != c.want {
			t.Errorf("%s: NextStep = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestTimingValidate(t *testing.T) {
	cases := []struct {
		t  Timing
		ok bool
	}{
		{DefaultTiming, true},
		{Timing{TTL: 10 * time.Second, RenewDeadline: 6 * time.Second}, true},
		{Timing{TTL: 100 * time.Millisecond, RenewDeadline: 60 * time.Millisecond}, false}, // too short
		{Timing{TTL: 2 * time.Second, RenewDeadline: 2 * time.Second}, false},              // holder would write while taken
		{Timing{TTL: 2 * time.Second, RenewDeadline: 500 * time.Millisecond}, false},       // not above the renewal interval
		{Timing{TTL: time.Hour, RenewDeadline: time.Minute}, false},
	}
	for _, c := range cases {
		err := c.t.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%+v: Validate = %v, want ok=%v", c.t, err, c.ok)
		}
		if err != nil && !errors.Is(err, slum.ErrInvalid) {
			t.Errorf("%+v: error %v is not ErrInvalid", c.t, err)
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	for _, body := range []string{
		`not json`,
		`{"holder":"","generation":1,"state":"held","ttl_ms":2000}`,
		`{"holder":"a","generation":0,"state":"held","ttl_ms":2000}`,
		`{"holder":"a","generation":1,"state":"mine","ttl_ms":2000}`,
		`{"holder":"a","generation":1,"state":"held","ttl_ms":0}`,
		`{"holder":"a","generation":1,"state":"held","ttl_ms":2000,"db_generation":2}`,
	} {
		if _, err := decodeRecord([]byte(body)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err = %v, want ErrBadRecord", body, err)
		}
	}
	r := Record{Holder: "a", Generation: 2, State: StateHeld, DBGeneration: 2, TTLMillis: 2000, Renewal: 9}
	got, err := decodeRecord(r.encode())
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"holder":"a","generation":1,"state":"held","ttl_ms":2000}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(r.encode())
		if err != nil || again != r {
			t.Fatalf("a valid record does not round-trip: %+v → %+v, %v", r, again, err)
		}
	})
}

var loc = func() replica.Location {
	l, err := replica.ParseLocation("s3://b/tenants/alice")
	if err != nil {
		panic(err)
	}
	return l
}()

func newTestHolder(t *testing.T, st replica.Store, clk *fakeclock.Clock, id string) *Holder {
	t.Helper()
	h, err := NewHolder(st, loc, id, DefaultTiming, clk, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// acquireAsync runs Acquire in a goroutine and returns its outcome.
func acquireAsync(h *Holder) chan error {
	done := make(chan error, 1)
	go func() { _, err := h.Acquire(context.Background()); done <- err }()
	return done
}

func TestHolderTakesAHeldLeaseOnlyAfterItStaysUnchangedForTTL(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := newTestHolder(t, st, clk, "b")
	done := acquireAsync(b)
	// a renews every 500 ms for 5 s: b never takes it
	for range 10 {
		clk.WaitForWaiters(1, time.Second)
		clk.Advance(500 * time.Millisecond)
		if err := a.Renew(context.Background()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("b acquired a lease a kept renewing (%v)", err)
		default:
		}
	}
	// a stops renewing: b takes it once it has seen it unchanged for 2 s
	var waited time.Duration
	for {
		clk.WaitForWaiters(1, time.Second)
		clk.Advance(500 * time.Millisecond)
		waited += 500 * time.Millisecond
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if waited < 2*time.Second || waited > 3*time.Second {
				t.Fatalf("b took the lease %s after a's last renewal, want 2 s (+ one poll)", waited)
			}
			if b.Record().Generation != 2 || b.Record().DBGeneration != 2 {
				t.Fatalf("b's record %+v, want generation 2", b.Record())
			}
			err = a.Renew(context.Background())
			var fe *FencedError
			if !errors.As(err, &fe) || fe.Now.Holder != "b" {
				t.Fatalf("a's renewal after b took over: %v, want fenced by b", err)
			}
			return
		default:
		}
		if waited > 5*time.Second {
			t.Fatal("b never took the lapsed lease")
		}
	}
}

func TestReleasedLeaseIsTakenAtOnceAndKeepsTheDBGeneration(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := newTestHolder(t, st, clk, "b")
	acq, err := b.Acquire(context.Background()) // no clock advance needed
	if err != nil {
		t.Fatal(err)
	}
	if acq.Generation != 2 || acq.PrevDBGeneration != 1 || acq.Waited != 0 {
		t.Fatalf("acquired %+v, want generation 2 after db generation 1, no wait", acq)
	}
}

func TestRenewalLostAnswerIsAdoptedNotFenced(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	// a renewal lands but its answer is lost: simulate by writing a's next
	// record behind its back
	rec := a.Record()
	rec.Renewal++
	if _, err := st.Replace(context.Background(), loc.Key(ObjectName), rec.encode(), a.etag); err != nil {
		t.Fatal(err)
	}
	before := a.ValidUntil()
	clk.Advance(500 * time.Millisecond)
	err := a.Renew(context.Background())
	if err == nil || errors.Is(err, ErrFenced) {
		t.Fatalf("renew after a lost answer: %v, want a transient error", err)
	}
	if !a.ValidUntil().Equal(before) {
		t.Fatal("a write whose sending time is unknown extended the lease")
	}
	if err := a.Renew(context.Background()); err != nil {
		t.Fatalf("renew after adopting: %v", err)
	}
}

func TestUnreachableStoreIsTransientAndValidityRunsOut(t *testing.T) {
	st, clk := newMemStore(), fakeclock.New(t0)
	a := newTestHolder(t, st, clk, "a")
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(DefaultTiming.RenewDeadline); !a.ValidUntil().Equal(want) {
		t.Fatalf("valid until %v, want %v", a.ValidUntil(), want)
	}
	st.Fail(errors.New("connection refused"))
	clk.Advance(500 * time.Millisecond)
	if err := a.Renew(context.Background()); err == nil || errors.Is(err, ErrFenced) {
		t.Fatalf("renew against a down store: %v, want transient", err)
	}
	if !a.ValidUntil().Equal(t0.Add(DefaultTiming.RenewDeadline)) {
		t.Fatal("a failed renewal moved ValidUntil")
	}
	st.Fail(nil)
	if err := a.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(500*time.Millisecond + DefaultTiming.RenewDeadline); !a.ValidUntil().Equal(want) {
		t.Fatalf("valid until %v after renewing again, want %v", a.ValidUntil(), want)
	}
}

// TestHolderNamesItsServerInEveryWrite: slum acts on a lease by the server
// its record names, so the name is in the record from the take on, through
// renewals and the release.
func TestHolderNamesItsServerInEveryWrite(t *testing.T) {
	ctx := context.Background()
	st, clk := newMemStore(), fakeclock.New(t0)
	h := newTestHolder(t, st, clk, "a--prod@host/pid1/x")
	h.OnServer("eu-1")
	w := NewWatcher(st, loc, clk)
	check := func(step string, state State) {
		t.Helper()
		o, err := w.Observe(ctx)
		if err != nil || o.Record.Server != "eu-1" || o.Record.State != state {
			t.Fatalf("after %s: %+v %v", step, o.Record, err)
		}
		if d := o.Record.Describe(); !strings.Contains(d, "on server eu-1") {
			t.Fatalf("after %s: %q does not name the server", step, d)
		}
	}
	if _, err := h.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	check("acquire", StateHeld)
	if err := h.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	check("renew", StateHeld)
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	check("release", StateReleased)
}

// TestHolderTakesAtOnceFromAHolderProvedGone: a lease whose holder the
// caller proves gone is taken without waiting for the TTL; one it cannot
// prove gone is waited for as ever.
func TestHolderTakesAtOnceFromAHolderProvedGone(t *testing.T) {
	ctx := context.Background()
	st, clk := newMemStore(), fakeclock.New(t0)
	old := newTestHolder(t, st, clk, "a--prod@host/pid1/x")
	if _, err := old.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	waits := newTestHolder(t, st, clk, "a--prod@host/pid3/z")
	waits.TakeFromGone(func(Record) bool { return false })
	done := acquireAsync(waits)
	clk.WaitForWaiters(1, time.Second)
	select {
	case err := <-done:
		t.Fatalf("took a lease it could not prove gone at once (%v)", err)
	default:
	}
	next := newTestHolder(t, st, clk, "a--prod@host/pid2/y")
	var asked Record
	next.TakeFromGone(func(r Record) bool { asked = r; return r.Holder == "a--prod@host/pid1/x" })
	acq, err := next.Acquire(ctx) // no clock advance: at once
	if err != nil {
		t.Fatal(err)
	}
	if acq.Generation != 2 || asked.Holder != "a--prod@host/pid1/x" {
		t.Fatalf("acquired %+v after asking about %+v", acq, asked)
	}
	if err := old.Renew(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("the gone holder's renewal: %v", err)
	}
}
