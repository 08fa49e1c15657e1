package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/slum-fleet/slum/routes"
)

// downLogEvery is how often a route source that stays down is logged.
const downLogEvery = time.Minute

// sourceState is what the proxy knows of whoever feeds it route tables
// (the fleet database, the API's watch, the controller). The request path
// never reads it: a failing source changes nothing for requests, the last
// good table keeps serving.
type sourceState struct {
	mu        sync.Mutex
	name      string
	reported  bool // the source said anything yet
	up        bool
	since     time.Time // of the current up or down state
	lastErr   string
	failures  int64
	confirmed time.Time // the source last said the table in use is current
	lastLog   time.Time // of the last "still down" line
}

// Health is the state of the proxy's route source and table, for
// /healthz and 'slum status'.
type Health struct {
	Source    string    `json:"source"`
	SourceUp  bool      `json:"source_up"`
	Since     time.Time `json:"since"`                // of the source's current state
	LastError string    `json:"last_error,omitempty"` // scrubbed of credentials
	Failures  int64     `json:"failures"`             // failed checks since the source went down
	Revision  int64     `json:"table_revision"`
	Routes    int       `json:"table_routes"`
	// TableAge is how long ago the source last confirmed the table in use
	// (or since it was installed, when nothing confirmed it since).
	TableAge time.Duration `json:"table_age_ns"`
}

// SetSource names the route source for /healthz and the logs (a database
// path, an API URL, "controller"); it must carry no credentials.
func (p *Proxy) SetSource(name string) {
	p.src.mu.Lock()
	defer p.src.mu.Unlock()
	p.src.name = scrub(name)
}

// Update installs t, as Set does, and records that the source is up and
// t is current. A table naming an unusable backend counts as a failure of
// the source; a stale one (older than the table in use) does not.
func (p *Proxy) Update(t *routes.Table) error {
	if err := p.Set(t); err != nil {
		if errors.Is(err, ErrStaleTable) {
			p.SourceOK() // the source answered, behind a table already in use
		} else {
			p.SourceFailed(err)
		}
		return err
	}
	p.SourceOK()
	return nil
}

// SourceOK records that the source answered and the table in use is
// current. A source that was down is logged as back.
func (p *Proxy) SourceOK() {
	now := p.clock.Now()
	s := &p.src
	s.mu.Lock()
	defer s.mu.Unlock()
	s.confirmed = now
	if s.up && s.reported {
		return
	}
	if s.reported {
		p.log.Info("route source is back: following it again", "source", s.name,
			"down_for", now.Sub(s.since).Round(time.Millisecond), "failed_checks", s.failures)
	}
	s.reported, s.up, s.since, s.lastErr, s.failures = true, true, now, "", 0
	p.metrics.sourceUp.Set(1)
}

// SourceFailed records that the source could not be read. The proxy keeps
// routing with the table in use; it logs the failure when the source goes
// down, then once a minute while it stays down (see reportSource).
func (p *Proxy) SourceFailed(err error) {
	now := p.clock.Now()
	msg := "unknown error"
	if err != nil {
		msg = scrub(err.Error())
	}
	s := &p.src
	s.mu.Lock()
	defer s.mu.Unlock()
	p.metrics.sourceFailures.Inc()
	s.failures++
	s.lastErr = msg
	if !s.up && s.reported {
		return
	}
	s.reported, s.up, s.since, s.lastLog = true, false, now, now
	s.failures = 1
	p.metrics.sourceUp.Set(0)
	p.log.Warn("route source is down: routing with the last good table", "source", s.name,
		"revision", p.Table().Revision(), "err", msg)
}

// reportSource logs a line while the source stays down, once a minute.
func (p *Proxy) reportSource(now time.Time) {
	s := &p.src
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reported || s.up || now.Sub(s.lastLog) < downLogEvery {
		return
	}
	s.lastLog = now
	p.log.Warn("route source still down: routing with the last good table", "source", s.name,
		"down_for", now.Sub(s.since).Round(time.Second), "failed_checks", s.failures,
		"revision", p.Table().Revision(), "table_age", p.tableAge(now).Round(time.Second), "err", s.lastErr)
}

// tableAge is how long ago the table in use was confirmed or installed.
// The caller holds src.mu.
func (p *Proxy) tableAge(now time.Time) time.Duration {
	at := p.snap.Load().installed
	if p.src.confirmed.After(at) {
		at = p.src.confirmed
	}
	return max(now.Sub(at), 0)
}

// Health reports the source's state and the table in use.
func (p *Proxy) Health() Health {
	now := p.clock.Now()
	t := p.Table()
	s := &p.src
	s.mu.Lock()
	defer s.mu.Unlock()
	return Health{Source: s.name, SourceUp: s.up || !s.reported, Since: s.since, LastError: s.lastErr,
		Failures: s.failures, Revision: t.Revision(), Routes: t.Len(), TableAge: p.tableAge(now)}
}

// tableAgeSeconds feeds slum_router_table_age_seconds.
func (p *Proxy) tableAgeSeconds() float64 {
	now := p.clock.Now()
	p.src.mu.Lock()
	defer p.src.mu.Unlock()
	return p.tableAge(now).Seconds()
}

// HealthHandler serves /healthz: always 200 while the proxy routes (a
// router whose source is down still serves), with the source's state and
// the table's revision and age; JSON with ?format=json.
func (p *Proxy) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := p.Health()
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(h)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, h.String(p.clock.Now()))
	})
}

// String is the text /healthz shows, its first line "ok" (routing) and
// whether the source is up.
func (h Health) String(now time.Time) string {
	var b strings.Builder
	name := h.Source
	if name == "" {
		name = "route source"
	}
	if h.SourceUp {
		b.WriteString("ok\n")
		fmt.Fprintf(&b, "source: %s up", name)
		if !h.Since.IsZero() {
			fmt.Fprintf(&b, " since %s (%s)", h.Since.UTC().Format(time.RFC3339), now.Sub(h.Since).Round(time.Second))
		}
		b.WriteString("\n")
	} else {
		b.WriteString("ok: routing with the last good table, its source is down\n")
		fmt.Fprintf(&b, "source: %s DOWN since %s (%s, %d failed checks): %s\n", name,
			h.Since.UTC().Format(time.RFC3339), now.Sub(h.Since).Round(time.Second), h.Failures, h.LastError)
	}
	fmt.Fprintf(&b, "table: revision %d, %d routes, age %s\n", h.Revision, h.Routes, h.TableAge.Round(time.Millisecond))
	return b.String()
}

var (
	// userInfo is the user:password@ of a URL.
	userInfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@`)
	// secretWords are key=value pairs and tokens that may be secrets.
	secretWords = regexp.MustCompile(`(?i)(password|passwd|pwd|token|secret|apikey|api_key)=\S+|slum_[A-Za-z0-9_-]+|(?i:bearer)\s+\S+`)
)

// scrub removes what may be a credential from a message shown to anyone
// who can read /healthz or the logs.
func scrub(s string) string {
	s = userInfo.ReplaceAllString(s, "${1}REDACTED@")
	return secretWords.ReplaceAllStringFunc(s, func(m string) string {
		if i := strings.IndexAny(m, "= \t"); i > 0 {
			return m[:i+1] + "REDACTED"
		}
		return "REDACTED"
	})
}
