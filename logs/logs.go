// Package logs reads a tenant's log lines where tenement keeps them: on
// each server one of its copies runs on. It owns gathering every copy's
// lines (or one instance's), merged in time order, each labelled with its
// copy (instance@server); the filters (since, tenement's search, level);
// following as copies fail over and move, from the fleet's record of
// where they are; marking lines of copies whose server went away; never
// printing a line twice (tenement gives lines no id); and the bounds on
// what it holds. It reads server tokens from the fleet and never hands
// one out: nothing it returns or says carries one. The CLI runs it on the
// fleet database, the API on its store for remote callers.
package logs

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed"
)

// Fleet is what reading logs needs of the fleet: where a tenant's copies
// are, and the servers with their tokens and health. A store is one; the
// API client is not (it hides tokens): remote callers go through the
// API, which reads logs on its own store.
type Fleet interface {
	ListInstancesOfTenant(ctx context.Context, tenant string) ([]slum.Instance, error)
	TenantStatus(ctx context.Context, id string) (slum.TenantStatus, error)
	ListServers(ctx context.Context) ([]slum.Server, error)
	ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error)
}

// Query says which lines to read.
type Query struct {
	Tenant   string `json:"tenant"`
	Instance string `json:"instance,omitempty"` // "": every instance
	// Since keeps lines from then on; zero: all the servers keep.
	Since time.Time `json:"since,omitzero"`
	// Grep keeps lines that contain it, case-sensitive (tenement's
	// search).
	Grep  string            `json:"grep,omitempty"`
	Level observed.LogLevel `json:"level,omitempty"` // "": both
	// Lines keeps the newest Lines lines of the merge (before following);
	// 0: all.
	Lines  int  `json:"lines,omitempty"`
	Follow bool `json:"follow,omitempty"`
}

// Validate checks a query as a user gave it.
func (q Query) Validate() error {
	if p := names.IDProblem(q.Tenant); p != "" {
		return &slum.FieldError{Field: "tenant id", Value: q.Tenant, Reason: p}
	}
	if p := names.IDProblem(q.Instance); q.Instance != "" && p != "" {
		return &slum.FieldError{Field: "instance id", Value: q.Instance, Reason: p}
	}
	if p := q.Level.Problem(); p != "" {
		return &slum.FieldError{Field: "--level", Value: string(q.Level), Reason: p}
	}
	if len(q.Grep) > observed.MaxLogSearch {
		return &slum.FieldError{Field: "--grep", Value: q.Grep[:32] + "…", Reason: fmt.Sprintf("must be at most %d bytes", observed.MaxLogSearch)}
	}
	if q.Lines < 0 {
		return &slum.FieldError{Field: "--lines", Value: strconv.Itoa(q.Lines), Reason: "must be 0 or more"}
	}
	return nil
}

// Values is the query as URL parameters (the API's), the tenant aside.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("instance", q.Instance)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	set("grep", q.Grep)
	set("level", string(q.Level))
	if q.Lines > 0 {
		v.Set("lines", strconv.Itoa(q.Lines))
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	return v
}

// ParseValues reads a query from URL parameters (see Values) and checks
// it.
func ParseValues(tenant string, v url.Values) (Query, error) {
	q := Query{Tenant: tenant, Instance: v.Get("instance"), Grep: v.Get("grep"), Level: observed.LogLevel(v.Get("level"))}
	for k := range v {
		switch k {
		case "instance", "since", "grep", "level", "lines", "follow":
		default:
			return q, &slum.FieldError{Field: "query parameter", Value: k, Reason: "is not one of instance, since, grep, level, lines, follow"}
		}
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, &slum.FieldError{Field: "since", Value: s, Reason: "must be an RFC 3339 time"}
		}
		q.Since = t
	}
	if s := v.Get("lines"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, &slum.FieldError{Field: "lines", Value: s, Reason: "must be a whole number, 0 or more"}
		}
		q.Lines = n
	}
	if s := v.Get("follow"); s != "" {
		f, err := strconv.ParseBool(s)
		if err != nil {
			return q, &slum.FieldError{Field: "follow", Value: s, Reason: "must be true or false"}
		}
		q.Follow = f
	}
	return q, q.Validate()
}

