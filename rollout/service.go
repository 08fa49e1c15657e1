package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/observed"
)

// Service is slum.Restarts over a store: rollouts it starts or resumes
// run in the background, in this process, until they end or the
// service's context does (then they stay unfinished, to be resumed).
type Service struct {
	ctx    context.Context
	st     Store
	dial   Dial
	cfg    Config
	runner string

	wg   sync.WaitGroup
	mu   sync.Mutex
	errs map[int64]error // how each rollout this service ran ended
}

var _ slum.Restarts = (*Service)(nil)

// NewService runs rollouts on st's fleet until ctx ends.
func NewService(ctx context.Context, st Store, dial Dial, cfg Config) *Service {
	var b [6]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	return &Service{ctx: ctx, st: st, dial: dial, cfg: cfg.withDefaults(), errs: map[int64]error{},
		runner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))}
}

// Restart plans spec and, unless it is a dry run, records and starts it.
func (s *Service) Restart(ctx context.Context, spec slum.RestartSpec) (slum.Rollout, error) {
	if err := spec.Validate(); err != nil {
		return slum.Rollout{}, err
	}
	ins, err := s.st.ListInstances(ctx)
	if err != nil {
		return slum.Rollout{}, err
	}
	ts, err := s.st.ListTenantStatus(ctx)
	if err != nil {
		return slum.Rollout{}, err
	}
	steps, err := Plan(Fleet{Instances: ins, Tenants: ts}, spec)
	if err != nil {
		return slum.Rollout{}, err
	}
	if spec.DryRun {
		return slum.Rollout{Spec: spec, Steps: steps}, nil
	}
	r, err := s.st.CreateRollout(ctx, spec, steps, s.runner)
	if err != nil {
		return r, err
	}
	s.start(r)
	return r, nil
}

// ResumeRollout claims an interrupted rollout (id 0: the unfinished one)
// and runs it on.
func (s *Service) ResumeRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	if id == 0 {
		u, err := s.st.UnfinishedRollout(ctx)
		if err != nil {
			return u, fmt.Errorf("resume: %w: no rollout is unfinished", slum.ErrNotFound)
		}
		id = u.ID
	}
	r, err := s.st.ClaimRollout(ctx, id, s.runner, slum.RolloutStale)
	if err != nil {
		return r, err
	}
	s.start(r)
	return r, nil
}

// AbandonRollout gives an unfinished rollout up.
func (s *Service) AbandonRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	if id == 0 {
		u, err := s.st.UnfinishedRollout(ctx)
		if err != nil {
			return u, fmt.Errorf("abandon: %w: no rollout is unfinished", slum.ErrNotFound)
		}
		id = u.ID
	}
	return s.st.AbandonRollout(ctx, id)
}

// GetRollout is the rollout as the store keeps it (id 0: the latest).
func (s *Service) GetRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	if id == 0 {
		rs, err := s.st.ListRollouts(ctx, 1)
		if err != nil {
			return slum.Rollout{}, err
		}
		if len(rs) == 0 {
			return slum.Rollout{}, fmt.Errorf("rollout: %w: there has been none", slum.ErrNotFound)
		}
		return rs[0], nil
	}
	return s.st.GetRollout(ctx, id)
}

// ListRollouts are the latest n rollouts, newest first.
func (s *Service) ListRollouts(ctx context.Context, n int64) ([]slum.Rollout, error) {
	return s.st.ListRollouts(ctx, n)
}

// start runs r in the background. The runner gets its own copy of the
// steps, which it changes as it goes: r, returned to the caller, must not
// share them.
func (s *Service) start(r slum.Rollout) {
	r.Steps = slices.Clone(r.Steps)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, err := Run(s.ctx, s.st, s.dial, s.cfg, r)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.cfg.Log.Warn("rollout ended", "rollout", r.ID, "err", err)
		}
		s.mu.Lock()
		s.errs[r.ID] = err
		s.mu.Unlock()
	}()
}

// Err is how a rollout this service ran ended (nil: done, or not ended
// here), for messages the store does not keep (a store failure).
func (s *Service) Err(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs[id]
}

// Wait waits for the rollouts this service runs to end.
func (s *Service) Wait() { s.wg.Wait() }

// HTTPDial dials tenement servers with observed's client, each call
// bounded by timeout (a restart by tenement's longest backoff more).
func HTTPDial(timeout time.Duration) Dial {
	return func(s slum.Server) (Tenement, error) {
		c, err := observed.NewClient(s.URL, s.Token, observed.WithTimeout(timeout))
		if err != nil {
			return nil, err
		}
		return tenement{c}, nil
	}
}

type tenement struct{ c *observed.Client }

func (t tenement) Restart(ctx context.Context, process, id string) error {
	_, err := t.c.Restart(ctx, process, id)
	return err
}

func (t tenement) Health(ctx context.Context, process, id string) (string, error) {
	return t.c.Health(ctx, process, id)
}
