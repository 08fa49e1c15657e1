package observed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/slum-fleet/slum/names"
)

// LogLevel is the output a log line came from.
type LogLevel string

const (
	LogStdout LogLevel = "stdout"
	LogStderr LogLevel = "stderr"
)

// Problem says why l is not a level to ask tenement for ("" for none).
// tenement 0.2.2 takes any other word as no level at all, so slum never
// sends one.
func (l LogLevel) Problem() string {
	switch l {
	case "", LogStdout, LogStderr:
		return ""
	}
	return "must be stdout or stderr"
}

// LogEntry is one line of an instance's output as tenement keeps it.
// tenement gives lines no id: a line is told apart by all its fields.
type LogEntry struct {
	// Timestamp is when tenement read the line, in Unix milliseconds by
	// the server's clock. Lines read in the same millisecond share it.
	Timestamp int64    `json:"timestamp"`
	Level     LogLevel `json:"level"`
	Process   string   `json:"process"`
	ID        string   `json:"instance_id"` // the tenement id, without the process
	Message   string   `json:"message"`
}

// Time is the line's timestamp.
func (e LogEntry) Time() time.Time { return time.UnixMilli(e.Timestamp) }

// MaxLogLines is how many lines a tenement 0.2.2 server keeps: the newest
// 10,000 of all its instances together. They are kept in memory, so a
// restarted server has none; a stopped instance's lines stay.
const MaxLogLines = 10_000

// MaxLogSearch bounds the text a log query searches for.
const MaxLogSearch = 1024

// LogFilter selects lines; an empty field selects every value.
type LogFilter struct {
	Process string
	ID      string // a tenement id, "alice--prod"
	Level   LogLevel
}

// LogQuery asks a server for the lines it keeps.
type LogQuery struct {
	LogFilter
	// Search keeps lines whose message contains it (case-sensitive).
	Search string
	// Limit keeps the newest Limit lines; 0 asks for all of them.
	// (tenement itself answers limit=0 with none: 0 is never sent.)
	Limit int
}

func (c *Client) checkFilter(op string, f LogFilter) error {
	var why string
	switch {
	case f.Process != "" && !names.IsLabel(f.Process):
		why = fmt.Sprintf("process %q must be a DNS label", f.Process)
	case f.ID != "" && !names.IsLabel(f.ID):
		why = fmt.Sprintf("id %q must be a DNS label", f.ID)
	case f.Level.Problem() != "":
		why = fmt.Sprintf("level %q %s", f.Level, f.Level.Problem())
	}
	if why != "" {
		return &Error{Op: op, Server: c.base, Class: ErrBadRequest, Message: "refusing to send: " + why}
	}
	return nil
}

func (f LogFilter) values() url.Values {
	v := url.Values{}
	if f.Process != "" {
		v.Set("process", f.Process)
	}
	if f.ID != "" {
		v.Set("id", f.ID)
	}
	if f.Level != "" {
		v.Set("level", string(f.Level))
	}
	return v
}

