package observed_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum/e2e/harness"
	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/observed/sim"
)

// target is a tenement server the contract runs against.
type target struct {
	url, token string
	domain     string // of subdomain routing to its instances
	restart    func() // a server restart: every instance is lost
	kill       func() // kill -9 and start again
	// terminate sends SIGTERM; relaunch starts the server again after it.
	terminate, relaunch func()
	running             func() bool // the server process is up (nil: no process)
	idleWait            time.Duration
}

func simTarget(t *testing.T) target {
	s := sim.New(sim.Config{Token: "sim-token", Processes: map[string]sim.Process{
		"api": {}, "idle": {IdleTimeout: time.Second},
	}})
	u, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	relaunch := func() {
		s.Crash()
		if err := s.SetDown(false); err != nil {
			t.Fatal(err)
		}
	}
	kill := func() {
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		relaunch()
	}
	return target{url: u, token: "sim-token", domain: "fleet.test", restart: s.Crash, kill: kill,
		terminate: s.Terminate, relaunch: relaunch, idleWait: 4 * time.Second}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tenTarget(t *testing.T) target {
	s := harness.Start(t, harness.Options{Port: freePort(t), Services: []localfleet.Service{{Name: "api"}, {Name: "idle", IdleTimeout: 1}}})
	restart := func() {
		if err := s.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	relaunch := func() {
		if err := s.Launch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	kill := func() { s.Kill(); relaunch() }
	terminate := func() {
		if err := s.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	return target{url: s.URL, token: s.Token, domain: s.Opt.Domain, restart: restart, kill: kill,
		terminate: terminate, relaunch: relaunch, running: s.Running, idleWait: 15 * time.Second}
}

// TestContract holds the simulator and real tenement to the same behaviour.
func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(*testing.T) target
	}{{"sim", simTarget}, {"tenement", tenTarget}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.make(t)
			runContract(t, tg)
		})
	}
}

