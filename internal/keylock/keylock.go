// Package keylock serialises work per key within a process: one module
// version or submodule URL fetched once, one Hugo release unpacked once,
// one site's npm install at a time. Keys are few and long-lived, so their
// locks are kept.
package keylock

import (
	"context"
	"sync"
)

// Locks is a set of locks, one per key. The zero value is ready.
type Locks struct {
	mu    sync.Mutex
	locks map[string]chan struct{} // a token per key; a channel, so waiting ends with ctx
}

// Lock waits for key, or for ctx to end, and returns its unlock.
func (l *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]chan struct{}{}
	}
	c, ok := l.locks[key]
	if !ok {
		c = make(chan struct{}, 1)
		l.locks[key] = c
	}
	l.mu.Unlock()
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