// Logs returns the lines the server keeps that q selects, oldest first.
func (c *Client) Logs(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	if err := c.checkFilter("logs", q.LogFilter); err != nil {
		return nil, err
	}
	if q.Limit < 0 || len(q.Search) > MaxLogSearch {
		return nil, &Error{Op: "logs", Server: c.base, Class: ErrBadRequest,
			Message: fmt.Sprintf("refusing to send: a limit of 0 or more and a search of at most %d bytes", MaxLogSearch)}
	}
	v := q.values()
	if q.Search != "" {
		v.Set("search", q.Search)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/logs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []LogEntry
	if err := c.do(ctx, "logs", http.MethodGet, path, nil, true, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DefaultStreamIdle is how long a silent log stream is trusted: tenement
// sends a keepalive comment every 15 s.
const DefaultStreamIdle = 45 * time.Second

// maxLogEvent bounds one event of the log stream (one line of output).
const maxLogEvent = 4 << 20

// LogStream is an open log stream of one server. It carries only lines
// read after it opened: tenement sends no history, and a reader more than
// 1,024 lines behind loses lines without a word. It ignores a search.
type LogStream struct {
	server string
	body   io.ReadCloser
	br     *bufio.Reader
	idle   time.Duration
	dog    *time.Timer
	mu     sync.Mutex
	silent bool // the watchdog closed it
}

// OpenLogStream opens the server's log stream of the lines f selects.
// It returns once the server has answered; idle 0 is DefaultStreamIdle.
func (c *Client) OpenLogStream(ctx context.Context, f LogFilter, idle time.Duration) (*LogStream, error) {
	if err := c.checkFilter("log stream", f); err != nil {
		return nil, err
	}
	resp, err := c.openStream(ctx, "log stream", f.values())
	if err != nil {
		return nil, err
	}
	if idle <= 0 {
		idle = DefaultStreamIdle
	}
	s := &LogStream{server: c.base, body: resp.Body, br: newStreamReader(resp.Body), idle: idle}
	s.dog = time.AfterFunc(idle, func() {
		s.mu.Lock()
		s.silent = true
		s.mu.Unlock()
		resp.Body.Close()
	})
	return s, nil
}

func newStreamReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

// openStream sends an authenticated GET of the log stream and returns
// the answer once it is 200.
func (c *Client) openStream(ctx context.Context, op string, query url.Values) (*http.Response, error) {
	if err := c.refuseLocally(op); err != nil {
		return nil, err
	}
	u := c.base + "/api/logs/stream"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &Error{Op: op, Server: c.base, Class: ErrBadRequest, Message: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Op: op, Server: c.base, Class: ErrUnavailable, Message: transportMessage(err)}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		e := &Error{Op: op, Server: c.base, Status: resp.StatusCode, Class: ErrUnavailable}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			e.Class = ErrUnauthorized
			c.mu.Lock()
			c.authErr = e
			c.mu.Unlock()
		case http.StatusTooManyRequests:
			e.Class, e.RetryAfter = ErrRateLimited, LockoutWait
			c.mu.Lock()
			c.lockedUntil = c.now().Add(LockoutWait)
			c.mu.Unlock()
		}
		return nil, e
	}
	return resp, nil
}

// Next returns the next line, waiting for it. Any error ends the stream:
// the connection closed, fell silent, or sent what is not a log line.
func (s *LogStream) Next() (LogEntry, error) {
	var data []byte
	for {
		line, err := s.readLine()
		if err != nil {
			return LogEntry{}, s.ended(err)
		}
		s.dog.Reset(s.idle)
		switch {
		case len(line) == 0:
			if data == nil {
				continue // a keepalive, or an event without data
			}
			var e LogEntry
			if err := json.Unmarshal(data, &e); err != nil {
				return LogEntry{}, s.ended(fmt.Errorf("%w: a log event that is not a line: %v", ErrMalformed, err))
			}
			return e, nil
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
		// Comments, ids, event names and retry hints carry nothing here.
	}
}

func (s *LogStream) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLogEvent {
			return nil, fmt.Errorf("%w: a log event longer than %d bytes", ErrMalformed, maxLogEvent)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}

// ended closes the stream and says why it ended.
func (s *LogStream) ended(err error) error {
	s.Close()
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	s.mu.Lock()
	silent := s.silent
	s.mu.Unlock()
	msg := "the log stream ended: " + transportMessage(err)
	if silent {
		msg = fmt.Sprintf("the log stream was silent for %s", s.idle)
	}
	class := ErrUnavailable
	if errors.Is(err, ErrMalformed) {
		class, msg = ErrMalformed, err.Error()
	}
	return &Error{Op: "log stream", Server: s.server, Class: class, Message: msg}
}

// Close ends the stream.
func (s *LogStream) Close() {
	s.dog.Stop()
	s.body.Close()
}

// MaxRestartBackoff is the longest tenement 0.2.2 waits before a
// restart (its backoff_max_ms default).
const MaxRestartBackoff = time.Minute

// Restart restarts process:id: tenement stops it (if it runs) and spawns
// it again, so a restart of an instance that is not running starts it.
// Each restart of the same instance since the server started waits
// longer first (tenement's backoff: none, 1 s, 2 s, 4 s … up to
// MaxRestartBackoff), and the call answers only once it is spawned again;
// so it is given the client's timeout plus that.
func (c *Client) Restart(ctx context.Context, process, id string) (SpawnResult, error) {
	var out SpawnResult
	if err := c.checkName("restart", process, id); err != nil {
		return out, err
	}
	err := c.doWithin(ctx, c.timeout+MaxRestartBackoff, "restart", http.MethodPost, "/api/instances/"+process+":"+id+"/restart", nil, true, &out)
	return out, err
}

// Telemetry is tenement's summary of its instances and their traffic.
type Telemetry struct {
	Summary struct {
		TotalInstances   int    `json:"total_instances"`
		HealthyInstances int    `json:"healthy_instances"`
		TotalRequests    uint64 `json:"total_requests"`
	} `json:"summary"`
	Instances []InstanceTelemetry `json:"instances"`
}

// InstanceTelemetry is one running instance's entry. tenement 0.2.2's
// request_duration_p99_ms is always 0 and is left out.
type InstanceTelemetry struct {
	Name                 string  `json:"id"` // process:id
	Process              string  `json:"process"`
	ID                   string  `json:"instance"`
	Health               string  `json:"health"`
	UptimeSecs           uint64  `json:"uptime_secs"`
	IdleSecs             uint64  `json:"idle_secs"`
	Restarts             uint32  `json:"restarts"`
	Weight               int     `json:"weight"`
	RequestsTotal        uint64  `json:"requests_total"`
	RequestDurationAvgMs float64 `json:"request_duration_avg_ms"`
	StorageUsedBytes     uint64  `json:"storage_used_bytes"`
	StorageQuotaBytes    *uint64 `json:"storage_quota_bytes"`
}

// Telemetry reads the server's telemetry: one call for every instance.
// tenement 0.2.2 asks no token for it; the client sends its own anyway,
// which costs nothing there.
func (c *Client) Telemetry(ctx context.Context) (Telemetry, error) {
	var out Telemetry
	err := c.do(ctx, "telemetry", http.MethodGet, "/api/telemetry", nil, true, &out)
	return out, err
}

// Storage is the disk use of one instance's data directory.
type Storage struct {
	UsedBytes    uint64   `json:"used_bytes"`
	QuotaBytes   *uint64  `json:"quota_bytes"`   // nil: no quota
	UsagePercent *float64 `json:"usage_percent"` // nil: no quota
	Path         string   `json:"path"`          // on the server
}

// Storage reads process:id's disk use. It fails with ErrNoInstance when
// the instance does not run there (tenement measures running ones only).
func (c *Client) Storage(ctx context.Context, process, id string) (Storage, error) {
	var out Storage
	if err := c.checkName("storage", process, id); err != nil {
		return out, err
	}
	err := c.do(ctx, "storage", http.MethodGet, "/api/instances/"+process+":"+id+"/storage", nil, true, &out)
	return out, err
}
