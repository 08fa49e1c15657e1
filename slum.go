// Package slum is the vocabulary of a fleet of tenement servers: its
// servers, tenants and instances, what the controller observes of them
// (health, phases, who serves each tenant), the lease that fences
// controllers, events, held plans, settings, and Fleet, the operations a
// fleet offers. Everything else implements or uses these: the store
// engines (sqlite, postgres), the API client, the controller, the router
// and the CLI. This package does nothing itself.
package slum
