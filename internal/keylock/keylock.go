// Package keylock serialises work per key within a process: one module
// version downloaded once, one site's npm install at a time. Keys are few
// and long-lived (sites, module versions), so their mutexes are kept.
package keylock

import "sync"

// Locks is a set of mutexes, one per key. The zero value is ready.
type Locks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// Lock waits for key and returns its unlock.
func (l *Locks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m, ok := l.locks[key]
	if !ok {
		m = &sync.Mutex{}
		l.locks[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}
