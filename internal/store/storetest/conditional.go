package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sitehost/sitehost/internal/store"
)

func testIfNoneMatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := "sites/blog/channels/pr-1.json"
	create := store.PutOptions{IfNoneMatch: true}
	if _, err := s.Put(ctx, key, strings.NewReader("first"), 5, create); err != nil {
		t.Fatalf("create-only Put of a new key: %v", err)
	}
	_, err := s.Put(ctx, key, strings.NewReader("second"), 6, create)
	checkPrecondition(t, err, key)
	if got, _ := mustGet(t, s, key); string(got) != "first" {
		t.Errorf("after lost create-only Put, content = %q, want %q", got, "first")
	}
}

func testIfMatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := "sites/blog/channels/production.json"
	v1 := mustPut(t, s, key, []byte("v1"))

	v2, err := s.Put(ctx, key, strings.NewReader("v2"), 2, store.PutOptions{IfMatch: v1.ETag})
	if err != nil {
		t.Fatalf("Put IfMatch current ETag: %v", err)
	}
	if v2.ETag == v1.ETag || v2.ETag == "" {
		t.Errorf("Put IfMatch returned ETag %q, want a new one (old %q)", v2.ETag, v1.ETag)
	}
	if info := mustStat(t, s, key); info.ETag != v2.ETag {
		t.Errorf("Stat ETag = %q, want the one Put returned, %q", info.ETag, v2.ETag)
	}

	_, err = s.Put(ctx, key, strings.NewReader("v3"), 2, store.PutOptions{IfMatch: v1.ETag})
	checkPrecondition(t, err, key)
	if got, _ := mustGet(t, s, key); string(got) != "v2" {
		t.Errorf("after lost IfMatch Put, content = %q, want %q", got, "v2")
	}

	// S3 answers If-Match on a missing key with 404, a filesystem can as
	// well say 412: both mean the caller's view is stale.
	missing := "sites/blog/channels/pr-9.json"
	_, err = s.Put(ctx, missing, strings.NewReader("v1"), 2, store.PutOptions{IfMatch: v1.ETag})
	if !errors.Is(err, store.ErrPrecondition) && !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Put IfMatch on a missing key: error = %v, want ErrPrecondition or ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after failed IfMatch Put of a missing key, Stat error = %v, want ErrNotFound", err)
	}
}

func testBothConditions(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := "sites/blog/channels/production.json"
	v1 := mustPut(t, s, key, []byte("v1"))
	_, err := s.Put(ctx, key, strings.NewReader("v2"), 2, store.PutOptions{IfMatch: v1.ETag, IfNoneMatch: true})
	if err == nil {
		t.Error("Put with both IfMatch and IfNoneMatch succeeded, want an error")
	}
	if got, _ := mustGet(t, s, key); string(got) != "v1" {
		t.Errorf("content = %q, want %q", got, "v1")
	}
}

// testCreateRace has 8 writers create the same key at once; exactly one
// must win and its bytes must be the ones stored.
func testCreateRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers = 8
	key := "sites/race/channels/production.json"
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			body := fmt.Sprintf("writer %d", i)
			<-start
			_, errs[i] = s.Put(ctx, key, strings.NewReader(body), int64(len(body)), store.PutOptions{IfNoneMatch: true})
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the key", winner, i)
		case err == nil:
			winner = i
		default:
			checkPrecondition(t, err, key)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the key")
	}
	if got, _ := mustGet(t, s, key); string(got) != fmt.Sprintf("writer %d", winner) {
		t.Errorf("content = %q, want writer %d's", got, winner)
	}
}

// testCompareAndSwapRace runs rounds in which every writer reads the ETag,
// waits for the others to read too, then writes with If-Match: exactly one
// write per round may land.
func testCompareAndSwapRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, rounds = 8, 5
	key := "sites/race/channels/production.json"
	mustPut(t, s, key, []byte("initial"))
	for round := range rounds {
		errs := make([]error, writers)
		var read, wg sync.WaitGroup
		start := make(chan struct{})
		read.Add(writers)
		for i := range writers {
			wg.Go(func() {
				info, err := s.Stat(ctx, key)
				read.Done()
				<-start
				if err != nil {
					errs[i] = fmt.Errorf("stat: %w", err)
					return
				}
				body := fmt.Sprintf("round %d writer %d", round, i)
				_, errs[i] = s.Put(ctx, key, strings.NewReader(body), int64(len(body)), store.PutOptions{IfMatch: info.ETag})
			})
		}
		read.Wait()
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: writers %d and %d both swapped", round, winner, i)
			case err == nil:
				winner = i
			default:
				checkPrecondition(t, err, key)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer swapped", round)
		}
		if got, _ := mustGet(t, s, key); string(got) != fmt.Sprintf("round %d writer %d", round, winner) {
			t.Errorf("round %d: content = %q, want writer %d's", round, got, winner)
		}
	}
}

// checkPrecondition asserts that err is a lost condition on key.
func checkPrecondition(t *testing.T, err error, key string) {
	t.Helper()
	var pe *store.PreconditionError
	switch {
	case err == nil:
		t.Errorf("conditional Put of %q succeeded, want a precondition failure", key)
	case !errors.As(err, &pe):
		t.Errorf("error = %v, want a *store.PreconditionError", err)
	case pe.Key != key:
		t.Errorf("PreconditionError.Key = %q, want %q", pe.Key, key)
	case !errors.Is(err, store.ErrPrecondition):
		t.Errorf("error = %v, want errors.Is ErrPrecondition", err)
	}
}
