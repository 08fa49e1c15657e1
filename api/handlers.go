package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/routes"
)

// routes lays out the API: each endpoint one operation of the Store, with
// the role it needs.
func (s *Server) routes() http.Handler {
	v1 := http.NewServeMux()
	h := func(pattern string, a access, fn func(w http.ResponseWriter, r *http.Request) error) {
		v1.HandleFunc(pattern, s.authorize(a, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				s.writeError(w, r, err)
			}
		}))
	}
	p := wire.Prefix

	h("GET "+p+"/whoami", accessRouter, s.whoami)
	h("GET "+p+"/routes", accessRouter, s.getRoutes)
	h("GET "+p+"/watch", accessRouter, s.serveWatch)

	h("GET "+p+"/servers", accessRead, s.listServers)
	h("POST "+p+"/servers", accessAdmin, s.addServer)
	h("GET "+p+"/servers/{id}", accessRead, s.getServer)
	h("PATCH "+p+"/servers/{id}", accessAdmin, s.updateServer)
	h("DELETE "+p+"/servers/{id}", accessAdmin, s.removeServer)
	h("PUT "+p+"/servers/{id}/state", accessAdmin, s.setServerState)
	h("POST "+p+"/servers/{id}/drain", accessAdmin, s.drain)
	h("GET "+p+"/servers/{id}/stats", accessRead, s.serverStats)
	h("GET "+p+"/servers/{id}/status", accessRead, s.serverStatus)
	h("GET "+p+"/servers/{id}/tenants", accessRead, s.tenantsOnServer)
	h("GET "+p+"/servers/{id}/instances", accessRead, s.instancesOnServer)
	h("GET "+p+"/stats/servers", accessRead, s.allServerStats)

	h("GET "+p+"/tenants", accessRead, s.listTenants)
	h("POST "+p+"/tenants", accessAdmin, s.addTenant)
	h("GET "+p+"/tenants/{id}", accessRead, s.getTenant)
	h("GET "+p+"/domains/{domain}", accessRead, s.getTenantByDomain)
	h("PATCH "+p+"/tenants/{id}", accessAdmin, s.updateTenant)
	h("DELETE "+p+"/tenants/{id}", accessAdmin, s.removeTenant)
	h("GET "+p+"/tenants/{id}/instances", accessRead, s.instancesOfTenant)
	h("GET "+p+"/tenants/{id}/status", accessRead, s.tenantStatus)

	h("GET "+p+"/instances", accessRead, s.listInstances)
	h("POST "+p+"/instances", accessAdmin, s.spawnInstance)
	h("GET "+p+"/instances/{key}", accessRead, s.getInstance)
	h("DELETE "+p+"/instances/{key}", accessAdmin, s.removeInstance)
	h("POST "+p+"/instances/{key}/stop", accessAdmin, s.stopInstance)
	h("POST "+p+"/instances/{key}/move", accessAdmin, s.moveInstance)
	h("GET "+p+"/instances/{key}/status", accessRead, s.instanceStatus)

	h("GET "+p+"/status", accessRead, s.overview)
	h("GET "+p+"/status/servers", accessRead, s.listServerStatus)
	h("GET "+p+"/status/tenants", accessRead, s.listTenantStatus)
	h("GET "+p+"/status/instances", accessRead, s.listInstanceStatus)
	h("GET "+p+"/events", accessRead, s.events)
	h("GET "+p+"/holds", accessRead, s.holds)
	h("POST "+p+"/holds/{id}/approve", accessAdmin, s.approve)
	h("GET "+p+"/settings", accessRead, s.getSettings)
	h("PUT "+p+"/settings", accessAdmin, s.setSettings)

	h("POST "+p+"/apply", accessAdmin, s.apply)
	h("POST "+p+"/diff", accessRead, s.apply)

	h("GET "+p+"/tokens", accessRead, s.listTokens)
	h("POST "+p+"/tokens", accessAdmin, s.createToken)
	h("DELETE "+p+"/tokens/{id}", accessAdmin, s.revokeToken)

	v1.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, wire.KindNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})

	root := http.NewServeMux()
	root.Handle(p+"/", s.authenticate(v1))
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	root.Handle("/", dashboard())
	return securityHeaders(root)
}

// securityHeaders are sent with every answer: nothing of the API or the
// dashboard may be framed, sniffed, or leak its address.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func ok(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

func servers(ss []slum.Server) []wire.Server {
	if ss == nil {
		return nil
	}
	out := make([]wire.Server, len(ss))
	for i, s := range ss {
		out[i] = wire.NewServer(s)
	}
	return out
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r.Context())
	return ok(w, wire.Whoami{ID: c.token.ID, Name: c.token.Name, Role: c.token.Role, NoAuth: c.noAuth})
}