func names(t *testing.T, c *observed.Client) []string {
	t.Helper()
	list, err := c.List(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var out []string
	for _, in := range list {
		out = append(out, in.Name)
	}
	slices.Sort(out)
	return out
}

func runContract(t *testing.T, tg target) {
	ctx := context.Background()
	c, err := observed.NewClient(tg.url, tg.token)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("health needs no token", func(t *testing.T) {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("empty at start", func(t *testing.T) {
		if got := names(t, c); len(got) != 0 {
			t.Fatalf("instances at start = %v", got)
		}
	})
	t.Run("spawn is idempotent", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			res, err := c.Spawn(ctx, "api", "alice--prod")
			if err != nil {
				t.Fatalf("spawn %d: %v", i, err)
			}
			if res.Instance != "api:alice--prod" {
				t.Fatalf("spawn answered instance %q", res.Instance)
			}
		}
		if got := names(t, c); !slices.Equal(got, []string{"api:alice--prod"}) {
			t.Fatalf("after two spawns: %v", got)
		}
	})
	t.Run("list entry fields", func(t *testing.T) {
		list, err := c.List(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("list = %v, %v", list, err)
		}
		in := list[0]
		if in.Weight != 100 || in.Socket == "" {
			t.Fatalf("entry = %+v", in)
		}
		if !slices.Contains([]string{"unknown", "healthy", "degraded", "unhealthy", "failed"}, in.Health) {
			t.Fatalf("health word %q", in.Health)
		}
	})
	t.Run("health and restart of a running instance", func(t *testing.T) {
		h, err := c.Health(ctx, "api", "alice--prod")
		if err != nil || !slices.Contains([]string{"unknown", "healthy", "degraded"}, h) {
			t.Fatalf("health = %q, %v", h, err)
		}
		res, err := c.Restart(ctx, "api", "alice--prod")
		if err != nil || res.Instance != "api:alice--prod" {
			t.Fatalf("restart = %+v, %v", res, err)
		}
		if got := names(t, c); !slices.Equal(got, []string{"api:alice--prod"}) {
			t.Fatalf("after restart: %v", got)
		}
	})
	runInstanceContract(t, tg, c)
}

// runInstanceContract pins spawns, stops and what a server forgets (after
// runContract's first instance).
func runInstanceContract(t *testing.T, tg target, c *observed.Client) {
	ctx := context.Background()
	t.Run("unknown process is permanent", func(t *testing.T) {
		_, err := c.Spawn(ctx, "nope", "x--y")
		if !errors.Is(err, observed.ErrUnknownProcess) || !observed.IsPermanent(err) {
			t.Fatalf("spawn of unknown process: %v", err)
		}
	})
	t.Run("stop of absent instance succeeds", func(t *testing.T) {
		if err := c.Stop(ctx, "api", "bob--prod"); err != nil {
			t.Fatalf("stop absent: %v", err)
		}
	})
	t.Run("stop removes", func(t *testing.T) {
		if _, err := c.Spawn(ctx, "api", "carol--prod"); err != nil {
			t.Fatal(err)
		}
		if err := c.Stop(ctx, "api", "carol--prod"); err != nil {
			t.Fatal(err)
		}
		if got := names(t, c); slices.Contains(got, "api:carol--prod") {
			t.Fatalf("still listed after stop: %v", got)
		}
	})
	runLogContract(t, tg, c)
	runRestartContract(t, c)
	t.Run("bad ids are never sent", func(t *testing.T) {
		for _, id := range []string{"../x", "a/b", "", "UPPER", "a.b"} {
			_, err := c.Spawn(ctx, "api", id)
			if !errors.Is(err, observed.ErrBadRequest) {
				t.Fatalf("spawn %q: %v", id, err)
			}
		}
	})
	t.Run("restart loses every instance", func(t *testing.T) {
		if _, err := c.Spawn(ctx, "api", "dave--prod"); err != nil {
			t.Fatal(err)
		}
		tg.restart()
		if got := names(t, c); len(got) != 0 {
			t.Fatalf("after a server restart: %v", got)
		}
	})
	runServerEndContract(t, tg, c)
	t.Run("idle instances are reaped", func(t *testing.T) {
		if _, err := c.Spawn(ctx, "idle", "erin--prod"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(tg.idleWait)
		for slices.Contains(names(t, c), "idle:erin--prod") {
			if time.Now().After(deadline) {
				t.Fatalf("idle instance still listed after %v", tg.idleWait)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
	runTokenContract(t, tg, c)
}

// runTokenContract pins what bad tokens do.
func runTokenContract(t *testing.T, tg target, c *observed.Client) {
	ctx := context.Background()
	t.Run("bad token is permanent and not resent", func(t *testing.T) {
		bad, _ := observed.NewClient(tg.url, "wrong-token")
		_, err := bad.List(ctx)
		if !errors.Is(err, observed.ErrUnauthorized) || !observed.IsPermanent(err) {
			t.Fatalf("list with bad token: %v", err)
		}
		// The client refuses locally now; ten such calls must not lock the
		// good client out.
		for i := 0; i < 12; i++ {
			if _, err := bad.List(ctx); !errors.Is(err, observed.ErrUnauthorized) {
				t.Fatalf("repeat %d: %v", i, err)
			}
		}
		if _, err := c.List(ctx); err != nil {
			t.Fatalf("good client after bad client's retries: %v", err)
		}
	})
	t.Run("ten bad tokens lock everyone out for 5s", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			req, _ := http.NewRequest("GET", tg.url+"/api/instances", nil)
			req.Header.Set("Authorization", "Bearer wrong")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		good, _ := observed.NewClient(tg.url, tg.token)
		_, err := good.List(ctx)
		if !errors.Is(err, observed.ErrRateLimited) || observed.RetryAfter(err) != observed.LockoutWait {
			t.Fatalf("list during lock-out: %v", err)
		}
		if observed.IsPermanent(err) {
			t.Fatal("a lock-out is not permanent")
		}
		time.Sleep(observed.LockoutWait + 300*time.Millisecond)
		fresh, _ := observed.NewClient(tg.url, tg.token)
		if _, err := fresh.List(ctx); err != nil {
			t.Fatalf("after the lock-out: %v", err)
		}
	})
}
