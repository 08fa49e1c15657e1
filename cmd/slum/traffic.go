package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/traffic"
)

// trafficNow is the latest traffic of the fleet behind f (q narrows it),
// when f keeps any: the API does (its routers report to it), a database
// does not. nil, nil: none to show (no router reported), so a fleet
// without routers reads the same locally and through the API.
func trafficNow(ctx context.Context, f slum.Fleet, q traffic.Query) (*traffic.Window, error) {
	tf, ok := f.(wire.TrafficFleet)
	if !ok {
		return nil, nil
	}
	q.Last = time.Minute
	w, err := tf.Traffic(ctx, q)
	if err != nil || len(w.Tenants)+len(w.Servers) == 0 {
		return nil, err
	}
	return w, nil
}

// rateText is a rate as one line says it.
func rateText(r traffic.Rate) string {
	s := fmt.Sprintf("%.1f req/s, %.1f%% errors", r.RPS, 100*r.ErrorRate)
	if r.P99 > 0 {
		s += fmt.Sprintf(", p50 %.1f ms, p99 %.1f ms", r.P50, r.P99)
	}
	return s
}

// printTraffic prints the servers' and the busiest tenants' rates now,
// when routers reported any.
func printTraffic(w io.Writer, tw *traffic.Window) {
	if tw == nil {
		return
	}
	var total traffic.Rate
	var errs float64
	for _, s := range tw.Tenants {
		total.RPS += s.Now.RPS
		errs += s.Now.RPS * s.Now.ErrorRate
	}
	if total.RPS > 0 {
		total.ErrorRate = errs / total.RPS
	}
	fmt.Fprintf(w, "\ntraffic (last 30 s): %.1f req/s, %.1f%% errors\n", total.RPS, 100*total.ErrorRate)
	for _, id := range sortedKeys(tw.Servers) {
		fmt.Fprintf(w, "  server %-12s %s\n", id, rateText(tw.Servers[id].Now))
	}
	ids := sortedKeys(tw.Tenants)
	slices.SortStableFunc(ids, func(a, b string) int {
		x, y := tw.Tenants[a].Now.RPS, tw.Tenants[b].Now.RPS
		switch {
		case x > y:
			return -1
		case x < y:
			return 1
		}
		return 0
	})
	for i, id := range ids {
		if i == 10 || tw.Tenants[id].Now.RPS == 0 {
			break
		}
		fmt.Fprintf(w, "  tenant %-12s %s\n", id, rateText(tw.Tenants[id].Now))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
