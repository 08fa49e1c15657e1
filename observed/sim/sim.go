// Package sim is a tenement server simulator: it speaks tenement 0.2.2's
// HTTP API with the behaviour a controller depends on (idempotent spawn, 404
// on stopping an absent instance, the 429 lock-out after 10 bad tokens, a
// restart that loses every instance, idle reaping for services with an idle
// timeout, the backoff of repeated instance restarts, the log buffer and its
// stream, telemetry and storage) and injects faults: latency, errors, hangs, crashes, refused
// connections. It runs in-process for tests and benchmarks, and as
// 'slum sim' for the demo. The contract tests in package observed hold it
// to the real tenement.
package sim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process is a service of the simulated tenement.toml.
type Process struct {
	// IdleTimeout, when set, has idle instances stopped by the server.
	IdleTimeout time.Duration
}

// Config describes a simulated server.
type Config struct {
	Token     string
	Processes map[string]Process
	// AuthDelay is added to every authenticated call, standing in for
	// tenement's Argon2 verification.
	AuthDelay time.Duration
	// LogCapacity is how many log lines the server keeps (default
	// 10,000, as tenement).
	LogCapacity int
	// Keepalive is how often an idle log stream gets a comment (default
	// 15 s, as tenement).
	Keepalive time.Duration
	// RestartBackoff is the wait before an instance's second restart,
	// doubling for each further one up to 60 s (default 1 s, as
	// tenement's backoff_base_ms).
	RestartBackoff time.Duration
}

type instance struct {
	process, id string
	port        int
	started     time.Time
	lastActive  time.Time
	health      string
	hits        int // requests routed to it
}

// Server is one simulated tenement server.
type Server struct {
	cfg Config

	mu        sync.Mutex
	instances map[string]*instance // by process:id
	nextPort  int
	authFails int
	lastFail  time.Time
	calls     map[string]int
	restarts  map[string]int // restarts of each instance since the server started
	logs      *logBook

	latency   time.Duration
	errorRate float64
	malformed bool
	failNext  map[string]int
	hang      chan struct{} // closed to release hung requests; nil when not hung

	lnMu   sync.Mutex
	addr   string
	ln     net.Listener
	server *http.Server
	down   bool
	stop   chan struct{}
}

// New returns a simulator; serve it with Start or use Handler.
func New(cfg Config) *Server {
	return &Server{cfg: cfg, instances: map[string]*instance{}, nextPort: 30000, calls: map[string]int{},
		restarts: map[string]int{}, logs: newLogBook(cfg.LogCapacity), stop: make(chan struct{})}
}

// Start listens on addr ("127.0.0.1:0" for any port) and serves until Close.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.lnMu.Lock()
	s.addr = ln.Addr().String()
	s.serveLocked(ln)
	s.lnMu.Unlock()
	for _, p := range s.cfg.Processes {
		if p.IdleTimeout > 0 {
			go s.reaper()
			break
		}
	}
	return "http://" + s.addr, nil
}

func (s *Server) serveLocked(ln net.Listener) {
	s.ln = ln
	s.server = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(s.server)
}

// URL is the address Start listens on.
func (s *Server) URL() string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return "http://" + s.addr
}

// Close stops serving.
func (s *Server) Close() {
	s.SetHang(false)
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	if s.server != nil {
		_ = s.server.Close()
		s.server = nil
	}
}

// SetDown makes the server refuse connections (true) or accept them again
// on the same address (false). Its instances are kept, as when a network
// link is cut.
func (s *Server) SetDown(down bool) error {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if down == s.down {
		return nil
	}
	s.down = down
	if down {
		return s.server.Close()
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("sim: listen again on %s: %w", s.addr, err)
	}
	s.serveLocked(ln)
	return nil
}

// SetLatency delays every authenticated answer.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// FailNext fails the next n calls of a kind (list, spawn, stop, restart,
// health) with a 500.
func (s *Server) FailNext(kind string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext == nil {
		s.failNext = map[string]int{}
	}
	s.failNext[kind] = n
}

// SetMalformed makes the list call answer with broken JSON.
func (s *Server) SetMalformed(on bool) {
	s.mu.Lock()
	s.malformed = on
	s.mu.Unlock()
}

// SetErrorRate fails that share (0 to 1) of API calls with a 500.
func (s *Server) SetErrorRate(p float64) {
	s.mu.Lock()
	s.errorRate = p
	s.mu.Unlock()
}

// SetHang makes the server accept requests and never answer them, until
// SetHang(false).
func (s *Server) SetHang(hang bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case hang && s.hang == nil:
		s.hang = make(chan struct{})
	case !hang && s.hang != nil:
		close(s.hang)
		s.hang = nil
	}
}

