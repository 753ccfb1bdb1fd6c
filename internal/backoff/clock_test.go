package backoff_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/backoff"
)

// TestManual: calls fall due only when the clock is advanced past them,
// earliest first; a stopped one never does; Next waits for a call to be
// scheduled and says when the earliest is due.
func TestManual(t *testing.T) {
	var (
		clock backoff.Manual
		mu    sync.Mutex
		ran   []string
	)
	call := func(name string) func() {
		return func() { mu.Lock(); ran = append(ran, name); mu.Unlock() }
	}
	ranSoFar := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(ran) }

	clock.AfterFunc(3*time.Second, call("3s"))
	clock.AfterFunc(time.Second, call("1s"))
	two := clock.AfterFunc(2*time.Second, call("2s"))
	stopped := clock.AfterFunc(1500*time.Millisecond, call("stopped"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true once, then false")
	}
	if d, err := clock.Next(t.Context()); err != nil || d != time.Second {
		t.Fatalf("Next: %v, %v; want 1s", d, err)
	}
	clock.Advance(999 * time.Millisecond)
	if got := ranSoFar(); len(got) != 0 {
		t.Fatalf("before any is due: %q ran", got)
	}
	clock.Advance(time.Second) // now 1.999s
	clock.Advance(time.Millisecond)
	if got := ranSoFar(); !slices.Equal(got, []string{"1s", "2s"}) {
		t.Fatalf("at 2s: %q ran, want [1s 2s]", got)
	}
	if two.Stop() {
		t.Error("Stop after the call: true, want false")
	}
	if d, err := clock.Next(t.Context()); err != nil || d != time.Second || clock.Pending() != 1 {
		t.Fatalf("Next: %v, %v (%d pending); want 1s, one pending", d, err, clock.Pending())
	}
	clock.Advance(time.Hour)
	if got := ranSoFar(); !slices.Equal(got, []string{"1s", "2s", "3s"}) {
		t.Fatalf("after an hour: %q ran", got)
	}

	// Next waits for the next call to be scheduled.
	got := make(chan time.Duration)
	go func() {
		d, err := clock.Next(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	clock.AfterFunc(5*time.Second, call("5s"))
	if d := <-got; d != 5*time.Second {
		t.Fatalf("Next after waiting: %v, want 5s", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	clock.Advance(5 * time.Second)
	if _, err := clock.Next(ctx); err == nil {
		t.Fatal("Next with nothing scheduled and a cancelled context: no error")
	}
}