// Line is one line of a copy's output.
type Line struct {
	Time     time.Time         `json:"time"` // when tenement read it, to the millisecond, by its server's clock
	Instance string            `json:"instance"`
	Server   string            `json:"server"`
	Copy     string            `json:"copy"` // instance@server
	Level    observed.LogLevel `json:"level"`
	Message  string            `json:"message"`
	// Gone says, for a copy whose server went away or that is no longer
	// where its instance runs, why ("server s1 is dead", "an old copy:
	// prod runs on s3"); "" for a copy where it should be.
	Gone string `json:"gone,omitempty"`
}

// Notice is slum's word about the reading itself: a copy that could not
// be read, was lost or found, lines dropped.
type Notice struct {
	Time    time.Time `json:"time"`
	Copy    string    `json:"copy,omitempty"` // the copy it is about, if one
	Message string    `json:"message"`
}

func (n Notice) String() string {
	if n.Copy == "" {
		return n.Message
	}
	return n.Copy + ": " + n.Message
}

// Output receives what a read finds, in order. An error from either ends
// the read with it.
type Output struct {
	Line   func(Line) error
	Notice func(Notice) error
	// Following calls Started (when set) once the query has been checked
	// and the fleet read, before anything else: errors until then are
	// the read's own (a tenant not found), after it only its end.
	Started func() error
}

// ParseSince reads --since: a duration before now ("10m", "1h30m"), an
// RFC 3339 time, or a local "2006-01-02 15:04[:05]" or "2006-01-02".
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, &slum.FieldError{Field: "--since", Value: s, Reason: "must be a duration back from now, not a negative one"}
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &slum.FieldError{Field: "--since", Value: s,
		Reason: "must be a duration (10m, 1h30m), an RFC 3339 time (2026-05-01T12:00:00Z) or a local time (2026-05-01 12:00)"}
}

// Result is a read that does not follow: the notices, then the lines in
// time order.
type Result struct {
	Notices []Notice `json:"notices"`
	Lines   []Line   `json:"lines"`
}

// Options tune a read. The zero value is the defaults.
type Options struct {
	Clock clock.Clock
	// HTTP reaches the tenement servers; nil: a client of its own.
	HTTP *http.Client
	// Timeout bounds one call to a server (default 5 s).
	Timeout time.Duration
	// PollEvery is how often following reads where the copies are
	// (default 250 ms).
	PollEvery time.Duration
	// Window is how long following holds a line for older lines of other
	// copies to arrive, so that the merge stays in time order (default
	// 200 ms). A line that arrives later than that behind lines already
	// written is written out of order.
	Window time.Duration
	// MaxPerCopy bounds the lines of one copy waiting to be merged; the
	// oldest beyond it are dropped, with a notice (default 10,000).
	MaxPerCopy int
	// MaxPending bounds the lines held in the merge; beyond it the oldest
	// are written at once, ahead of their window (default 10,000).
	MaxPending int
	// Retry is the first wait before reconnecting to a copy's server; it
	// doubles up to 5 s (default 250 ms).
	Retry time.Duration
	// StreamIdle is how long a silent stream is trusted (default
	// observed.DefaultStreamIdle).
	StreamIdle time.Duration
}

// sharedHTTP reaches tenement servers for every read that brings no
// client of its own: one pool of connections (the API serves many reads).
var sharedHTTP = &http.Client{Transport: observed.NewTransport()}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.HTTP == nil {
		o.HTTP = sharedHTTP
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 5*time.Second)
	def(&o.PollEvery, 250*time.Millisecond)
	def(&o.Window, 200*time.Millisecond)
	def(&o.Retry, 250*time.Millisecond)
	def(&o.StreamIdle, observed.DefaultStreamIdle)
	if o.MaxPerCopy <= 0 {
		o.MaxPerCopy = observed.MaxLogLines
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 10_000
	}
	return o
}

// Read reads what q asks and hands it to out: with q.Follow, until ctx
// ends (or the tenant is removed); otherwise what the servers keep, then
// it returns.
func Read(ctx context.Context, f Fleet, q Query, opt Options, out Output) error {
	if q.Follow {
		return Follow(ctx, f, q, opt, out)
	}
	res, err := Gather(ctx, f, q, opt)
	if err != nil {
		return err
	}
	return res.Write(out)
}

// Write hands the result to out: notices first, then lines.
func (r Result) Write(out Output) error {
	for _, n := range r.Notices {
		if err := out.Notice(n); err != nil {
			return err
		}
	}
	for _, l := range r.Lines {
		if err := out.Line(l); err != nil {
			return err
		}
	}
	return nil
}
