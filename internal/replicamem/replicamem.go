// Package replicamem is an in-memory replica.Store with S3's conditional
// semantics (create if absent, replace if the ETag is unchanged), for the
// tests of the lease rules and of what acts on leases; the same behaviours
// run against a real store (internal/replicastore) in their S3 tests.
package replicamem

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"sync"

	"github.com/slum-fleet/slum/replica"
)

// Store is an in-memory replica store. Safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	objs    map[string]replica.Object
	failing error
}

var _ replica.Store = (*Store)(nil)

// New makes an empty store.
func New() *Store { return &Store{objs: map[string]replica.Object{}} }

// Fail makes every call fail with err until Fail(nil): a store that
// cannot be reached.
func (m *Store) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failing = err
}

func (m *Store) Get(_ context.Context, key string) (replica.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing != nil {
		return replica.Object{}, m.failing
	}
	o, ok := m.objs[key]
	if !ok {
		return replica.Object{}, replica.ErrNotExist
	}
	return o, nil
}

func (m *Store) put(key string, body []byte, cond func(replica.Object, bool) bool) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing != nil {
		return "", m.failing
	}
	o, ok := m.objs[key]
	if !cond(o, ok) {
		return "", replica.ErrChanged
	}
	sum := md5.Sum(body)
	etag := hex.EncodeToString(sum[:])
	m.objs[key] = replica.Object{Body: append([]byte(nil), body...), ETag: etag}
	return etag, nil
}

func (m *Store) Create(_ context.Context, key string, body []byte) (string, error) {
	return m.put(key, body, func(_ replica.Object, ok bool) bool { return !ok })
}

func (m *Store) Replace(_ context.Context, key string, body []byte, etag string) (string, error) {
	return m.put(key, body, func(o replica.Object, ok bool) bool { return ok && o.ETag == etag })
}
