package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/chromedp/chromedp"

	"github.com/slum-fleet/slum/api"
	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/internal/browser"
	"github.com/slum-fleet/slum/observed/sim"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// dashFleet is a live fleet for the dashboard's browser tests: a
// controller with its router and API ('slum run --route-addr --api-addr',
// the same stack) over simulated servers s1, s2 (eu) and s3 (us), with
// alice (prod on s1, backup on s3), bob (on s2) and carol (on s3), and
// extra tenants more.
type dashFleet struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	sims  map[string]*sim.Server
	stk   *stack
	token string
}

func startDashFleet(t *testing.T, ctx context.Context, more int) *dashFleet {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &dashFleet{t: t, ctx: ctx, st: st, sims: map[string]*sim.Server{}}
	set := slum.DefaultSettings()
	// A killed server refuses connections at once; the timeout is long
	// enough that a server busy with the test's load is not taken for dead.
	set.ProbeInterval, set.ProbeTimeout, set.DeadAfter, set.StableAfter = 100*time.Millisecond, 500*time.Millisecond, 2, 0
	if _, err := st.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	for i, region := range []string{"eu", "eu", "us"} {
		id := fmt.Sprintf("s%d", i+1)
		s := sim.New(sim.Config{Token: "tok-" + id, Processes: map[string]sim.Process{"api": {}}})
		url, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		f.sims[id] = s
		if _, err := st.AddServer(ctx, slum.Server{ID: id, URL: url, Region: region, CapacityMB: 2048 + int64(more), Token: "tok-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	f.addTenants(more)
	if _, f.token, err = st.CreateAPIToken(ctx, slum.RoleAdmin, "browser"); err != nil {
		t.Fatal(err)
	}
	f.startStack()
	return f
}

func (f *dashFleet) addTenants(more int) {
	t, ctx, st := f.t, f.ctx, f.st
	for _, tn := range []struct{ id, server string }{{"alice", "s1"}, {"bob", "s2"}, {"carol", "s3"}} {
		if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: tn.id, Domain: tn.id + ".example.com"},
			slum.InstanceSpec{ID: "prod", Process: "api", ServerID: tn.server, MemoryMB: 512}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "backup", Process: "api", ServerID: "s3"}); err != nil {
		t.Fatal(err)
	}
	for i := range more {
		id := fmt.Sprintf("t%04d", i)
		if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: id, Domain: id + ".example.com"},
			slum.InstanceSpec{ID: "prod", Process: "api", ServerID: fmt.Sprintf("s%d", i%3+1), MemoryMB: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *dashFleet) startStack() {
	cfg := reconcile.DefaultConfig()
	cfg.PollInterval, cfg.FlushInterval, cfg.ProbeRetry = 300*time.Millisecond, 30*time.Millisecond, 50*time.Millisecond
	cfg.Backoff = reconcile.BackoffPolicy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	rf := routeFlags{server: router.DefaultServerConfig(), proxy: router.DefaultConfig()}
	rf.server.Addr = "127.0.0.1:0"
	stk, err := startStack(f.ctx, f.st, stackOptions{cfg: cfg, route: &rf, api: &apiServeFlags{listen: api.ListenConfig{Addr: "127.0.0.1:0"}},
		leaseTTL: 5 * time.Second, traffic: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = stk.Stop() })
	f.stk = stk
}

// load sends requests for each tenant through the router until ctx ends.
func (f *dashFleet) load(ctx context.Context, tenants ...string) {
	for _, tn := range tenants {
		go func() {
			c := &http.Client{Timeout: 2 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+f.stk.RouterAddr+"/", nil)
				req.Host = tn + ".example.com"
				if res, err := c.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
}

// openDashboard starts a live fleet with more extra tenants and a
// browser signed in to its dashboard.
func openDashboard(t *testing.T, more int) (*dashFleet, *browser.Tab) {
	chromium := browser.FindChromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := startDashFleet(t, ctx, more)
	b := browser.Start(t, chromium)
	f.signIn(b)
	return f, b
}

// signIn opens the dashboard and signs in with the fleet's admin token.
func (f *dashFleet) signIn(b *browser.Tab) {
	b.Do("sign in", chromedp.Navigate(f.stk.APIURL+"/"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", f.token), chromedp.Click("#login-form button"))
}

// The dashboard in a real browser over a live fleet: it lists the
// servers, draws traffic as it flows through the router, shows a server
// going offline and the failover that follows on the timeline without a
// reload, a tenant moved by hand, a tenant's page opened by search, and
// the page in a phone-sized window. Screenshots of each step go to the
// directory it prints.
func TestDashboardInABrowser(t *testing.T) {
	f, b := openDashboard(t, 0)
	dashboardConverges(t, b, f)
	dashboardShowsTraffic(t, b, f)
	dashboardShowsFailover(t, b, f)
	dashboardShowsMove(t, b, f)
	dashboardShowsRollout(t, b, f)
	dashboardOpensTenantBySearch(b)
	dashboardFitsAPhone(t, b)
	dashboardTakesEventsOnlyBatches(t, b, f)
}

func dashboardConverges(t *testing.T, b *browser.Tab, f *dashFleet) {
	b.Until("the three servers", `document.querySelectorAll("[data-server]").length === 3`, 10*time.Second)
	b.Until("every server online and every instance running",
		`[...document.querySelectorAll("[data-server]")].every(e => e.dataset.health === "online") &&
		 [...document.querySelectorAll("[data-instance]")].length === 4 &&
		 [...document.querySelectorAll("[data-instance]")].every(e => e.dataset.phase === "running")`, 15*time.Second)
	if got := b.Eval(`[...document.querySelectorAll("[data-server]")].map(e => e.dataset.server).join(",")`); got != "s1,s2,s3" {
		t.Fatalf("servers on the page: %s", got)
	}
	if sessionToken := b.Eval(`sessionStorage.getItem("slum.token") || ""`); sessionToken != f.token || b.Eval(`localStorage.length + ""`) != "0" {
		t.Fatal("the token is not kept in the session only")
	}
	b.Screenshot("converged")
}

// Traffic sent through the router shows on the fleet's chart, on the
// serving server's and as the tenant's rate.
func dashboardShowsTraffic(t *testing.T, b *browser.Tab, f *dashFleet) {
	lctx, stop := context.WithCancel(f.ctx)
	t.Cleanup(stop)
	f.load(lctx, "alice", "bob", "bob", "carol")
	b.Until("traffic on the fleet's chart", `+document.getElementById("fleet-chart").dataset.peak > 5`, 20*time.Second)
	b.Until("bob's rate", `(document.querySelector('[data-tenant="bob"] .rate-num') || {}).textContent?.endsWith("/s") &&
		document.querySelector('[data-tenant="bob"] .rate-num').textContent !== "0/s"`, 10*time.Second)
	b.Until("s2's upstream rate", `!/^–/.test(document.querySelector('[data-server="s2"] .k-rps b').textContent)`, 10*time.Second)
	t.Logf("traffic on the page: fleet %s, bob %s", b.Eval(`document.querySelector('[data-role="fleet-rps"]').textContent`),
		b.Eval(`document.querySelector('[data-tenant="bob"] .rate-num').textContent`))
	b.Screenshot("traffic")
}

// A server goes offline: the page shows it dead, the failover drawn on
// the timeline, and what the dead server ran and where it went, all
// without starting over.
func dashboardShowsFailover(t *testing.T, b *browser.Tab, f *dashFleet) {
	resets := b.Eval(`document.getElementById("live").dataset.resets`)
	if err := f.sims["s2"].Kill(); err != nil {
		t.Fatal(err)
	}
	dead := waitDB(t, "s2 dead", func() bool {
		s, err := f.st.ServerStatus(f.ctx, "s2")
		return err == nil && s.Health == "dead"
	})
	shown := b.Until("s2 dead", `document.querySelector('[data-server="s2"]').dataset.health === "dead"`, 5*time.Second)
	if d := shown.Sub(dead); d > time.Second {
		t.Errorf("the page showed s2 dead %s after the database", d)
	} else {
		t.Logf("s2 dead: on the page %s after the database", d.Round(time.Millisecond))
	}
	moved := waitDB(t, "bob failed over", func() bool {
		in, err := f.st.GetInstance(f.ctx, "bob:prod")
		return err == nil && in.ServerID != "s2"
	})
	in, _ := f.st.GetInstance(f.ctx, "bob:prod")
	shown = b.Until("bob on "+in.ServerID, `!!document.querySelector('[data-server="`+in.ServerID+`"] [data-instance="bob:prod"]')`, 5*time.Second)
	if d := shown.Sub(moved); d > time.Second {
		t.Errorf("the page showed bob's failover %s after the database", d)
	} else {
		t.Logf("bob failed over to %s: on the page %s after the database", in.ServerID, d.Round(time.Millisecond))
	}
	b.Until("bob served again", `(document.querySelector('[data-tenant="bob"] [data-serving-copy]') || {}).dataset?.servingCopy === "prod@`+in.ServerID+`"`, 10*time.Second)
	b.Until("the failover on the timeline", `!!document.querySelector('[data-failover="s2"]') &&
		["suspect", "dead", "placed", "replaced", "served"].every(k => document.querySelector('#timeline [data-mark="' + k + '"]'))`, 5*time.Second)
	b.Until("what s2 ran, and where it went", `!!document.querySelector('[data-server="s2"] [data-went="bob:prod"]')`, 2*time.Second)
	if got := b.Eval(`document.getElementById("live").dataset.resets`); got != resets {
		t.Errorf("the failover made the page start over (%s resets, was %s)", got, resets)
	}
	t.Logf("timeline: %s", b.Eval(`document.querySelector('[data-failover="s2"]').textContent`))
	b.Screenshot("failover")
}

// A tenant moved by hand.
func dashboardShowsMove(t *testing.T, b *browser.Tab, f *dashFleet) {
	start := time.Now()
	if _, err := f.st.MoveInstance(f.ctx, "carol:prod", "s1"); err != nil {
		t.Fatal(err)
	}
	shown := b.Until("carol on s1", `!!document.querySelector('[data-server="s1"] [data-instance="carol:prod"]')`, 5*time.Second)
	if d := shown.Sub(start); d > time.Second {
		t.Errorf("the page showed carol's move %s after the commit", d)
	} else {
		t.Logf("carol moved: on the page %s after the commit", d.Round(time.Millisecond))
	}
	b.Until("carol served from s1", `(document.querySelector('[data-tenant="carol"] [data-serving-copy]') || {}).dataset?.servingCopy === "prod@s1"`, 10*time.Second)
	b.Until("the events", `[...document.querySelectorAll("[data-event]")].some(e => e.dataset.event === "ServerDead")`, 2*time.Second)
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}$`).MatchString(b.Eval(`document.querySelector("#events time").textContent`)) {
		t.Error("events are not stamped to the millisecond")
	}
	if b.Eval(`document.getElementById("live").dataset.state`) != "live" {
		t.Error("the page does not say it is live")
	}
	b.Screenshot("moved")
}

// A rolling restart of alice's two copies, started through the API as
// 'slum --api … restart alice' does: the page draws it and its steps
// without a reload, and says when it is done.
func dashboardShowsRollout(t *testing.T, b *browser.Tab, f *dashFleet) {
	c, err := client.New(f.stk.APIURL, f.token, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ro, err := c.Restart(f.ctx, slum.RestartSpec{Tenant: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	sel := fmt.Sprintf(`document.querySelector('[data-rollout="%d"]')`, ro.ID)
	b.Until("the rollout on the page", `!!`+sel, 5*time.Second)
	b.Until("the rollout done", sel+`.dataset.state === "done" &&
		`+sel+`.querySelector('[data-role="ro-counts"]').textContent.startsWith("2 of 2 restarted") &&
		[...`+sel+`.querySelectorAll("[data-step-state]")].every(e => e.dataset.stepState === "done")`, 30*time.Second)
	if got := b.Eval(`[...` + sel + `.querySelectorAll("[data-step]")].map(e => e.dataset.step).join(",")`); got != "alice:backup,alice:prod" {
		t.Errorf("the rollout's steps on the page: %s, want the spare first, then the copy that served", got)
	}
	b.Screenshot("rollout")
}

// Typing part of a tenant's name and Enter, keyboard only, opens its page:
// its copies, traffic (its own p50 and p99 too) and live log; Escape
// closes it.
func dashboardOpensTenantBySearch(b *browser.Tab) {
	b.OpenTenantBySearch("car", "carol", "carol:prod")
	b.Until("carol's live log", `/following|ended|closed/.test(document.getElementById("tp-log-state").textContent) &&
		document.querySelectorAll("#tp-log .logline").length > 0`, 10*time.Second)
	b.Screenshot("tenant")
	b.Do("close", chromedp.KeyEvent("\x1b"))
	b.Until("the page closed", `document.getElementById("tenant-page").hidden`, 2*time.Second)
	b.Do("clear the search", chromedp.Focus("#search"), chromedp.KeyEvent("\x1b"))
}

// In a phone-sized window nothing is wider than the screen.
func dashboardFitsAPhone(t *testing.T, b *browser.Tab) {
	b.Do("phone", chromedp.EmulateViewport(390, 844))
	b.Until("a layout that fits", `document.documentElement.scrollWidth <= window.innerWidth + 1`, 3*time.Second)
	b.Screenshot("phone")
	b.Do("desktop", chromedp.EmulateViewport(1400, 900))
}

// A batch that carries only events (an API token made: no object
// changes) is shown like any other, without the page starting over.
func dashboardTakesEventsOnlyBatches(t *testing.T, b *browser.Tab, f *dashFleet) {
	resets := b.Eval(`document.getElementById("live").dataset.resets`)
	if _, _, err := f.st.CreateAPIToken(f.ctx, slum.RoleRead, "events-only"); err != nil {
		t.Fatal(err)
	}
	b.Until("the token's event", `[...document.querySelectorAll("[data-event]")].some(e => e.textContent.includes("events-only"))`, 3*time.Second)
	if got := b.Eval(`document.getElementById("live").dataset.resets`); got != resets {
		t.Errorf("an events-only batch made the page start over (%s resets, was %s)", got, resets)
	}
}

// With 1,000 tenants the page renders the whole fleet within a second of
// signing in and applies a watch batch within 50 ms, as the browser
// measures (window.slumPerf: sign-in click to the first reset drawn; a
// batch's arrival to its draw done).
func TestDashboardWithAThousandTenants(t *testing.T) {
	f, b := openDashboard(t, 1000)
	ctx := f.ctx
	b.Until("1,003 tenants", `document.getElementById("tenant-count").textContent.includes("1003")`, 20*time.Second)
	first := b.Eval(`String(window.slumPerf.firstRender.toFixed(1))`)
	t.Logf("1,003 tenants: first render %s ms after signing in (draw alone %s ms)", first, b.Eval(`String(window.slumPerf.firstDraw.toFixed(1))`))
	// Under the race detector the API's answer, not the page, is slow:
	// then only the page's own drawing is held to the second.
	limitOn := first
	if raceEnabled {
		limitOn = b.Eval(`String(window.slumPerf.firstDraw.toFixed(1))`)
	}
	if ms, _ := strconv.ParseFloat(limitOn, 64); ms > 1000 {
		t.Errorf("first render took %s ms, over 1 s", limitOn)
	}
	b.Until("the controller settled", `[...state.objects.instance.values()].filter(i => i.status && i.status.phase === "running").length >= 1004`, 60*time.Second)
	b.Eval(`String(window.slumPerf.batches.length = window.slumPerf.shown.length = 0)`)
	for i := range 10 {
		if _, err := f.st.UpdateTenant(ctx, fmt.Sprintf("t%04d", i), slum.TenantUpdate{Region: ptr("eu")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	b.Until("ten batches", `window.slumPerf.batches.length >= 10`, 10*time.Second)
	worst := b.Eval(`String(Math.max(...window.slumPerf.batches).toFixed(1))`)
	t.Logf("1,003 tenants: a watch batch applied (read and drawn) in %s ms at worst, median %s ms, of %s; on screen %s ms after it arrived at worst (the browser's next frame included); the last draw by part (ms): %s",
		worst, b.Eval(`String(window.slumPerf.batches.slice().sort((a, b) => a - b)[window.slumPerf.batches.length >> 1].toFixed(1))`),
		b.Eval(`String(window.slumPerf.batches.length)`), b.Eval(`String(Math.max(...window.slumPerf.shown).toFixed(1))`),
		b.Eval(`JSON.stringify(window.slumPerf.sections)`))
	// The median: a busy machine (CI's is not) stalls some batches' reads
	// for reasons not the page's; the worst is in the log above. Under the
	// race detector the figures are logged only.
	median := b.Eval(`String(window.slumPerf.batches.slice().sort((a, b) => a - b)[window.slumPerf.batches.length >> 1].toFixed(1))`)
	if ms, _ := strconv.ParseFloat(median, 64); ms > 50 && !raceEnabled {
		t.Errorf("a batch took %s ms (median), over 50", median)
	}
	b.Screenshot("thousand")
}

func ptr[T any](v T) *T { return &v }

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
	chromium := browser.FindChromium(t)
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

	b := browser.Start(t, chromium)
	b.Do("sign in as a reader", chromedp.Navigate(url+"/"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", reader), chromedp.Click("#login-form button"))
	b.Until("the held plan", `!!document.querySelector('[data-hold-id="1"]')`, 10*time.Second)
	if b.Eval(`String(!!document.querySelector('[data-hold="1"]'))`) != "false" {
		t.Fatal("a read token is offered the Approve button")
	}
	b.Do("sign out", chromedp.Click("#signout"), chromedp.WaitVisible("#token"))
	if b.Eval(`sessionStorage.getItem("slum.token") || ""`) != "" {
		t.Fatal("signing out kept the token")
	}
	b.Do("sign in as an admin", chromedp.SendKeys("#token", admin), chromedp.Click("#login-form button"))
	b.Until("the Approve button", `!!document.querySelector('[data-hold="1"]')`, 10*time.Second)
	b.Screenshot("held")
	b.Do("approve", chromedp.Click(`[data-hold="1"]`))
	b.Until("the plan approved", `document.querySelector('[data-hold-id="1"]').classList.contains("approved")`, 5*time.Second)
	holds, err := st.RecentHolds(ctx, 1)
	if err != nil || len(holds) != 1 || holds[0].State != slum.HoldApproved || holds[0].ApprovedBy != "dashboard via API token 1 (ann)" {
		t.Fatalf("the hold after the click: %+v %v", holds, err)
	}
}
