package backoff

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Clock schedules retries: Real in production; a test's Manual moves
// only when told, so it drives a retry loop without waiting out delays.
type Clock interface {
	// AfterFunc calls f once d has passed, as time.AfterFunc does.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call. Stop cancels it, reporting whether it had
// not been called yet.
type Timer interface{ Stop() bool }

// Real is the system's clock: time.AfterFunc.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Manual is a Clock whose time moves only by Advance. Calls fall due in
// Advance, on its goroutine, in the order of their due times. The zero
// value is ready; it is safe for concurrent use.
type Manual struct {
	mu      sync.Mutex
	now     time.Duration // since the clock was made
	pending []*manualTimer
	added   chan struct{} // closed (and replaced) when a call is scheduled
}

type manualTimer struct {
	m   *Manual
	due time.Duration
	f   func()
}

// AfterFunc schedules f for d after the clock's now.
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{m: m, due: m.now + max(d, 0), f: f}
	m.pending = append(m.pending, t)
	if m.added != nil {
		close(m.added)
		m.added = nil
	}
	return t
}

// Stop cancels the call if it has not fallen due.
func (t *manualTimer) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	i := slices.Index(t.m.pending, t)
	if i < 0 {
		return false
	}
	t.m.pending = slices.Delete(t.m.pending, i, i+1)
	return true
}

// Next waits until a call is scheduled and returns how long after now the
// earliest falls due.
func (m *Manual) Next(ctx context.Context) (time.Duration, error) {
	for {
		m.mu.Lock()
		if len(m.pending) > 0 {
			due := slices.MinFunc(m.pending, func(a, b *manualTimer) int { return cmp.Compare(a.due, b.due) }).due
			m.mu.Unlock()
			return due - m.now, nil
		}
		if m.added == nil {
			m.added = make(chan struct{})
		}
		added := m.added
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		case <-added:
		}
	}
}

// Pending is how many calls are scheduled and not yet due.
func (m *Manual) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// Advance moves the clock d forward and makes the calls that fall due,
// earliest first. A call scheduled by one of them falls due in a later
// Advance, even with no delay.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	m.now += max(d, 0)
	var due []*manualTimer
	m.pending = slices.DeleteFunc(m.pending, func(t *manualTimer) bool {
		if t.due <= m.now {
			due = append(due, t)
			return true
		}
		return false
	})
	m.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *manualTimer) int { return cmp.Compare(a.due, b.due) })
	for _, t := range due {
		t.f()
	}
}
