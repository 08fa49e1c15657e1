package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/internal/browser"
)

// TestDashboardOverRealTenement drives the dashboard of 'slum run
// --route-addr --api-addr' in headless Chromium over three real tenement
// servers: sign in, traffic sent through the router moving on the charts,
// kill -9 of a server and its failover drawn on the timeline without a
// reload, a tenant's page opened by search. Screenshots of each step
// (e2e-dashboard-*.png) go to $SLUM_TEST_ARTIFACTS or the directory the
// test prints.
func TestDashboardOverRealTenement(t *testing.T) {
	chromium := browser.FindChromium(t)
	e := newEnv(t)
	router, apiAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	e.slum("apply", "-f", e.fleetFile("fleet.yaml", failoverTenants))
	e.startRun("--route-addr", router, "--api-addr", apiAddr)
	e.converge(map[string][]string{"s1": {"api:alice--prod", "api:bob--prod", "api:carol--prod"},
		"s2": {"api:alice--backup"}, "s3": {"api:dave--prod"}}, 60*time.Second)
	tok := e.dir + "/admin.token"
	e.slum("token", "create", "--role", "admin", "--name", "dashboard", "--out", tok)
	token, err := os.ReadFile(tok)
	if err != nil {
		t.Fatal(err)
	}

	b := browser.Start(t, chromium)
	b.Prefix = "e2e-dashboard-"
	b.Do("sign in", chromedp.Navigate("http://"+apiAddr+"/"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", strings.TrimSpace(string(token))), chromedp.Click("#login-form button"))
	b.Until("every server online and every instance running",
		`document.querySelectorAll("[data-server]").length === 3 &&
		 [...document.querySelectorAll("[data-server]")].every(e => e.dataset.health === "online") &&
		 document.querySelectorAll("[data-instance]").length === 5 &&
		 [...document.querySelectorAll("[data-instance]")].every(e => e.dataset.phase === "running")`, 20*time.Second)
	b.Screenshot("signed-in")

	tenants := []string{"alice", "bob", "dave"}
	for _, tn := range tenants {
		eventually(t, 10*time.Second, tn+" served through the router", func() bool { return through(router, tn+".example.com").status == 200 })
	}
	l := startTenantLoad(router, tenants)
	defer l.end()
	dashboardTraffic(t, b)
	dashboardFailover(t, e, b)
	dashboardSearch(t, b)
}

// Traffic through the router shows on the fleet's chart, as bob's rate
// and as s1's upstream rate.
func dashboardTraffic(t *testing.T, b *browser.Tab) {
	b.Until("traffic on the fleet's chart", `+document.getElementById("fleet-chart").dataset.peak > 5`, 30*time.Second)
	b.Until("bob's rate", `(document.querySelector('[data-tenant="bob"] .rate-num') || {}).textContent?.endsWith("/s") &&
		document.querySelector('[data-tenant="bob"] .rate-num').textContent !== "0/s"`, 15*time.Second)
	b.Until("s1's upstream rate", `!/^–/.test(document.querySelector('[data-server="s1"] .k-rps b').textContent)`, 15*time.Second)
	t.Logf("traffic on the page: fleet %s, bob %s, s1 %s", b.Eval(`document.querySelector('[data-role="fleet-rps"]').textContent`),
		b.Eval(`document.querySelector('[data-tenant="bob"] .rate-num').textContent`),
		b.Eval(`document.querySelector('[data-server="s1"] .k-rps b').textContent`))
	b.Screenshot("traffic")
}

// kill -9 of s1: the page shows it dead, bob failed over, alice served
// by her spare and the failover on the timeline, without starting over.
func dashboardFailover(t *testing.T, e *env, b *browser.Tab) {
	ctx := context.Background()
	st := e.store()
	resets := b.Eval(`document.getElementById("live").dataset.resets`)
	s1 := e.member("s1")
	s1.Ten.Kill()
	defer func() { _ = s1.Ten.Launch(context.Background()) }()
	killed := time.Now()
	eventually(t, 15*time.Second, "s1 declared dead", func() bool { return serverStatus(t, st, "s1").Health == slum.HealthDead })
	dead := time.Now()
	shown := b.Until("s1 dead", `document.querySelector('[data-server="s1"]').dataset.health === "dead"`, 5*time.Second)
	figure(t, "dashboard: s1 dead on the page after the database", shown.Sub(dead))
	var to string
	eventually(t, 20*time.Second, "bob failed over", func() bool {
		in, err := st.GetInstance(ctx, "bob:prod")
		to = in.ServerID
		return err == nil && in.ServerID != "s1"
	})
	b.Until("bob on "+to, `!!document.querySelector('[data-server="`+to+`"] [data-instance="bob:prod"]')`, 5*time.Second)
	b.Until("bob served again", `(document.querySelector('[data-tenant="bob"] [data-serving-copy]') || {}).dataset?.servingCopy === "prod@`+to+`"`, 15*time.Second)
	b.Until("alice served by her spare", `(document.querySelector('[data-tenant="alice"] [data-serving-copy]') || {}).dataset?.servingCopy === "backup@s2"`, 10*time.Second)
	drawn := b.Until("the failover on the timeline", `!!document.querySelector('[data-failover="s1"]') &&
		["dead", "placed", "replaced", "served"].every(k => document.querySelector('#timeline [data-mark="' + k + '"]'))`, 15*time.Second)
	figure(t, "dashboard: kill -9 -> failover drawn on the timeline", drawn.Sub(killed))
	b.Until("what s1 ran, and where it went", `!!document.querySelector('[data-server="s1"] [data-went="bob:prod"]')`, 5*time.Second)
	if got := b.Eval(`document.getElementById("live").dataset.resets`); got != resets {
		t.Errorf("the failover made the page start over (%s resets, was %s)", got, resets)
	}
	t.Logf("timeline: %s", b.Eval(`document.querySelector('[data-failover="s1"]').textContent`))
	b.Screenshot("failover")
}

// Typing part of a tenant's name and Enter, keyboard only, opens its
// page, with the tenant's own latency (p50, p99) as the router measured it.
func dashboardSearch(t *testing.T, b *browser.Tab) {
	b.OpenTenantBySearch("bo", "bob", "bob:prod")
	t.Logf("bob's page: %s requests, p50 %s, p99 %s; live log %s", b.Eval(`document.querySelector('[data-role="tenant-rps"]').textContent`),
		b.Eval(`document.querySelector('[data-role="tenant-p50"]').textContent`), b.Eval(`document.querySelector('[data-role="tenant-p99"]').textContent`),
		b.Eval(`document.getElementById("tp-log-state").textContent`))
	b.Screenshot("tenant")
}