// Kill stops the server as kill -9 would: connections are refused and
// dropped, and its instances are gone when it comes back (SetDown(false)),
// as a restarted tenement kills what its previous run left.
func (s *Server) Kill() error {
	s.Crash()
	return s.SetDown(true)
}

// Terminate stops the server as SIGTERM stops tenement 0.2.2: its
// instances stop and it takes no new connection, but a log stream open
// at the time stays open (with keepalives, no lines) until its client
// leaves; only then would tenement exit. Start it again with Crash and
// SetDown(false).
func (s *Server) Terminate() {
	s.mu.Lock()
	s.instances = map[string]*instance{}
	s.mu.Unlock()
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if !s.down {
		s.down = true
		// As tenement's server shuts down: no new connection, idle
		// kept-alive ones closed, open ones closed after their answer,
		// an open log stream served until its client leaves.
		_ = s.ln.Close() // at once: a relaunch listens on the same address
		go func(srv *http.Server) { _ = srv.Shutdown(context.Background()) }(s.server)
	}
}

// Crash loses every instance and log line and ends every log stream, as
// a tenement restart does.
func (s *Server) Crash() {
	s.mu.Lock()
	s.instances = map[string]*instance{}
	s.restarts = map[string]int{}
	s.nextPort = 30000
	s.mu.Unlock()
	s.logs.clear()
}

// Names lists the running instances, sorted.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.instances))
	for n := range s.instances {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Len is how many instances run.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.instances)
}

// Put starts an instance directly, as if something other than slum had.
func (s *Server) Put(process, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spawnLocked(process, id)
}

// Touch marks an instance active, as a request routed to it would.
func (s *Server) Touch(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.instances[name]; ok {
		in.lastActive = time.Now()
	}
}

// SetHealth overrides an instance's health word.
func (s *Server) SetHealth(name, health string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.instances[name]; ok {
		in.health = health
	}
}

// Calls counts authenticated API calls by kind (list, spawn, stop,
// restart, health) as they arrive, before any added latency.
func (s *Server) Calls(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[kind]
}

// reaper stops idle instances of services with an idle timeout.
func (s *Server) reaper() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.reap(now)
		}
	}
}

func (s *Server) reap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, in := range s.instances {
		p := s.cfg.Processes[in.process]
		if p.IdleTimeout > 0 && now.Sub(in.lastActive) > p.IdleTimeout {
			delete(s.instances, name)
		}
	}
}

func (s *Server) spawnLocked(process, id string) *instance {
	name := process + ":" + id
	if in, ok := s.instances[name]; ok {
		return in
	}
	now := time.Now()
	in := &instance{process: process, id: id, port: s.nextPort, started: now, lastActive: now, health: "healthy"}
	s.nextPort++
	s.instances[name] = in
	s.Log(process, id, "stdout", id+" listening on port "+strconv.Itoa(in.port)) // as slum's test app does
	return in
}

// Handler serves the simulated API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE tenement_instances gauge\ntenement_instances %d\n", s.Len())
	})
	mux.HandleFunc("GET /api/instances", s.api("list", s.list))
	mux.HandleFunc("POST /api/instances/spawn", s.api("spawn", s.spawn))
	mux.HandleFunc("DELETE /api/instances/{name}", s.api("stop", s.stopOne))
	mux.HandleFunc("POST /api/instances/{name}/restart", s.api("restart", s.restart))
	mux.HandleFunc("GET /api/instances/{name}/health", s.api("health", s.health))
	mux.HandleFunc("GET /api/logs", s.api("logs", s.queryLogs))
	mux.HandleFunc("GET /api/logs/stream", s.api("stream", s.logStream))
	mux.HandleFunc("GET /api/instances/{name}/storage", s.api("storage", s.storage))
	mux.HandleFunc("GET /api/telemetry", s.telemetry)
	return s.faults(s.routeApps(mux))
}

// routeApps answers requests whose Host names an instance,
// {id}.{process}.{domain}, as tenement's subdomain routing does: with what
// slum's test app answers ({"tenant": id, "hits": n}), waking (spawning)
// an instance that does not run. Other requests go to the API.
func (s *Server) routeApps(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		labels := strings.SplitN(r.Host, ".", 3)
		if len(labels) < 3 {
			api.ServeHTTP(w, r)
			return
		}
		id, process := labels[0], labels[1]
		if _, ok := s.cfg.Processes[process]; !ok || id == "" {
			api.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		in := s.spawnLocked(process, id)
		in.lastActive = time.Now()
		in.hits++
		hits := in.hits
		s.mu.Unlock()
		s.appLog(process, id, r.URL.Path, hits)
		writeJSON(w, http.StatusOK, map[string]any{"tenant": id, "hits": hits})
	})
}

