package keylock_test

import (
	"sync"
	"testing"

	"github.com/sitehost/sitehost/internal/keylock"
)

func TestLockPerKey(t *testing.T) {
	var l keylock.Locks
	var wg sync.WaitGroup
	counts := map[string]int{}
	var mu sync.Mutex
	inside := map[string]int{}
	for i := range 200 {
		key := []string{"a", "b"}[i%2]
		wg.Go(func() {
			unlock := l.Lock(key)
			defer unlock()
			mu.Lock()
			inside[key]++
			if inside[key] > 1 {
				t.Errorf("two holders of %s at once", key)
			}
			counts[key]++
			mu.Unlock()
			mu.Lock()
			inside[key]--
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["a"] != 100 || counts["b"] != 100 {
		t.Errorf("counts %v", counts)
	}
	// Another key is free while one is held.
	unlockA := l.Lock("a")
	unlockB := l.Lock("b")
	unlockB()
	unlockA()
}
