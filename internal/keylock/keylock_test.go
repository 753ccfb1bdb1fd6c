package keylock_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/sitehost/sitehost/internal/keylock"
)

func TestLockPerKey(t *testing.T) {
	var l keylock.Locks
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts, inside := map[string]int{}, map[string]int{}
	for i := range 200 {
		key := []string{"a", "b"}[i%2]
		wg.Go(func() {
			unlock, err := l.Lock(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			defer unlock()
			mu.Lock()
			inside[key]++
			if inside[key] > 1 {
				t.Errorf("two holders of %s at once", key)
			}
			counts[key]++
			inside[key]--
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["a"] != 100 || counts["b"] != 100 {
		t.Errorf("counts %v", counts)
	}
}

// A waiter gives up when its context ends; another key stays free.
func TestLockWaitEndsWithContext(t *testing.T) {
	var l keylock.Locks
	unlockA, err := l.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Lock(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting on a held key with a done context: %v", err)
	}
	unlockB, err := l.Lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	unlockA()
	unlockA2, err := l.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockA2()
}
