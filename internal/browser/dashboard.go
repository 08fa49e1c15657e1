package browser

import (
	"time"

	"github.com/chromedp/chromedp"
)

// OpenTenantBySearch takes the dashboard's keyboard path to a tenant's
// page: "/" focuses the search box, typed narrows the tenants to one,
// Enter opens its page, which shows instance (a copy of it) and the
// tenant's own p50 and p99 as the routers measured them.
func (b *Tab) OpenTenantBySearch(typed, tenant, instance string) {
	b.t.Helper()
	b.Do("search", chromedp.KeyEvent("/"), chromedp.Sleep(50*time.Millisecond))
	if b.Eval(`document.activeElement.id`) != "search" {
		b.t.Fatal(`"/" does not focus the search box`)
	}
	b.Do("type", chromedp.KeyEvent(typed))
	b.Until("the search narrowing the tenants", `document.querySelectorAll("[data-tenant]").length === 1`, 3*time.Second)
	b.Do("open", chromedp.KeyEvent("\r"))
	b.Until(tenant+"'s page", `!document.getElementById("tenant-page").hidden && document.getElementById("tp-title").textContent === "`+tenant+`" &&
		!!document.querySelector('#tp-body [data-copy="`+instance+`"]')`, 5*time.Second)
	b.Until(tenant+"'s own p50 and p99", `[...document.querySelectorAll('[data-role="tenant-p50"], [data-role="tenant-p99"]')].every(e => /ms$/.test(e.textContent))`, 15*time.Second)
}
