package fsstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
	"github.com/sitehost/sitehost/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, t.TempDir())
	})
}

func newStore(tb testing.TB, root string) *fsstore.Store {
	tb.Helper()
	s, err := fsstore.New(root)
	if err != nil {
		tb.Fatalf("New(%q): %v", root, err)
	}
	return s
}

func put(t *testing.T, s *fsstore.Store, key, body string, opts store.PutOptions) (store.Info, error) {
	t.Helper()
	return s.Put(t.Context(), key, strings.NewReader(body), int64(len(body)), opts)
}

func listKeys(t *testing.T, s *fsstore.Store, prefix string) []string {
	t.Helper()
	var keys []string
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func TestNewCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data", "store")
	s := newStore(t, root)
	if _, err := put(t, s, "a/b", "x", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "a", "b"))
	if err != nil {
		t.Fatalf("object file: %v", err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("object file mode = %v, want 0644", fi.Mode().Perm())
	}
	if _, err := fsstore.New(""); err == nil {
		t.Error(`New("") succeeded, want an error`)
	}
}

// TestLeftoverTemp simulates a writer that crashed before its rename: the
// temp file is never listed, and New removes it once it is old.
func TestLeftoverTemp(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	if _, err := put(t, s, "sites/blog/deploys/a.json", "{}", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(root, ".tmp", "put-fresh")
	stale := filepath.Join(root, ".tmp", "put-stale")
	for _, p := range []string{fresh, stale} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"sites/blog/deploys/a.json"}) {
		t.Errorf("List = %q, want only the object", got)
	}
	newStore(t, root) // a restart
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file survived New: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file (maybe another process's write) removed by New: %v", err)
	}
}

func TestReservedKeys(t *testing.T) {
	s := newStore(t, t.TempDir())
	for _, key := range []string{".tmp/x", ".locks/00", ".tmp", ".locks"} {
		if _, err := put(t, s, key, "x", store.PutOptions{}); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", key)
		}
		if _, err := s.Stat(t.Context(), key); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want an invalid-key error", key, err)
		}
	}
	// Similar names outside the reserved folders are ordinary keys.
	for _, key := range []string{".tmpx", "a/.tmp/b", ".locksmith"} {
		if _, err := put(t, s, key, "x", store.PutOptions{}); err != nil {
			t.Errorf("Put(%q): %v", key, err)
		}
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{".locksmith", ".tmpx", "a/.tmp/b"}) {
		t.Errorf("List = %q", got)
	}
	if got := listKeys(t, s, ".tmp/"); len(got) != 0 {
		t.Errorf("List(.tmp/) = %q, want nothing", got)
	}
}

// TestRewriteSameContentChangesETag: unlike S3, the fs ETag is not a content
// hash, so even an identical rewrite gets a new one.
func TestRewriteSameContentChangesETag(t *testing.T) {
	s := newStore(t, t.TempDir())
	seen := map[string]bool{}
	for range 50 {
		info, err := put(t, s, "p", "same", store.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[info.ETag] {
			t.Fatalf("ETag %q repeated across rewrites", info.ETag)
		}
		seen[info.ETag] = true
	}
}

// TestKeyUnderObject: "a/b" cannot be stored while "a" is an object, and a
// folder is not an object.
func TestKeyUnderObject(t *testing.T) {
	s := newStore(t, t.TempDir())
	if _, err := put(t, s, "a", "x", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := put(t, s, "a/b", "x", store.PutOptions{}); err == nil {
		t.Error(`Put("a/b") under object "a" succeeded, want an error`)
	}
	if _, err := put(t, s, "d/e", "x", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(t.Context(), "d"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf(`Get("d") of a folder: %v, want ErrNotFound`, err)
	}
	if _, err := put(t, s, "d", "x", store.PutOptions{IfMatch: "whatever"}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf(`Put("d") IfMatch over a folder: %v, want ErrPrecondition`, err)
	}
}

// TestTwoStoresCreateRace stands in for two processes sharing a folder: each
// *Store has its own in-process lock slots, so only the flock orders them.
func TestTwoStoresCreateRace(t *testing.T) {
	root := t.TempDir()
	stores := []*fsstore.Store{newStore(t, root), newStore(t, root)}
	const perStore = 8
	for round := range 20 {
		key := fmt.Sprintf("sites/s%d/channels/production.json", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var wins []string
		start := make(chan struct{})
		for i := range 2 * perStore {
			wg.Go(func() {
				body := fmt.Sprintf("store %d writer %d", i%2, i)
				<-start
				_, err := put(t, stores[i%2], key, body, store.PutOptions{IfNoneMatch: true})
				switch {
				case err == nil:
					mu.Lock()
					wins = append(wins, body)
					mu.Unlock()
				case !errors.Is(err, store.ErrPrecondition):
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("round %d: %d winners %q, want exactly 1", round, len(wins), wins)
		}
		obj, _, err := stores[1-round%2].Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(obj)
		_ = obj.Close()
		if string(got) != wins[0] {
			t.Errorf("round %d: content %q, want the winner's %q", round, got, wins[0])
		}
	}
}

// TestTwoStoresCompareAndSwap: concurrent If-Match increments through two
// stores on one folder lose no update.
func TestTwoStoresCompareAndSwap(t *testing.T) {
	root := t.TempDir()
	stores := []*fsstore.Store{newStore(t, root), newStore(t, root)}
	const key, workers, incs = "counter", 6, 15
	if _, err := put(t, stores[0], key, "0", store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		s := stores[w%2]
		wg.Go(func() {
			for done := 0; done < incs; {
				obj, info, err := s.Get(t.Context(), key)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(obj)
				_ = obj.Close()
				n, err := strconv.Atoi(string(b))
				if err != nil {
					t.Errorf("counter %q: %v", b, err)
					return
				}
				next := fmt.Sprint(n + 1)
				_, err = s.Put(t.Context(), key, strings.NewReader(next), int64(len(next)), store.PutOptions{IfMatch: info.ETag})
				switch {
				case err == nil:
					done++
				case !errors.Is(err, store.ErrPrecondition):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	obj, _, err := stores[1].Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, _ := io.ReadAll(obj)
	if want := fmt.Sprint(workers * incs); string(got) != want {
		t.Errorf("counter = %s, want %s (lost updates)", got, want)
	}
}

// BenchmarkPutGet measures 4 KiB objects: durable writes (two fsyncs each),
// conditional writes (plus the flock), and reads.
func BenchmarkPutGet(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	keyOf := func(i int) string { return fmt.Sprintf("blobs/%02x/%06d", i%256, i%4096) }
	b.Run("Put", func(b *testing.B) {
		s := newStore(b, b.TempDir())
		b.SetBytes(int64(len(data)))
		i := 0
		for b.Loop() {
			if _, err := s.Put(b.Context(), keyOf(i), bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("PutIfMatch", func(b *testing.B) {
		s := newStore(b, b.TempDir())
		info, err := s.Put(b.Context(), "p", bytes.NewReader(data), int64(len(data)), store.PutOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if info, err = s.Put(b.Context(), "p", bytes.NewReader(data), int64(len(data)), store.PutOptions{IfMatch: info.ETag}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		s := newStore(b, b.TempDir())
		for i := range 256 {
			if _, err := s.Put(b.Context(), keyOf(i), bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(data)))
		i := 0
		for b.Loop() {
			obj, _, err := s.Get(b.Context(), keyOf(i%256))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, obj); err != nil {
				b.Fatal(err)
			}
			_ = obj.Close()
			i++
		}
	})
}
