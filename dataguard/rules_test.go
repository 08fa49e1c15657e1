package dataguard

import (
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/replica/lease"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func obs(state lease.State, holder, server string, unchanged time.Duration) lease.Observation {
	return lease.Observation{Present: true, ETag: "e1", Since: t0.Add(-unchanged), At: t0,
		Record: lease.Record{Holder: holder, Server: server, Generation: 3, DBGeneration: 3, State: state, TTLMillis: 2000, Renewal: 9}}
}

func TestDecide(t *testing.T) {
	const prod = "alice--prod@host/pid7/ab"
	health := map[string]slum.Health{"s1": slum.HealthOnline, "s2": slum.HealthDead, "s3": slum.HealthOnline, "s4": slum.HealthSuspect}
	for _, tc := range []struct {
		name    string
		placed  map[string]string // default prod on s3
		deadFor time.Duration     // s2's; default 5 s
		lease   lease.Observation
		step    Step
		waiting bool
		why     string
	}{
		{name: "no lease yet", lease: lease.Observation{At: t0, Since: t0}, why: "no lease"},
		{name: "released", lease: obs(lease.StateReleased, prod, "s2", 0), why: "released"},
		{name: "the writer where its instance is", lease: obs(lease.StateHeld, prod, "s3", time.Hour), why: "held by its copy on s3"},
		{name: "a failover: none writer on its dead server is left alone", placed: map[string]string{"prod": "s2"}, lease: obs(lease.StateHeld, prod, "s2", time.Hour), why: "by its copy on s2"},
		{name: "a suspect server's writer is left alone", placed: map[string]string{"prod": "s4"}, lease: obs(lease.StateHeld, prod, "s4", 0), why: "by its copy on s4"},
		{name: "failed over from a dead server: revoke", lease: obs(lease.StateHeld, prod, "s2", 0), step: StepRevoke, waiting: true, why: "prod moved to s3 and its server s2 is dead"},
		{name: "asked to hand over, then its server died: revoke", lease: obs(lease.StateHandover, prod, "s2", 0), step: StepRevoke, waiting: true, why: "is dead"},
		{name: "its server left the fleet: revoke", lease: obs(lease.StateHeld, prod, "s9", 0), step: StepRevoke, waiting: true, why: "no longer in the fleet"},
		{name: "just dead: its copy is given a second to release by itself", deadFor: 500 * time.Millisecond, lease: obs(lease.StateHeld, prod, "s2", 0), waiting: true, why: "giving its copy 1s to release its lease by itself"},
		{name: "a dead server's lease that lapsed is released without a revoke", lease: obs(lease.StateHeld, prod, "s2", 2*time.Second), step: StepRelease, waiting: true, why: "the held lease of prod on s2 stayed unchanged for 2s"},
		{name: "a live server's lapsed lease is asked to hand over, not released", lease: obs(lease.StateHeld, prod, "s1", 3*time.Second), step: StepHandover, waiting: true, why: "asking its copy on s1"},
		{name: "revoked, not lapsed: wait", lease: obs(lease.StateRevoked, prod, "s2", 1500*time.Millisecond), waiting: true, why: "to lapse (1.5s of 2s)"},
		{name: "revoked and lapsed: release", lease: obs(lease.StateRevoked, prod, "s2", 2*time.Second), step: StepRelease, waiting: true, why: "stayed unchanged for 2s"},
		{name: "a longer holder TTL is waited for", lease: func() lease.Observation {
			o := obs(lease.StateRevoked, prod, "s2", 2500*time.Millisecond)
			o.Record.TTLMillis = 3000
			return o
		}(), waiting: true, why: "(2.5s of 3s)"},
		{name: "a planned move off a live server: hand over", lease: obs(lease.StateHeld, prod, "s1", 0), step: StepHandover, waiting: true, why: "prod moved to s3: asking its copy on s1 to hand over"},
		{name: "handover asked: wait for it", lease: obs(lease.StateHandover, prod, "s1", 0), waiting: true, why: "waiting for prod on s1 to hand over"},
		{name: "a removed instance on a live server hands over", placed: map[string]string{}, lease: obs(lease.StateHeld, prod, "s1", 0), step: StepHandover, waiting: true, why: "prod is removed or stopped"},
		{name: "a holder naming no server is left to lapse", lease: obs(lease.StateHeld, prod, "", 0), why: "names no server"},
		{name: "another tenant's holder is never touched", lease: obs(lease.StateHeld, "bob--prod@host/pid1/x", "s2", 0), why: "none of the tenant's instances"},
		{name: "a holder id slum cannot read is never touched", lease: obs(lease.StateHeld, "guard@host/pid1/x", "s2", 0), why: "none of the tenant's instances"},
		{name: "a tenant whose id prefixes another's", lease: obs(lease.StateHeld, "alice-b--prod@host/pid1/x", "s2", 0), why: "none of the tenant's instances"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			placed := tc.placed
			if placed == nil {
				placed = map[string]string{"prod": "s3"}
			}
			deadFor := tc.deadFor
			if deadFor == 0 {
				deadFor = 5 * time.Second
			}
			d := Decide(Input{Tenant: "alice", Placed: placed, Health: health, DeadFor: map[string]time.Duration{"s2": deadFor}, Lease: tc.lease, TTL: 2 * time.Second})
			if d.Step != tc.step || d.Waiting != tc.waiting || !strings.Contains(d.Why, tc.why) {
				t.Fatalf("got %+v, want step %q waiting %v why containing %q", d, tc.step, tc.waiting, tc.why)
			}
		})
	}
}
