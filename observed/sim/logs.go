package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logLine is one line of an instance's output, as tenement 0.2.2 keeps
// and sends it.
type logLine struct {
	Timestamp int64  `json:"timestamp"` // Unix ms
	Level     string `json:"level"`     // stdout or stderr
	Process   string `json:"process"`
	ID        string `json:"instance_id"`
	Message   string `json:"message"`
}

// logSubBuffer is how far a stream's reader may fall behind before it
// loses lines, as with tenement's broadcast channel.
const logSubBuffer = 1024

// logBook keeps a server's log lines, as tenement does: the newest
// capacity lines of every instance together, in memory, and a broadcast
// to open streams of each new line.
type logBook struct {
	mu       sync.Mutex
	capacity int
	lines    []logLine // a ring: the oldest at start once full
	start    int
	subs     map[chan logLine]struct{}
}

func newLogBook(capacity int) *logBook {
	if capacity <= 0 {
		capacity = 10_000
	}
	return &logBook{capacity: capacity, subs: map[chan logLine]struct{}{}}
}

func (b *logBook) add(l logLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.lines) < b.capacity {
		b.lines = append(b.lines, l)
	} else {
		b.lines[b.start] = l
		b.start = (b.start + 1) % b.capacity
	}
	for ch := range b.subs {
		select {
		case ch <- l:
		default: // a reader too far behind loses the line
		}
	}
}

// clear forgets every line and ends every stream: a restarted server.
func (b *logBook) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines, b.start = nil, 0
	for ch := range b.subs {
		close(ch)
		delete(b.subs, ch)
	}
}

func (b *logBook) subscribe() chan logLine {
	ch := make(chan logLine, logSubBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch
}

func (b *logBook) unsubscribe(ch chan logLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

// logQuery is what a query or a stream selects. A level other than
// stdout or stderr selects both, as tenement takes it.
type logQuery struct {
	process, id, level, search   string
	hasProcess, hasID, hasSearch bool
}

func parseLogQuery(r *http.Request) logQuery {
	v := r.URL.Query()
	q := logQuery{process: v.Get("process"), id: v.Get("id"), search: v.Get("search"),
		hasProcess: v.Has("process"), hasID: v.Has("id"), hasSearch: v.Has("search")}
	if l := v.Get("level"); l == "stdout" || l == "stderr" {
		q.level = l
	}
	return q
}

// selects reports whether q selects l; a stream ignores the search.
func (q logQuery) selects(l logLine, search bool) bool {
	return (!q.hasProcess || l.Process == q.process) && (!q.hasID || l.ID == q.id) &&
		(q.level == "" || l.Level == q.level) && (!search || !q.hasSearch || strings.Contains(l.Message, q.search))
}

func (b *logBook) query(q logQuery, limit int, hasLimit bool) []logLine {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []logLine{}
	for i := range b.lines {
		l := b.lines[(b.start+i)%len(b.lines)]
		if q.selects(l, true) {
			out = append(out, l)
		}
	}
	if hasLimit && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// Log adds a line of an instance's output (level stdout or stderr), as
// if the instance printed it.
func (s *Server) Log(process, id, level, message string) {
	s.logs.add(logLine{Timestamp: time.Now().UnixMilli(), Level: level, Process: process, ID: id, Message: message})
}

// appLog logs what slum's test app prints for a request to path: a line
// to stdout, to stderr for paths under /stderr/, and n lines for
// /burst/n.
func (s *Server) appLog(process, id, path string, hits int) {
	switch {
	case strings.HasPrefix(path, "/burst/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(path, "/burst/"))
		for i := 1; i <= n; i++ {
			s.Log(process, id, "stdout", "burst "+strconv.Itoa(i)+"/"+strconv.Itoa(n))
		}
	case strings.HasPrefix(path, "/stderr/"):
		s.Log(process, id, "stderr", "GET "+path+" hits="+strconv.Itoa(hits))
	case path != "/health":
		s.Log(process, id, "stdout", "GET "+path+" hits="+strconv.Itoa(hits))
	}
}

func (s *Server) queryLogs(w http.ResponseWriter, r *http.Request) {
	limit, hasLimit := 0, r.URL.Query().Has("limit")
	if hasLimit {
		n, err := strconv.ParseUint(r.URL.Query().Get("limit"), 10, 63)
		if err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("Failed to deserialize query string: invalid digit found in string"))
			return
		}
		limit = int(n)
	}
	writeJSON(w, http.StatusOK, s.logs.query(parseLogQuery(r), limit, hasLimit))
}

// logStream streams new lines as server-sent events, as tenement's log
// stream does: no history, the search ignored, a keepalive comment every
// Config.Keepalive, until the client leaves, the server restarts or goes
// down.
func (s *Server) logStream(w http.ResponseWriter, r *http.Request) {
	q := parseLogQuery(r)
	ch := s.logs.subscribe()
	defer s.logs.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	every := s.cfg.Keepalive
	if every <= 0 {
		every = 15 * time.Second
	}
	keepalive := time.NewTicker(every)
	defer keepalive.Stop()
	for {
		var frame []byte
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-keepalive.C:
			frame = []byte(":\n\n")
		case l, ok := <-ch:
			if !ok {
				return
			}
			if !q.selects(l, false) {
				continue
			}
			data, _ := json.Marshal(l)
			frame = append(append([]byte("data: "), data...), '\n', '\n')
		}
		if _, err := w.Write(frame); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// telemetry answers as tenement's /api/telemetry does (no token needed).
func (s *Server) telemetry(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	insts := []map[string]any{}
	healthy, total := 0, 0
	for name, in := range s.instances {
		if in.health == "healthy" {
			healthy++
		}
		total += in.hits
		insts = append(insts, map[string]any{"id": name, "process": in.process, "instance": in.id, "health": in.health,
			"uptime_secs": int(now.Sub(in.started).Seconds()), "idle_secs": int(now.Sub(in.lastActive).Seconds()),
			"restarts": s.restarts[name], "weight": 100, "requests_total": in.hits, "request_duration_avg_ms": 0.0,
			"request_duration_p99_ms": 0.0, "storage_used_bytes": 0, "storage_quota_bytes": nil})
	}
	n := len(s.instances)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"summary": map[string]any{"total_instances": n,
		"healthy_instances": healthy, "total_requests": total}, "instances": insts})
}

// storage answers as tenement's storage call does: 400 without a body
// for a name without ':', 404 without one for an instance not running.
func (s *Server) storage(w http.ResponseWriter, r *http.Request) {
	process, id, ok := strings.Cut(r.PathValue("name"), ":")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	_, found := s.instances[process+":"+id]
	s.mu.Unlock()
	if !found {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"used_bytes": 0, "quota_bytes": nil, "usage_percent": nil,
		"path": "/var/lib/tenement-sim/" + process + "/" + id})
}