// faults applies hangs to every request.
func (s *Server) faults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hang := s.hang
		s.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// api authenticates as tenement does, counts the call and injects errors.
func (s *Server) api(kind string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if s.cfg.AuthDelay > 0 {
			time.Sleep(s.cfg.AuthDelay)
		}
		s.mu.Lock()
		if s.authFails >= 10 && time.Since(s.lastFail) < 5*time.Second {
			s.mu.Unlock()
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if subtle.ConstantTimeCompare([]byte(auth[7:]), []byte(s.cfg.Token)) != 1 {
			s.authFails++
			s.lastFail = time.Now()
			s.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.authFails = 0
		s.calls[kind]++
		fail := s.errorRate > 0 && rand.Float64() < s.errorRate
		if s.failNext[kind] > 0 {
			s.failNext[kind]--
			fail = true
		}
		latency := s.latency
		s.mu.Unlock()
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		if fail {
			writeError(w, http.StatusInternalServerError, "simulated failure")
			return
		}
		h(w, r)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	if s.malformed {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id": "api:x--y", "socket": `))
		return
	}
	// Written by hand: the list is the hot path of every benchmark. Names
	// are DNS labels, so nothing needs escaping.
	buf := make([]byte, 0, 64+len(s.instances)*240)
	buf = append(buf, '[')
	first := true
	for name, in := range s.instances {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, `{"id":"`...)
		buf = append(buf, name...)
		buf = append(buf, `","socket":"127.0.0.1:`...)
		buf = strconv.AppendInt(buf, int64(in.port), 10)
		buf = append(buf, `","uptime_secs":`...)
		buf = strconv.AppendInt(buf, int64(now.Sub(in.started).Seconds()), 10)
		buf = append(buf, `,"idle_secs":`...)
		buf = strconv.AppendInt(buf, int64(now.Sub(in.lastActive).Seconds()), 10)
		buf = append(buf, `,"restarts":0,"health":"`...)
		buf = append(buf, in.health...)
		buf = append(buf, `","storage_used_bytes":0,"storage_quota_bytes":null,"weight":100}`...)
	}
	s.mu.Unlock()
	buf = append(buf, ']')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf)
}

func (s *Server) spawn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Process string `json:"process"`
		ID      string `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "Failed to parse the request body as JSON: "+err.Error())
		return
	}
	if _, ok := s.cfg.Processes[req.Process]; !ok {
		writeError(w, http.StatusInternalServerError, "Unknown process: "+req.Process)
		return
	}
	s.mu.Lock()
	in := s.spawnLocked(req.Process, req.ID)
	s.mu.Unlock()
	writeSpawned(w, in)
}

func splitName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if p, id, ok := strings.Cut(name, ":"); !ok || p == "" || id == "" {
		writeError(w, http.StatusBadRequest, "Invalid instance ID format. Expected 'process:id'")
		return "", false
	}
	return name, true
}

func (s *Server) stopOne(w http.ResponseWriter, r *http.Request) {
	name, ok := splitName(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	_, found := s.instances[name]
	delete(s.instances, name)
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "Instance not found: "+name)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	name, ok := splitName(w, r)
	if !ok {
		return
	}
	process, id, _ := strings.Cut(name, ":")
	if _, ok := s.cfg.Processes[process]; !ok {
		writeError(w, http.StatusInternalServerError, "Unknown process: "+process)
		return
	}
	s.mu.Lock()
	wait := s.restartBackoff(s.restarts[name])
	s.mu.Unlock()
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	delete(s.instances, name)
	in := s.spawnLocked(process, id)
	s.restarts[name]++
	s.mu.Unlock()
	writeSpawned(w, in)
}

// restartBackoff is tenement's wait before a restart of an instance
// restarted n times before: none, then the base doubling up to 60 s.
func (s *Server) restartBackoff(n int) time.Duration {
	if n == 0 {
		return 0
	}
	base := s.cfg.RestartBackoff
	if base <= 0 {
		base = time.Second
	}
	return min(base<<min(n-1, 16), time.Minute)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	name, ok := splitName(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	in, found := s.instances[name]
	h := "unknown"
	if found {
		h = in.health
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"instance": name, "health": h})
}

// writeSpawned answers a spawn or restart as tenement does. An instance's
// process, id and port never change, so it is read without the lock.
func writeSpawned(w http.ResponseWriter, in *instance) {
	writeJSON(w, http.StatusOK, map[string]any{"instance": in.process + ":" + in.id,
		"socket": fmt.Sprintf("/tmp/tenement/%s-%s.sock", in.process, in.id), "port": in.port})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
