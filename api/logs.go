package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/logs"
)

// serveLogs answers a tenant's log lines (see wire.LogsPath), read from
// its servers with the tokens of the API's own store, which no answer
// carries. A read token may ask. It takes no body. A followed stream ends
// when the caller's token is revoked or the API stops.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) error {
	if err := admitBody(r, 0); err != nil {
		return err
	}
	q, err := logs.ParseValues(wire.FromPathSegment(r.PathValue("id")), r.URL.Query())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if c := callerOf(ctx); !c.noAuth {
		defer s.streams.add(c.token.ID, cancel)()
	}
	opt := logs.Options{Clock: s.cfg.Clock}
	if !q.Follow {
		res, err := logs.Gather(ctx, s.store, q, opt)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	st := &logStream{ctx: ctx, w: w, rc: http.NewResponseController(w)}
	out := logs.Output{
		Line:    func(l logs.Line) error { return st.send(wire.LogEventLine, l) },
		Notice:  func(n logs.Notice) error { return st.send(wire.LogEventNotice, n) },
		Started: st.start,
	}
	go st.keepalive(ctx, s.cfg.Keepalive, s.closing, cancel)
	err = logs.Follow(ctx, s.store, q, opt, out)
	switch {
	case !st.started():
		return err // nothing sent yet: an error answer of its own
	case ctx.Err() != nil || errors.Is(err, errLogWrite):
		// Cut: the client left, its token was revoked, the API stops.
	case err != nil:
		_ = st.send(wire.LogEventError, wire.Error{Error: wire.ErrorBody{Kind: wire.KindOf(err), Message: err.Error()}})
	default:
		_ = st.send(wire.LogEventEnd, struct{}{})
	}
	return nil
}

// errLogWrite: the client of a log stream stopped reading.
var errLogWrite = errors.New("writing the log stream failed")

// logStream writes the events of a followed read; its keepalives come
// from another goroutine.
type logStream struct {
	// ctx ends with the stream (its token revoked, the client gone): no
	// event is written after, even one already on its way.
	ctx context.Context
	w   http.ResponseWriter
	rc  *http.ResponseController

	mu   sync.Mutex
	open bool
}

func (st *logStream) start() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
	st.open = true
	return st.writeLocked([]byte(": following\n\n"))
}

func (st *logStream) started() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.open
}

// send writes one event.
func (st *logStream) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	frame := make([]byte, 0, len(data)+len(event)+16)
	frame = append(append(append(frame, "event: "...), event...), "\ndata: "...)
	frame = append(append(frame, data...), "\n\n"...)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.ctx.Err(); err != nil {
		return err
	}
	return st.writeLocked(frame)
}

// writeLocked writes and flushes; a client that does not take a frame
// within 30 s is dropped rather than held forever.
func (st *logStream) writeLocked(b []byte) error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := st.w.Write(b); err != nil {
		return errors.Join(errLogWrite, err)
	}
	if err := st.rc.Flush(); err != nil {
		return errors.Join(errLogWrite, err)
	}
	return nil
}

// keepalive writes a comment every so often, so that proxies keep an idle
// stream, and ends the stream (cancel) when the API closes.
func (st *logStream) keepalive(ctx context.Context, every time.Duration, closing <-chan struct{}, cancel func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-closing:
			cancel()
			return
		case <-t.C:
			st.mu.Lock()
			var err error
			if st.open {
				err = st.writeLocked([]byte(": keepalive\n\n"))
			}
			st.mu.Unlock()
			if err != nil {
				cancel()
				return
			}
		}
	}
}
