package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
)

// caller is who made a request: the token it came with.
type caller struct {
	token  slum.APIToken
	noAuth bool
}

func (c caller) String() string {
	if c.noAuth {
		return "no-auth"
	}
	name := c.token.Name
	if name == "" {
		return fmt.Sprintf("API token %d", c.token.ID)
	}
	return fmt.Sprintf("API token %d (%s)", c.token.ID, name)
}

type callerKey struct{}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// authenticate finds the caller of an API request from its bearer token,
// or answers it: 401 without a working token, 429 for an address that
// failed too often. A failed check is never cached, so a revoked token
// stops working at once.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.NoAuth {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{noAuth: true,
				token: slum.APIToken{Role: slum.RoleAdmin, Name: "no-auth"}})))
			return
		}
		key := clientKey(r.RemoteAddr)
		now := s.cfg.Clock.Now()
		if blocked, wait := s.limiter.blocked(key, now); blocked {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.fail(w, r, wire.KindRateLimited, "too many failed authentications from your address: try again in "+strconv.Itoa(int(math.Ceil(wait.Seconds())))+"s")
			return
		}
		h := r.Header.Get("Authorization")
		if h == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slum"`)
			s.fail(w, r, wire.KindUnauthorized, "no API token: send one as Authorization: Bearer <token> (make one with 'slum token create')")
			return
		}
		tok, ok := strings.CutPrefix(h, "Bearer ")
		var rec slum.APIToken
		err := fmt.Errorf("%w: the Authorization header is not 'Bearer <token>'", slum.ErrBadToken)
		if ok {
			rec, err = s.store.VerifyAPIToken(r.Context(), strings.TrimSpace(tok))
		}
		if errors.Is(err, slum.ErrBadToken) {
			s.limiter.fail(key, now)
			s.log.Warn("API authentication failed", "addr", r.RemoteAddr, "why", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="slum", error="invalid_token"`)
			s.fail(w, r, wire.KindUnauthorized, "the API token is unknown or revoked")
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{token: rec})))
	})
}

// authorize lets a request through when its caller's role allows a.
func (s *Server) authorize(a wire.Access, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r.Context())
		if !a.Allows(c.token.Role) {
			s.fail(w, r, wire.KindForbidden, fmt.Sprintf("%s has role %s: %s %s needs %s token", c, c.token.Role, r.Method, r.URL.Path, a))
			return
		}
		next(w, r)
	}
}