func (s *Server) getRoutes(w http.ResponseWriter, r *http.Request) error {
	t, err := routes.Load(r.Context(), s.store)
	if err != nil {
		return err
	}
	return ok(w, wire.RoutesOf(t))
}

// ---- servers

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) error {
	var ss []slum.Server
	var err error
	if region := r.URL.Query().Get("region"); region != "" {
		ss, err = s.store.ServersInRegion(r.Context(), region)
	} else {
		ss, err = s.store.ListServers(r.Context())
	}
	if err != nil {
		return err
	}
	return ok(w, servers(ss))
}

func (s *Server) addServer(w http.ResponseWriter, r *http.Request) error {
	var req wire.AddServer
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	out, err := s.store.AddServer(r.Context(), slum.Server{ID: req.ID, URL: req.URL, Region: req.Region,
		CapacityMB: req.CapacityMB, Domain: req.Domain, Token: req.Token})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.NewServer(out))
	return nil
}

func (s *Server) getServer(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.GetServer(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, wire.NewServer(out))
}

func (s *Server) updateServer(w http.ResponseWriter, r *http.Request) error {
	var req wire.ServerUpdate
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	out, err := s.store.UpdateServer(r.Context(), pathID(r, "id"), slum.ServerUpdate{URL: req.URL, Region: req.Region,
		CapacityMB: req.CapacityMB, Domain: req.Domain, Token: req.Token})
	if err != nil {
		return err
	}
	return ok(w, wire.NewServer(out))
}

func (s *Server) removeServer(w http.ResponseWriter, r *http.Request) error {
	force, err := queryBool(r, "force")
	if err != nil {
		return err
	}
	id := pathID(r, "id")
	if err := s.store.RemoveServer(r.Context(), id, force); err != nil {
		return err
	}
	return ok(w, wire.Removed{Removed: id})
}

func (s *Server) setServerState(w http.ResponseWriter, r *http.Request) error {
	var req wire.SetState
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	out, err := s.store.SetServerState(r.Context(), pathID(r, "id"), req.State)
	if err != nil {
		return err
	}
	return ok(w, wire.NewServer(out))
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) error {
	moves, err := s.store.Drain(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, moves)
}

