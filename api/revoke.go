package api

import (
	"context"
	"sync"
	"time"
)

// streams are the open watch streams by the token each came with, so that
// revoking a token ends its streams too, wherever it was revoked (this
// API, another, or the CLI on the database): a token that stops working
// stops everywhere, open streams included.
type streams struct {
	mu   sync.Mutex
	open map[int64]map[*context.CancelFunc]struct{} // token id → the cancels of its streams
}

func newStreams() *streams { return &streams{open: map[int64]map[*context.CancelFunc]struct{}{}} }

// add registers a stream of token id; remove unregisters it.
func (s *streams) add(id int64, cancel context.CancelFunc) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.open[id]
	if set == nil {
		set = map[*context.CancelFunc]struct{}{}
		s.open[id] = set
	}
	key := &cancel
	set[key] = struct{}{}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(set, key)
		if len(set) == 0 {
			delete(s.open, id)
		}
	}
}

// tokens lists the tokens with open streams.
func (s *streams) tokens() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.open))
	for id := range s.open {
		ids = append(ids, id)
	}
	return ids
}

// end ends every stream of token id.
func (s *streams) end(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.open[id] {
		(*c)()
	}
}

// revokeEvery is how often the tokens of open streams are checked.
const revokeEvery = 250 * time.Millisecond

// sweep ends the streams of every token that no longer works. One read of
// the token list, whatever the number of streams.
func (s *Server) sweep(ctx context.Context) {
	ids := s.streams.tokens()
	if len(ids) == 0 {
		return
	}
	list, err := s.store.ListAPITokens(ctx)
	if err != nil {
		return // the database is unreadable: the next sweep tries again
	}
	working := make(map[int64]bool, len(list))
	for _, t := range list {
		working[t.ID] = !t.Revoked()
	}
	for _, id := range ids {
		if !working[id] {
			s.log.Info("ending the watch streams of a revoked API token", "token", id)
			s.streams.end(id)
		}
	}
}

// sweepRevoked sweeps every revokeEvery until ctx ends.
func (s *Server) sweepRevoked(ctx context.Context) {
	t := time.NewTicker(revokeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep(ctx)
		}
	}
}
