package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/routes"
)

// routes lays out the API: every operation of wire.Ops, the route table,
// the watch, and the dashboard.
func (s *Server) routes() http.Handler {
	v1 := http.NewServeMux()
	for _, op := range wire.Ops {
		v1.HandleFunc(op.Pattern(), s.authorize(op.Needs(), s.serveOp(op)))
	}
	p := wire.Prefix
	v1.HandleFunc("GET "+p+"/whoami", s.authorize(wire.AccessRouter, s.handle(s.whoami)))
	v1.HandleFunc("GET "+p+"/routes", s.authorize(wire.AccessRouter, s.handle(s.getRoutes)))
	v1.HandleFunc("GET "+p+"/watch", s.authorize(wire.AccessRouter, s.handle(s.serveWatch)))
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

// serveOp serves one operation: its body read within what the caller may
// send, the Fleet called, the answer (or the error, with a refused mass
// prune's change set) written. Every change an admin makes is logged with
// who made it; never its body, which may hold tokens.
func (s *Server) serveOp(op wire.Route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r.Context())
		limit := s.bodyLimit(op.BodyKind(), c.token.Role)
		if err := admitBody(r, limit); err != nil {
			s.writeError(w, r, err)
			return
		}
		readBody := func(v any) error { return decode(w, r, limit, v) }
		if limit > s.cfg.MaxBody {
			large, err := s.readLarge(w, r, limit)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			defer large.release()
			readBody = func(v any) error { return decodeLarge(large, v) }
		}
		ctx := wire.WithCaller(r.Context(), c.String())
		status, resp, err := op.Serve(ctx, s.fleet, r, readBody)
		var mass *slum.MassPruneError
		switch {
		case errors.As(err, &mass):
			plan, _ := resp.(*slum.ChangeSet)
			writeJSON(w, wire.KindMassPrune.Status(), wire.Error{Error: wire.ErrorBody{Kind: wire.KindMassPrune, Message: err.Error(), MassPrune: mass, Plan: plan}})
			return
		case err != nil:
			s.writeError(w, r, err)
			return
		}
		if op.Needs() == wire.AccessAdmin {
			s.log.Info("API change", "op", op.Pattern(), "path", r.URL.Path, "by", c.String())
		}
		writeJSON(w, status, resp)
	}
}

// handle adapts a handler that returns its error.
func (s *Server) handle(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
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

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r.Context())
	writeJSON(w, http.StatusOK, wire.Whoami{ID: c.token.ID, Name: c.token.Name, Role: c.token.Role, NoAuth: c.noAuth})
	return nil
}

func (s *Server) getRoutes(w http.ResponseWriter, r *http.Request) error {
	t, err := routes.Load(r.Context(), s.store)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.RoutesOf(t))
	return nil
}