func (s *Server) serverStats(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ServerStats(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) allServerStats(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.AllServerStats(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) serverStatus(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ServerStatus(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) tenantsOnServer(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListTenantsOnServer(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) instancesOnServer(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListInstancesOnServer(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

// ---- tenants

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListTenants(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) addTenant(w http.ResponseWriter, r *http.Request) error {
	var req wire.AddTenant
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	first := make([]slum.InstanceSpec, len(req.Instances))
	for i, in := range req.Instances {
		first[i] = in.Spec()
	}
	t, ins, err := s.store.AddTenant(r.Context(), slum.Tenant{ID: req.ID, Domain: req.Domain, Region: req.Region,
		Failover: req.Failover, Serving: req.Serving}, first...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.AddedTenant{Tenant: t, Instances: ins})
	return nil
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.GetTenant(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) getTenantByDomain(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.GetTenantByDomain(r.Context(), pathID(r, "domain"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request) error {
	var req wire.TenantUpdate
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	out, err := s.store.UpdateTenant(r.Context(), pathID(r, "id"), slum.TenantUpdate{Domain: req.Domain, Region: req.Region,
		Failover: req.Failover, Serving: req.Serving})
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) removeTenant(w http.ResponseWriter, r *http.Request) error {
	id := pathID(r, "id")
	if err := s.store.RemoveTenant(r.Context(), id); err != nil {
		return err
	}
	return ok(w, wire.Removed{Removed: id})
}

func (s *Server) instancesOfTenant(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListInstancesOfTenant(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) tenantStatus(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.TenantStatus(r.Context(), pathID(r, "id"))
	if err != nil {
		return err
	}
	return ok(w, out)
}

// ---- instances

func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListInstances(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) spawnInstance(w http.ResponseWriter, r *http.Request) error {
	var req wire.InstanceSpec
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	out, err := s.store.SpawnInstance(r.Context(), req.Spec())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.GetInstance(r.Context(), slum.InstanceKey(pathID(r, "key")))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) removeInstance(w http.ResponseWriter, r *http.Request) error {
	key := pathID(r, "key")
	if err := s.store.RemoveInstance(r.Context(), slum.InstanceKey(key)); err != nil {
		return err
	}
	return ok(w, wire.Removed{Removed: key})
}

func (s *Server) stopInstance(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.StopInstance(r.Context(), slum.InstanceKey(pathID(r, "key")))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) moveInstance(w http.ResponseWriter, r *http.Request) error {
	var req wire.MoveTo
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	out, err := s.store.MoveInstance(r.Context(), slum.InstanceKey(pathID(r, "key")), req.To)
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) instanceStatus(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.InstanceStatus(r.Context(), slum.InstanceKey(pathID(r, "key")))
	if err != nil {
		return err
	}
	return ok(w, out)
}

// ---- status, events, holds, settings

func (s *Server) overview(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.Overview(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) listServerStatus(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListServerStatus(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) listTenantStatus(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListTenantStatus(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) listInstanceStatus(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListInstanceStatus(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

// maxList bounds the events and holds one request returns.
const maxList = 10000

// events: ?since=ID[&limit=N] the events after ID, oldest first; else
// ?last=N (default 50) the latest, as 'slum events' shows them.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Has("since") {
		since, err := queryInt(r, "since", 0)
		if err != nil {
			return err
		}
		limit, err := queryInt(r, "limit", 1000)
		if err != nil {
			return err
		}
		out, err := s.store.Events(r.Context(), since, min(limit, maxList))
		if err != nil {
			return err
		}
		return ok(w, out)
	}
	last, err := queryInt(r, "last", 50)
	if err != nil {
		return err
	}
	out, err := s.store.RecentEvents(r.Context(), min(last, maxList))
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) holds(w http.ResponseWriter, r *http.Request) error {
	last, err := queryInt(r, "last", 100)
	if err != nil {
		return err
	}
	out, err := s.store.RecentHolds(r.Context(), min(last, maxList))
	if err != nil {
		return err
	}
	return ok(w, out)
}

// maxApprover bounds who an approval says approved.
const maxApprover = 128

func (s *Server) approve(w http.ResponseWriter, r *http.Request) error {
	id, err := pathNumber(r, "id", "hold id")
	if err != nil {
		return err
	}
	var req wire.Approve
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	if len(req.By) > maxApprover || strings.ContainsFunc(req.By, func(c rune) bool { return !unicode.IsPrint(c) }) {
		return &slum.FieldError{Field: "by", Value: req.By, Reason: fmt.Sprintf("must be printable text of at most %d bytes", maxApprover)}
	}
	// The record says which token approved, whatever the client says.
	by := callerOf(r.Context()).String()
	if req.By != "" {
		by = req.By + " via " + by
	}
	out, err := s.store.ApproveHold(r.Context(), id, by)
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.Settings(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) setSettings(w http.ResponseWriter, r *http.Request) error {
	var req slum.Settings
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	out, err := s.store.SetSettings(r.Context(), req)
	if err != nil {
		return err
	}
	return ok(w, out)
}

// apply serves POST /v1/apply and /v1/diff (always a dry run). The file
// is parsed and checked in full before the Store's one transaction
// starts; a refused mass prune answers with the plan it refused.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	var req wire.Apply
	if err := decode(w, r, s.cfg.MaxFileBody, &req); err != nil {
		return err
	}
	if strings.HasSuffix(r.URL.Path, "/diff") {
		req.DryRun = true
	}
	plan, err := s.store.Apply(r.Context(), req.File, slum.ApplyOptions{Prune: req.Prune, AllowMassPrune: req.AllowMassPrune, DryRun: req.DryRun})
	var mass *slum.MassPruneError
	if errors.As(err, &mass) {
		writeJSON(w, wire.KindMassPrune.Status(), wire.Error{Error: wire.ErrorBody{Kind: wire.KindMassPrune, Message: err.Error(), MassPrune: mass, Plan: plan}})
		return nil
	}
	if err != nil {
		return err
	}
	return ok(w, plan)
}

// ---- tokens

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	out, err := s.store.ListAPITokens(r.Context())
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req wire.CreateToken
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	rec, secret, err := s.store.CreateAPIToken(r.Context(), req.Role, req.Name)
	if err != nil {
		return err
	}
	s.log.Info("API token created", "id", rec.ID, "role", rec.Role, "by", callerOf(r.Context()).String())
	writeJSON(w, http.StatusCreated, wire.CreatedToken{APIToken: rec, Token: secret})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id, err := pathNumber(r, "id", "token id")
	if err != nil {
		return err
	}
	out, err := s.store.RevokeAPIToken(r.Context(), id)
	if err != nil {
		return err
	}
	s.log.Info("API token revoked", "id", id, "by", callerOf(r.Context()).String())
	return ok(w, out)
}
