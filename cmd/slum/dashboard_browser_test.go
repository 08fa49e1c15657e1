package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/chromedp/chromedp"

	"github.com/slum-fleet/slum/api"
	"github.com/slum-fleet/slum/observed/sim"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/sqlite"
)

// findChromium is Debian's Chromium (or another Chrome) on PATH. In CI
// (CI=true) a missing browser fails the test; elsewhere it skips, loudly.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no Chromium on PATH (scripts/setup.sh installs Debian's chromium): the dashboard is not tested in a browser"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	fmt.Fprintln(os.Stderr, "SKIP: "+why)
	t.Skip(why)
	return ""
}

// artifactDir is where screenshots go: $SLUM_TEST_ARTIFACTS, or the
// test's temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("SLUM_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is a headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func startBrowser(t *testing.T, path string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser: no deadline on it, as one
	// would stop the browser with it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}

// until polls the page until js is "true", and returns when it was.
func (b *browser) until(what, js string, limit time.Duration) time.Time {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if b.eval("String(!!("+js+"))") == "true" {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.screenshot("failed")
			b.t.Fatalf("the page did not show %s within %s", what, limit)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	// Let the highlights of what just changed fade, for a picture of the
	// page as a person sees it a moment later.
	_ = chromedp.Do(ctx, chromedp.Sleep(1600*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	path := filepath.Join(artifactDir(b.t), "dashboard-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// The dashboard in a real browser, over the API of a running controller
// ('slum run --api-addr', the same stack) on simulated servers: it lists
// the servers, and shows a server going offline, the failover that
// follows and a tenant moved by hand, each within a second of the
// database saying so.
func TestDashboardInABrowser(t *testing.T) {
	chromium := findChromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	set := slum.DefaultSettings()
	set.ProbeInterval, set.ProbeTimeout, set.DeadAfter, set.StableAfter = 100*time.Millisecond, 80*time.Millisecond, 2, 0
	if _, err := st.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	sims := map[string]*sim.Server{}
	for i, region := range []string{"eu", "eu", "us"} {
		id := fmt.Sprintf("s%d", i+1)
		s := sim.New(sim.Config{Token: "tok-" + id, Processes: map[string]sim.Process{"api": {}}})
		url, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sims[id] = s
		if _, err := st.AddServer(ctx, slum.Server{ID: id, URL: url, Region: region, CapacityMB: 2048, Token: "tok-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range []struct{ id, server string }{{"alice", "s1"}, {"bob", "s2"}, {"carol", "s3"}} {
		if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: tn.id, Domain: tn.id + ".example.com"},
			slum.InstanceSpec{ID: "prod", Process: "api", ServerID: tn.server, MemoryMB: 512}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "backup", Process: "api", ServerID: "s3"}); err != nil {
		t.Fatal(err)
	}
	_, token, err := st.CreateAPIToken(ctx, slum.RoleAdmin, "browser")
	if err != nil {
		t.Fatal(err)
	}
	cfg := reconcile.DefaultConfig()
	cfg.PollInterval, cfg.FlushInterval, cfg.ProbeRetry = 300*time.Millisecond, 30*time.Millisecond, 50*time.Millisecond
	cfg.Backoff = reconcile.BackoffPolicy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	stk, err := startStack(ctx, st, stackOptions{cfg: cfg, api: &apiServeFlags{listen: api.ListenConfig{Addr: "127.0.0.1:0"}},
		leaseTTL: 5 * time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stk.Stop() }()

	b := startBrowser(t, chromium)
	b.do("sign in", chromedp.Navigate(stk.APIURL+"/"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token), chromedp.Click("#login-form button"))
	b.until("the three servers", `document.querySelectorAll("[data-server]").length === 3`, 10*time.Second)
	b.until("every server online and every instance running",
		`[...document.querySelectorAll("[data-server]")].every(e => e.dataset.health === "online") &&
		 [...document.querySelectorAll("[data-instance]")].length === 4 &&
		 [...document.querySelectorAll("[data-instance]")].every(e => e.dataset.phase === "running")`, 15*time.Second)
	if got := b.eval(`[...document.querySelectorAll("[data-server]")].map(e => e.dataset.server).join(",")`); got != "s1,s2,s3" {
		t.Fatalf("servers on the page: %s", got)
	}
	if sessionToken := b.eval(`sessionStorage.getItem("slum.token") || ""`); sessionToken != token || b.eval(`localStorage.length + ""`) != "0" {
		t.Fatal("the token is not kept in the session only")
	}
	b.screenshot("converged")

	// A server goes offline: the page shows it dead within a second of
	// the database.
	if err := sims["s2"].Kill(); err != nil {
		t.Fatal(err)
	}
	dead := waitDB(t, "s2 dead", func() bool {
		s, err := st.ServerStatus(ctx, "s2")
		return err == nil && s.Health == "dead"
	})
	shown := b.until("s2 dead", `document.querySelector('[data-server="s2"]').dataset.health === "dead"`, 5*time.Second)
	if d := shown.Sub(dead); d > time.Second {
		t.Errorf("the page showed s2 dead %s after the database", d)
	} else {
		t.Logf("s2 dead: on the page %s after the database", d.Round(time.Millisecond))
	}
	// Its tenant fails over: bob's instance lands on another server.
	moved := waitDB(t, "bob failed over", func() bool {
		in, err := st.GetInstance(ctx, "bob:prod")
		return err == nil && in.ServerID != "s2"
	})
	in, _ := st.GetInstance(ctx, "bob:prod")
	shown = b.until("bob on "+in.ServerID, `!!document.querySelector('[data-server="`+in.ServerID+`"] [data-instance="bob:prod"]')`, 5*time.Second)
	if d := shown.Sub(moved); d > time.Second {
		t.Errorf("the page showed bob's failover %s after the database", d)
	} else {
		t.Logf("bob failed over to %s: on the page %s after the database", in.ServerID, shown.Sub(moved).Round(time.Millisecond))
	}
	b.until("bob served again", `(document.querySelector('[data-tenant="bob"] [data-serving-copy]') || {}).dataset?.servingCopy === "prod@`+in.ServerID+`"`, 10*time.Second)
	b.screenshot("failover")

	// A tenant moved by hand.
	start := time.Now()
	if _, err := st.MoveInstance(ctx, "carol:prod", "s1"); err != nil {
		t.Fatal(err)
	}
	shown = b.until("carol on s1", `!!document.querySelector('[data-server="s1"] [data-instance="carol:prod"]')`, 5*time.Second)
	if d := shown.Sub(start); d > time.Second {
		t.Errorf("the page showed carol's move %s after the commit", d)
	} else {
		t.Logf("carol moved: on the page %s after the commit", d.Round(time.Millisecond))
	}
	b.until("carol served from s1", `(document.querySelector('[data-tenant="carol"] [data-serving-copy]') || {}).dataset?.servingCopy === "prod@s1"`, 10*time.Second)
	b.until("the events", `[...document.querySelectorAll("[data-event]")].some(e => e.dataset.event === "ServerDead")`, 2*time.Second)
	if b.eval(`document.getElementById("live").dataset.state`) != "live" {
		t.Error("the page does not say it is live")
	}
	b.screenshot("moved")

	// A batch that carries only events (an API token made: no object
	// changes) is shown like any other, without the page starting over.
	resets := b.eval(`document.getElementById("live").dataset.resets`)
	if _, _, err := st.CreateAPIToken(ctx, slum.RoleRead, "events-only"); err != nil {
		t.Fatal(err)
	}
	b.until("the token's event", `[...document.querySelectorAll("[data-event]")].some(e => e.textContent.includes("events-only"))`, 3*time.Second)
	if got := b.eval(`document.getElementById("live").dataset.resets`); got != resets {
		t.Errorf("an events-only batch made the page start over (%s resets, was %s)", got, resets)
	}
}

// waitDB waits for the database to say something, and returns when.
func waitDB(t *testing.T, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("the database never said %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Now()
}

// A held plan shows with its Approve button for admin tokens only, and the
// button approves it once.
func TestDashboardApprovesAHeldPlan(t *testing.T) {
	chromium := findChromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	db := filepath.Join(dir, "slum.db")
	expect(t, cliLocal(t, db, "", "server", "add", "s1", "--url", "http://10.0.0.1:8080", "--capacity-mb", "1000", "--no-token"), 0, "added", "")
	ledger(t, db, holdRow)
	st, err := sqlite.OpenExisting(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, admin, _ := st.CreateAPIToken(ctx, slum.RoleAdmin, "ann")
	_, reader, _ := st.CreateAPIToken(ctx, slum.RoleRead, "viewer")
	af := apiServeFlags{listen: api.ListenConfig{Addr: "127.0.0.1:0"}}
	url, done, err := af.start(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()

	b := startBrowser(t, chromium)
	b.do("sign in as a reader", chromedp.Navigate(url+"/"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", reader), chromedp.Click("#login-form button"))
	b.until("the held plan", `!!document.querySelector('[data-hold-id="1"]')`, 10*time.Second)
	if b.eval(`String(!!document.querySelector('[data-hold="1"]'))`) != "false" {
		t.Fatal("a read token is offered the Approve button")
	}
	b.do("sign out", chromedp.Click("#signout"), chromedp.WaitVisible("#token"))
	if b.eval(`sessionStorage.getItem("slum.token") || ""`) != "" {
		t.Fatal("signing out kept the token")
	}
	b.do("sign in as an admin", chromedp.SendKeys("#token", admin), chromedp.Click("#login-form button"))
	b.until("the Approve button", `!!document.querySelector('[data-hold="1"]')`, 10*time.Second)
	b.screenshot("held")
	b.do("approve", chromedp.Click(`[data-hold="1"]`))
	b.until("the plan approved", `document.querySelector('[data-hold-id="1"]').classList.contains("approved")`, 5*time.Second)
	holds, err := st.RecentHolds(ctx, 1)
	if err != nil || len(holds) != 1 || holds[0].State != slum.HoldApproved || holds[0].ApprovedBy != "dashboard via API token 1 (ann)" {
		t.Fatalf("the hold after the click: %+v %v", holds, err)
	}
}
