package certstore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
	"github.com/sitehost/sitehost/internal/store/s3store"
)

// forEachBackend runs fn once per backend, as subtests "fs" and "minio".
// newStore returns a new, empty store for the calling (sub)test: a temp
// folder, or a new bucket on one MinIO server per backend subtest.
func forEachBackend(t *testing.T, fn func(t *testing.T, newStore func(t *testing.T) store.Store)) {
	t.Run("fs", func(t *testing.T) {
		fn(t, func(t *testing.T) store.Store {
			st, err := fsstore.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("minio", func(t *testing.T) {
		srv := miniotest.Start(t) // skips without a minio binary, fails under CI=true
		fn(t, func(t *testing.T) store.Store {
			st, err := s3store.New(t.Context(), s3store.Options{
				Endpoint:  srv.Endpoint,
				Bucket:    srv.Bucket(t),
				Region:    "us-east-1",
				AccessKey: srv.AccessKey,
				SecretKey: srv.SecretKey,
			})
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// newStorage is a Storage on st with test-friendly timings; edit adjusts
// the options.
func newStorage(t *testing.T, st store.Store, edit ...func(*Options)) *Storage {
	t.Helper()
	opts := Options{
		Store:        st,
		PollInterval: 10 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&opts)
	}
	return New(opts)
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// waitUntil polls cond until it holds. The deadline is a failsafe that
// only fails a hung test; the test waits for the condition, not a time.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is what the data tests start from.
var fixture = map[string]string{
	"certificates/ca/example.com/example.com.crt":      "crt",
	"certificates/ca/example.com/example.com.key":      "key",
	"certificates/ca/example.com/example.com.json":     "{}",
	"certificates/ca/*.example.com/*.example.com.crt":  "wild crt",
	"certificates/ca/*.example.com/*.example.com.json": "wild json",
	"certificates/ca2/b.org/b.org.crt":                 "b",
	"certificates/cab/c.org/c.org.crt":                 "c", // "ca" is a string prefix of "cab", not a path prefix
	"acme/ca/users/admin@example.com/admin.json":       "acct",
	"acme/ca/users/admin@example.com/admin.key":        "acct key",
	"last_clean.json":                                    "{}",
	"ocsp/example.com-0123abcd":                          "staple",
	"certificates/deep/a/b/c/d/e.txt":                    "deep",
	"certificates/ca/example.com/sub/with space/x y.crt": "spaces",
}

func withFixture(t *testing.T, st store.Store) *Storage {
	t.Helper()
	s := newStorage(t, st)
	for k, v := range fixture {
		if err := s.Store(t.Context(), k, []byte(v)); err != nil {
			t.Fatalf("Store(%q): %v", k, err)
		}
	}
	return s
}

func TestData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, st store.Store)
		}{
			{"Load", testLoad},
			{"Stat", testStat},
			{"Exists", testExists},
			{"List", testList},
			{"Delete", testDelete},
			{"Overwrite", testOverwrite},
			{"SizeLimit", testSizeLimit},
			{"InvalidKeys", testInvalidKeys},
			{"Prefix", testPrefix},
			{"Cancelled", testCancelled},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t, newStore(t))
			})
		}
	})
}

func testLoad(t *testing.T, st store.Store) {
	s := withFixture(t, st)
	for _, tc := range []struct {
		key     string
		want    string
		wantErr error
	}{
		{key: "certificates/ca/example.com/example.com.crt", want: "crt"},
		{key: "certificates/ca/*.example.com/*.example.com.crt", want: "wild crt"},
		{key: "last_clean.json", want: "{}"},
		{key: "certificates/ca/example.com/sub/with space/x y.crt", want: "spaces"},
		{key: "certificates/ca/nope.example.com/nope.example.com.crt", wantErr: fs.ErrNotExist},
		{key: "certificates/ca", wantErr: fs.ErrNotExist}, // a directory has no value
		{key: "nope", wantErr: fs.ErrNotExist},
		{key: "certificates/ca/example.com/example.com.crt/below", wantErr: fs.ErrNotExist},
		{key: "a//b", wantErr: fs.ErrInvalid},
	} {
		got, err := s.Load(t.Context(), tc.key)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Load(%q) error = %v, want %v", tc.key, err, tc.wantErr)
			} else if !strings.Contains(err.Error(), "loading "+tc.key) {
				t.Errorf("Load(%q) error = %q, want it to say %q", tc.key, err, "loading "+tc.key)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Load(%q) = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
}

func testStat(t *testing.T, st store.Store) {
	s := withFixture(t, st)
	before := time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		key      string
		terminal bool
		size     int64
		wantErr  error
	}{
		{key: "certificates/ca/example.com/example.com.crt", terminal: true, size: 3},
		{key: "certificates/ca/*.example.com/*.example.com.json", terminal: true, size: 9},
		{key: "certificates/ca/*.example.com"},
		{key: "certificates/ca"},
		{key: "certificates"},
		{key: "acme/ca/users/admin@example.com"},
		{key: "certificates/c", wantErr: fs.ErrNotExist}, // not a path prefix of "certificates/ca/…"
		{key: "certificates/ca/nope", wantErr: fs.ErrNotExist},
		{key: "certificates/ca/example.com/example.com.crt/x", wantErr: fs.ErrNotExist},
		{key: "/abs", wantErr: fs.ErrInvalid},
	} {
		got, err := s.Stat(t.Context(), tc.key)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Stat(%q) error = %v, want %v", tc.key, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Stat(%q): %v", tc.key, err)
			continue
		}
		if got.Key != tc.key || got.IsTerminal != tc.terminal || got.Size != tc.size {
			t.Errorf("Stat(%q) = %+v, want key %q, terminal %v, size %d", tc.key, got, tc.key, tc.terminal, tc.size)
		}
		if tc.terminal && (got.Modified.Before(before) || got.Modified.After(time.Now().Add(time.Minute))) {
			t.Errorf("Stat(%q).Modified = %v, want about now", tc.key, got.Modified)
		}
	}
}

func testExists(t *testing.T, st store.Store) {
	s := withFixture(t, st)
	for key, want := range map[string]bool{
		"certificates/ca/example.com/example.com.crt":     true,
		"certificates/ca/*.example.com/*.example.com.crt": true,
		"certificates/ca/*.example.com":                   true,
		"certificates/ca":                                 true,
		"certificates":                                    true,
		"certificates/deep/a/b":                           true,
		"certificates/c":                                  false,
		"certificates/ca/example":                         false,
		"certificates/ca/example.com/example.com.crt/x":   false,
		"nope":   false,
		"a/../b": false,
	} {
		if got := s.Exists(t.Context(), key); got != want {
			t.Errorf("Exists(%q) = %v, want %v", key, got, want)
		}
	}
}

func testList(t *testing.T, st store.Store) {
	s := withFixture(t, st)
	for _, tc := range []struct {
		path      string
		recursive bool
		want      []string
		wantErr   error
	}{
		{path: "", want: []string{"acme", "certificates", "last_clean.json", "ocsp"}},
		{path: "certificates", want: []string{"certificates/ca", "certificates/ca2", "certificates/cab", "certificates/deep"}},
		{path: "certificates/ca", want: []string{"certificates/ca/*.example.com", "certificates/ca/example.com"}},
		{path: "certificates/ca/*.example.com", want: []string{
			"certificates/ca/*.example.com/*.example.com.crt",
			"certificates/ca/*.example.com/*.example.com.json",
		}},
		{path: "certificates/ca/example.com", want: []string{
			"certificates/ca/example.com/example.com.crt",
			"certificates/ca/example.com/example.com.json",
			"certificates/ca/example.com/example.com.key",
			"certificates/ca/example.com/sub",
		}},
		{path: "certificates/ca", recursive: true, want: []string{
			"certificates/ca/*.example.com",
			"certificates/ca/*.example.com/*.example.com.crt",
			"certificates/ca/*.example.com/*.example.com.json",
			"certificates/ca/example.com",
			"certificates/ca/example.com/example.com.crt",
			"certificates/ca/example.com/example.com.json",
			"certificates/ca/example.com/example.com.key",
			"certificates/ca/example.com/sub",
			"certificates/ca/example.com/sub/with space",
			"certificates/ca/example.com/sub/with space/x y.crt",
		}},
		{path: "certificates/deep", recursive: true, want: []string{
			"certificates/deep/a",
			"certificates/deep/a/b",
			"certificates/deep/a/b/c",
			"certificates/deep/a/b/c/d",
			"certificates/deep/a/b/c/d/e.txt",
		}},
		{path: "certificates/deep/a/b", want: []string{"certificates/deep/a/b/c"}},
		{path: "acme/ca/users", want: []string{"acme/ca/users/admin@example.com"}},
		// A value has no children, as a file in FileStorage.
		{path: "certificates/ca/example.com/example.com.crt", want: nil},
		{path: "certificates/ca/example.com/example.com.crt", recursive: true, want: nil},
		{path: "nope", wantErr: fs.ErrNotExist},
		{path: "nope", recursive: true, wantErr: fs.ErrNotExist},
		{path: "certificates/c", wantErr: fs.ErrNotExist},
		{path: "certificates/ca/", wantErr: fs.ErrInvalid},
	} {
		got, err := s.List(t.Context(), tc.path, tc.recursive)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("List(%q, %v) = %q, %v; want error %v", tc.path, tc.recursive, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v) = %q, %v\nwant %q", tc.path, tc.recursive, got, err, tc.want)
		}
	}

	// Recursive from the root lists every value, each exactly once.
	all, err := s.List(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	for k := range fixture {
		if n := count(all, k); n != 1 {
			t.Errorf("List(\"\", true) has %q %d times, want once", k, n)
		}
	}
	if got, want := len(all), len(slices.Compact(slices.Clone(all))); got != want {
		t.Errorf("List(\"\", true) has duplicates: %q", all)
	}

	// An empty root is not an error.
	empty := newStorage(t, st, func(o *Options) { o.Prefix = "other" })
	if got, err := empty.List(t.Context(), "", false); err != nil || len(got) != 0 {
		t.Errorf("List of an empty root = %q, %v; want nothing", got, err)
	}
}

func count(keys []string, k string) int {
	n := 0
	for _, x := range keys {
		if x == k {
			n++
		}
	}
	return n
}

func testDelete(t *testing.T, st store.Store) {
	for _, tc := range []struct {
		name string
		key  string
		gone []string // must not exist afterwards
		kept []string // must still exist
	}{
		{
			name: "file",
			key:  "certificates/ca/example.com/example.com.key",
			gone: []string{"certificates/ca/example.com/example.com.key"},
			kept: []string{"certificates/ca/example.com/example.com.crt", "certificates/ca/example.com"},
		},
		{
			name: "site directory",
			key:  "certificates/ca/example.com",
			gone: []string{"certificates/ca/example.com", "certificates/ca/example.com/example.com.crt", "certificates/ca/example.com/sub"},
			kept: []string{"certificates/ca/*.example.com/*.example.com.crt", "certificates/ca"},
		},
		{
			name: "wildcard directory",
			key:  "certificates/ca/*.example.com",
			gone: []string{"certificates/ca/*.example.com", "certificates/ca/*.example.com/*.example.com.json"},
			kept: []string{"certificates/ca/example.com/example.com.crt"},
		},
		{
			name: "issuer directory",
			key:  "certificates/ca",
			gone: []string{"certificates/ca", "certificates/ca/example.com/sub/with space/x y.crt"},
			kept: []string{"certificates/ca2/b.org/b.org.crt", "certificates/cab/c.org/c.org.crt", "certificates"},
		},
		{
			name: "deep directory",
			key:  "certificates/deep/a",
			gone: []string{"certificates/deep", "certificates/deep/a/b/c/d/e.txt"},
			kept: []string{"certificates/ca"},
		},
		{
			name: "string prefix is not a path prefix",
			key:  "certificates/c",
			kept: []string{"certificates/ca", "certificates/cab/c.org/c.org.crt"},
		},
		{
			name: "missing",
			key:  "certificates/ca/nope.example.com",
			kept: []string{"certificates/ca/example.com/example.com.crt"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := withFixture(t, st)
			t.Cleanup(func() {
				// Leave the shared store as the next case expects it.
				if err := s.Delete(context.Background(), "certificates"); err != nil {
					t.Error(err)
				}
			})
			if err := s.Delete(t.Context(), tc.key); err != nil {
				t.Fatalf("Delete(%q): %v", tc.key, err)
			}
			// Deleting again is not an error.
			if err := s.Delete(t.Context(), tc.key); err != nil {
				t.Fatalf("second Delete(%q): %v", tc.key, err)
			}
			for _, k := range tc.gone {
				if s.Exists(t.Context(), k) {
					t.Errorf("%q exists after Delete(%q)", k, tc.key)
				}
				if _, err := s.Stat(t.Context(), k); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%q) after Delete = %v, want fs.ErrNotExist", k, err)
				}
			}
			for _, k := range tc.kept {
				if !s.Exists(t.Context(), k) {
					t.Errorf("%q is gone after Delete(%q)", k, tc.key)
				}
			}
		})
	}
	// Deleting everything leaves no object under the prefix.
	s := withFixture(t, st)
	for _, k := range []string{"certificates", "acme", "ocsp", "last_clean.json"} {
		if err := s.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	if got := rawKeys(t, st, ""); len(got) != 0 {
		t.Errorf("objects left after deleting everything: %q", got)
	}
}

func testOverwrite(t *testing.T, st store.Store) {
	s := newStorage(t, st)
	ctx := t.Context()
	for i, v := range []string{"one", "two", "", "three"} {
		if err := s.Store(ctx, "certificates/ca/x/x.crt", []byte(v)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, "certificates/ca/x/x.crt")
		if err != nil || string(got) != v {
			t.Errorf("round %d: Load = %q, %v; want %q", i, got, err, v)
		}
	}
}

func testSizeLimit(t *testing.T, st store.Store) {
	s := newStorage(t, st)
	ctx := t.Context()
	if err := s.Store(ctx, "max", make([]byte, MaxValueSize)); err != nil {
		t.Fatalf("Store of MaxValueSize bytes: %v", err)
	}
	if got, err := s.Load(ctx, "max"); err != nil || len(got) != MaxValueSize {
		t.Fatalf("Load = %d bytes, %v", len(got), err)
	}
	if err := s.Store(ctx, "big", make([]byte, MaxValueSize+1)); err == nil {
		t.Error("Store of MaxValueSize+1 bytes succeeded")
	}
	// An oversized object put there by someone else is refused, not read.
	big := make([]byte, MaxValueSize+1)
	if _, err := st.Put(ctx, DefaultPrefix+"big", bytes.NewReader(big), int64(len(big)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "big"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of an oversized object = %d bytes, %v; want a size error", len(got), err)
	}
}

func testInvalidKeys(t *testing.T, st store.Store) {
	s := newStorage(t, st)
	ctx := t.Context()
	for _, key := range []string{"", "/abs", "dir/", "a//b", "a/../b", "..", ".", "a\\b", "a\x00b"} {
		if err := s.Store(ctx, key, []byte("x")); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Store(%q) = %v, want fs.ErrInvalid", key, err)
		}
		if _, err := s.Load(ctx, key); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Load(%q) = %v, want fs.ErrInvalid", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Stat(%q) = %v, want fs.ErrInvalid", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Delete(%q) = %v, want fs.ErrInvalid", key, err)
		}
		if s.Exists(ctx, key) {
			t.Errorf("Exists(%q) = true", key)
		}
		if key != "" { // "" is the root, for List
			if _, err := s.List(ctx, key, false); !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("List(%q) = %v, want fs.ErrInvalid", key, err)
			}
		}
	}
	if got := rawKeys(t, st, ""); len(got) != 0 {
		t.Errorf("invalid keys wrote %q", got)
	}
}

func testPrefix(t *testing.T, st store.Store) {
	ctx := t.Context()
	def := newStorage(t, st)
	custom := newStorage(t, st, func(o *Options) { o.Prefix = "tls/v1" })
	if err := def.Store(ctx, "certificates/ca/*.a.org/*.a.org.crt", []byte("d")); err != nil {
		t.Fatal(err)
	}
	if err := custom.Store(ctx, "certificates/ca/*.a.org/*.a.org.crt", []byte("c")); err != nil {
		t.Fatal(err)
	}
	want := []string{"certs/certificates/ca/*.a.org/*.a.org.crt", "tls/v1/certificates/ca/*.a.org/*.a.org.crt"}
	if got := rawKeys(t, st, ""); !slices.Equal(got, want) {
		t.Errorf("objects = %q, want %q", got, want)
	}
	if got, _ := custom.Load(ctx, "certificates/ca/*.a.org/*.a.org.crt"); string(got) != "c" {
		t.Errorf("custom prefix Load = %q", got)
	}
	if got, _ := def.List(ctx, "", true); len(got) != 4 {
		t.Errorf("default prefix sees %q, want only its own 4 keys", got)
	}
	for _, bad := range []string{"/x", "a//b", ".."} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with Prefix %q did not panic", bad)
				}
			}()
			New(Options{Store: st, Prefix: bad})
		}()
	}
}

func testCancelled(t *testing.T, st store.Store) {
	s := withFixture(t, st)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	checks := map[string]error{}
	_, checks["Load"] = s.Load(ctx, "last_clean.json")
	checks["Store"] = s.Store(ctx, "x", []byte("x"))
	_, checks["Stat"] = s.Stat(ctx, "certificates")
	_, checks["List"] = s.List(ctx, "certificates", true)
	checks["Delete"] = s.Delete(ctx, "certificates")
	checks["Lock"] = s.Lock(ctx, "l")
	_, checks["TryLock"] = s.TryLock(ctx, "l")
	for op, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx = %v, want context.Canceled", op, err)
		}
	}
	if s.Exists(ctx, "certificates") {
		t.Error("Exists with a cancelled ctx = true")
	}
	if !s.Exists(t.Context(), "certificates/ca/example.com/example.com.crt") {
		t.Error("the cancelled Delete deleted")
	}
}

// rawKeys lists the objects of st under prefix.
func rawKeys(t *testing.T, st store.Store, prefix string) []string {
	t.Helper()
	var keys []string
	for info, err := range st.List(t.Context(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func TestLocks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, st store.Store)
			// timing: run alone, not alongside the parallel tests, so
			// that a loaded machine does not stretch refresh intervals.
			timing bool
		}{
			{name: "MutualExclusion", fn: testMutualExclusion},
			{name: "StaleTakenOver", fn: testStaleTakenOver, timing: true},
			{name: "RefreshedNotTakenOver", fn: testRefreshedNotTakenOver, timing: true},
			{name: "CancelWhileWaiting", fn: testCancelWhileWaiting},
			{name: "UnlockAfterTakeover", fn: testUnlockAfterTakeover, timing: true},
			{name: "UnlockAfterOverwrite", fn: testUnlockAfterOverwrite, timing: true},
			{name: "UnlockNotHeld", fn: testUnlockNotHeld},
			{name: "TryLock", fn: testTryLock},
			{name: "LockObject", fn: testLockObject},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !tc.timing {
					t.Parallel()
				}
				tc.fn(t, newStore(t))
			})
		}
	})
}

// testMutualExclusion: goroutines of two Storages (as two processes)
// increment a counter in the store with a non-atomic read-modify-write
// under the lock; no increment may be lost.
func testMutualExclusion(t *testing.T, st store.Store) {
	const (
		workers    = 3 // per Storage
		increments = 5 // per worker
		counterKey = "counter"
	)
	// A short TTL keeps the refresher busy during the test; the timings
	// here stay well inside it.
	edit := func(o *Options) { o.LockTTL = 2 * time.Second; o.PollInterval = 5 * time.Millisecond }
	storages := []*Storage{newStorage(t, st, edit), newStorage(t, st, edit)}
	ctx := t.Context()
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, len(storages)*workers)
	for _, s := range storages {
		for range workers {
			wg.Go(func() {
				for range increments {
					if err := increment(ctx, s, counterKey, &inside, &maxInside); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	data, err := storages[0].Load(ctx, counterKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), strconv.Itoa(len(storages)*workers*increments); got != want {
		t.Errorf("counter = %s, want %s", got, want)
	}
	if m := maxInside.Load(); m != 1 {
		t.Errorf("%d holders at once", m)
	}
	if got := rawKeys(t, st, DefaultPrefix+lockDir); len(got) != 0 {
		t.Errorf("lock objects left: %q", got)
	}
}

func increment(ctx context.Context, s *Storage, key string, inside, maxInside *atomic.Int32) (err error) {
	if err := s.Lock(ctx, "counter"); err != nil {
		return err
	}
	defer func() {
		if uerr := s.Unlock(context.WithoutCancel(ctx), "counter"); uerr != nil && err == nil {
			err = uerr
		}
	}()
	n := inside.Add(1)
	defer inside.Add(-1)
	for {
		m := maxInside.Load()
		if n <= m || maxInside.CompareAndSwap(m, n) {
			break
		}
	}
	v := 0
	data, err := s.Load(ctx, key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if v, err = strconv.Atoi(string(data)); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Millisecond) // widen the window a lost update needs
	return s.Store(ctx, key, []byte(strconv.Itoa(v+1)))
}

// deadLock writes a lock object as a holder that then died would have
// left it.
func deadLock(t *testing.T, s *Storage, name string, content []byte) {
	t.Helper()
	key, err := s.lockKey(name)
	if err != nil {
		t.Fatal(err)
	}
	if content == nil {
		now := time.Now()
		content, _ = json.Marshal(lockMeta{Token: "dead", Holder: "dead-host/1", Created: now, Refreshed: now})
	}
	if _, err := s.st.Put(t.Context(), key, bytes.NewReader(content), int64(len(content)), store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
}

func lockToken(t *testing.T, s *Storage, name string) string {
	t.Helper()
	key, _ := s.lockKey(name)
	m, _, err := s.readLock(t.Context(), key)
	if err != nil {
		t.Fatalf("reading lock %s: %v", name, err)
	}
	return m.Token
}

func testStaleTakenOver(t *testing.T, st store.Store) {
	const ttl = 300 * time.Millisecond
	for _, tc := range []struct {
		name    string
		content []byte // nil: a proper lock object
	}{
		{name: "proper"},
		{name: "garbage", content: []byte("not json")},
		{name: "empty", content: []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			s := newStorage(t, st, func(o *Options) {
				o.LockTTL = ttl
				o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			})
			name := "issue_cert_*.stale-" + tc.name + ".example.com"
			start := time.Now()
			deadLock(t, s, name, tc.content)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := s.Lock(ctx, name); err != nil {
				t.Fatalf("Lock of a stale lock: %v", err)
			}
			elapsed := time.Since(start)
			t.Logf("took over after %v", elapsed)
			if tc.content == nil && elapsed < ttl {
				t.Errorf("took over after %v, before LockTTL %v", elapsed, ttl)
			}
			if tok := lockToken(t, s, name); tok == "dead" || tok == "" {
				t.Errorf("lock token = %q after takeover", tok)
			}
			if !strings.Contains(logs.String(), "took over a stale lock") {
				t.Errorf("takeover not logged; logs:\n%s", logs)
			}
			if err := s.Unlock(t.Context(), name); err != nil {
				t.Errorf("Unlock: %v", err)
			}
		})
	}
}

func testRefreshedNotTakenOver(t *testing.T, st store.Store) {
	const ttl = 300 * time.Millisecond
	edit := func(o *Options) { o.LockTTL = ttl; o.PollInterval = 20 * time.Millisecond }
	a, b := newStorage(t, st, edit), newStorage(t, st, edit)
	const name = "issue_cert_long.example.com"
	if err := a.Lock(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	key, _ := a.lockKey(name)
	held, _, err := a.readLock(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	// b waits while a's refreshes keep the lock fresh for several TTLs:
	// the lock object keeps a's token throughout.
	done := make(chan error, 1)
	go func() { done <- b.Lock(t.Context(), name) }()
	waitUntil(t, "a has refreshed its lock past 3×LockTTL", func() bool {
		m, _, err := a.readLock(t.Context(), key)
		if err != nil || m.Token != held.Token {
			t.Fatalf("while a holds the lock: token %q, %v; want a's %q", m.Token, err, held.Token)
		}
		return m.Refreshed.Sub(held.Created) > 3*ttl
	})
	if ok, err := b.TryLock(t.Context(), name); ok || err != nil {
		t.Fatalf("b.TryLock = %v, %v; want false, nil", ok, err)
	}
	select {
	case err := <-done:
		t.Fatalf("b.Lock of a held, refreshed lock returned %v", err)
	default:
	}
	if err := a.Unlock(t.Context(), name); err != nil {
		t.Fatalf("a.Unlock after holding for over %v: %v", 3*ttl, err)
	}
	// b, still waiting, gets the released lock.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("b.Lock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b.Lock did not return after a released the lock")
	}
	if tok := lockToken(t, b, name); tok == held.Token {
		t.Error("the lock object still has a's token after b locked it")
	}
	if err := b.Unlock(t.Context(), name); err != nil {
		t.Fatal(err)
	}
}

func testCancelWhileWaiting(t *testing.T, st store.Store) {
	a := newStorage(t, st)
	// b's read of the held lock is the last store call before it waits.
	read := make(chan struct{}, 1)
	sb := &readSignalStore{Store: st, read: read}
	b := newStorage(t, sb, func(o *Options) { o.PollInterval = time.Hour }) // only ctx can end its wait
	const name = "storage_clean"
	if err := a.Lock(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Lock(ctx, name) }()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("b.Lock never read the held lock")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Lock after cancel = %v, want context.Canceled", err)
		}
		if err != nil && !strings.Contains(err.Error(), "locking "+name) {
			t.Errorf("Lock error %q does not name the lock", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not return after its ctx was cancelled")
	}
	if err := b.Unlock(t.Context(), name); !errors.Is(err, ErrNotHeld) {
		t.Errorf("b.Unlock after a cancelled Lock = %v, want ErrNotHeld", err)
	}
	if err := a.Unlock(t.Context(), name); err != nil {
		t.Errorf("a.Unlock: %v", err)
	}
}

// readSignalStore signals read after each Get.
type readSignalStore struct {
	store.Store
	read chan struct{} // capacity 1
}

func (s *readSignalStore) Get(ctx context.Context, key string) (store.Object, store.Info, error) {
	obj, info, err := s.Store.Get(ctx, key)
	select {
	case s.read <- struct{}{}:
	default:
	}
	return obj, info, err
}

// partitionStore fails every call while cut is set, as a network
// partition between one process and the store would.
type partitionStore struct {
	store.Store
	cut atomic.Bool
}

var errPartition = errors.New("partitioned")

func (p *partitionStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	if p.cut.Load() {
		return store.Info{}, errPartition
	}
	return p.Store.Put(ctx, key, r, size, opts)
}

func (p *partitionStore) Get(ctx context.Context, key string) (store.Object, store.Info, error) {
	if p.cut.Load() {
		return nil, store.Info{}, errPartition
	}
	return p.Store.Get(ctx, key)
}

func (p *partitionStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if p.cut.Load() {
		return store.Info{}, errPartition
	}
	return p.Store.Stat(ctx, key)
}

func (p *partitionStore) List(ctx context.Context, prefix string) iter.Seq2[store.Info, error] {
	if p.cut.Load() {
		return func(yield func(store.Info, error) bool) { yield(store.Info{}, errPartition) }
	}
	return p.Store.List(ctx, prefix)
}

func (p *partitionStore) Delete(ctx context.Context, key string) error {
	if p.cut.Load() {
		return errPartition
	}
	return p.Store.Delete(ctx, key)
}

// testUnlockAfterTakeover: a is cut off from the store, so its lock goes
// stale and b takes it over; when a comes back, its refresh loses and its
// Unlock reports the loss without deleting b's lock.
func testUnlockAfterTakeover(t *testing.T, st store.Store) {
	const ttl = 300 * time.Millisecond
	logs := &logBuffer{}
	pa := &partitionStore{Store: st}
	a := newStorage(t, pa, func(o *Options) { o.LockTTL = ttl; o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	b := newStorage(t, st, func(o *Options) { o.LockTTL = ttl })
	const name = "issue_cert_taken.example.com"
	if err := a.Lock(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	pa.cut.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.Lock(ctx, name); err != nil {
		t.Fatalf("b.Lock while a is cut off: %v", err)
	}
	t.Logf("b took over after %v", time.Since(start))
	bToken := lockToken(t, b, name)
	pa.cut.Store(false)
	// Let a's refresher run into b's lock.
	waitUntil(t, "a logs the lost lock", func() bool { return strings.Contains(logs.String(), "lock lost") })
	if !strings.Contains(logs.String(), "refreshing lock failed") {
		t.Errorf("a's logs lack the failed refresh:\n%s", logs)
	}
	err := a.Unlock(t.Context(), name)
	if !errors.Is(err, ErrLockLost) {
		t.Errorf("a.Unlock of a taken-over lock = %v, want ErrLockLost", err)
	}
	if tok := lockToken(t, b, name); tok != bToken {
		t.Errorf("b's lock token changed to %q", tok)
	}
	// a no longer holds it at all.
	if err := a.Unlock(t.Context(), name); !errors.Is(err, ErrNotHeld) {
		t.Errorf("second a.Unlock = %v, want ErrNotHeld", err)
	}
	if err := b.Unlock(t.Context(), name); err != nil {
		t.Errorf("b.Unlock: %v", err)
	}
}

// testUnlockAfterOverwrite: the lock object is replaced or removed behind
// the holder's back; Unlock reports the loss and leaves the object alone.
func testUnlockAfterOverwrite(t *testing.T, st store.Store) {
	for _, remove := range []bool{false, true} {
		t.Run(fmt.Sprintf("remove=%v", remove), func(t *testing.T) {
			logs := &logBuffer{}
			a := newStorage(t, st, func(o *Options) {
				o.LockTTL = 200 * time.Millisecond
				o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			})
			name := "ari_" + strconv.FormatBool(remove)
			key, _ := a.lockKey(name)
			if err := a.Lock(t.Context(), name); err != nil {
				t.Fatal(err)
			}
			if remove {
				if err := st.Delete(t.Context(), key); err != nil {
					t.Fatal(err)
				}
			} else {
				other, _ := json.Marshal(lockMeta{Token: "other", Holder: "other-host/2", Created: time.Now(), Refreshed: time.Now()})
				if _, err := st.Put(t.Context(), key, bytes.NewReader(other), int64(len(other)), store.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			waitUntil(t, "the lost lock is logged", func() bool { return strings.Contains(logs.String(), "lock lost") })
			if err := a.Unlock(t.Context(), name); !errors.Is(err, ErrLockLost) {
				t.Errorf("Unlock = %v, want ErrLockLost", err)
			}
			_, _, err := a.readLock(t.Context(), key)
			switch {
			case remove && !errors.Is(err, store.ErrNotFound):
				t.Errorf("lock object after Unlock: %v, want none (the refresher must not bring it back)", err)
			case !remove && lockToken(t, a, name) != "other":
				t.Error("Unlock replaced or removed the other holder's lock")
			}
		})
	}
}

func testUnlockNotHeld(t *testing.T, st store.Store) {
	a, b := newStorage(t, st), newStorage(t, st)
	if err := a.Unlock(t.Context(), "never"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Unlock of a never-locked name = %v, want ErrNotHeld", err)
	}
	if err := a.Lock(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	// b does not hold a's lock, and may not release it.
	if err := b.Unlock(t.Context(), "x"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("b.Unlock of a's lock = %v, want ErrNotHeld", err)
	}
	if tok := lockToken(t, a, "x"); tok == "" {
		t.Error("b.Unlock removed a's lock")
	}
	if err := a.Unlock(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(t.Context(), "x"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("double Unlock = %v, want ErrNotHeld", err)
	}
}

func testTryLock(t *testing.T, st store.Store) {
	edit := func(o *Options) { o.LockTTL = 300 * time.Millisecond }
	a, b := newStorage(t, st, edit), newStorage(t, st, edit)
	ctx := t.Context()
	if ok, err := a.TryLock(ctx, "t"); !ok || err != nil {
		t.Fatalf("TryLock of a free lock = %v, %v", ok, err)
	}
	if ok, err := b.TryLock(ctx, "t"); ok || err != nil {
		t.Fatalf("TryLock of a held lock = %v, %v; want false, nil", ok, err)
	}
	// The same Storage cannot take its own lock twice either.
	if ok, err := a.TryLock(ctx, "t"); ok || err != nil {
		t.Fatalf("second TryLock by the holder = %v, %v; want false, nil", ok, err)
	}
	if err := a.Unlock(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "t"); !ok || err != nil {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
	if err := b.Unlock(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// A stale lock is taken over at once.
	deadLock(t, a, "stale", nil)
	key, _ := b.lockKey("stale")
	waitUntil(t, "the dead lock is stale", func() bool {
		m, info, err := b.readLock(ctx, key)
		return err == nil && lockAge(m, info) > b.ttl
	})
	if ok, err := b.TryLock(ctx, "stale"); !ok || err != nil {
		t.Fatalf("TryLock of a stale lock = %v, %v", ok, err)
	}
	if err := b.Unlock(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
}

// testLockObject checks where locks live and what they hold, for names
// certmagic uses, wildcards included, and odd ones.
func testLockObject(t *testing.T, st store.Store) {
	s := newStorage(t, st)
	ctx := t.Context()
	for _, tc := range []struct{ name, key string }{
		{"issue_cert_*.example.com", "certs/locks/issue_cert_%2A.example.com.lock"},
		{"register_acme_account_admin@example.com", "certs/locks/register_acme_account_admin@example.com.lock"},
		{"storage_clean", "certs/locks/storage_clean.lock"},
		{"a/b", "certs/locks/a%2Fb.lock"},
		{"..", "certs/locks/...lock"},
		{"100%", "certs/locks/100%25.lock"},
		{"two words", "certs/locks/two%20words.lock"},
	} {
		if err := s.Lock(ctx, tc.name); err != nil {
			t.Errorf("Lock(%q): %v", tc.name, err)
			continue
		}
		obj, _, err := st.Get(ctx, tc.key)
		if err != nil {
			t.Errorf("lock %q: object %q: %v", tc.name, tc.key, err)
		} else {
			var m map[string]any
			err := json.NewDecoder(obj).Decode(&m)
			obj.Close()
			if err != nil || m["token"] == "" || m["holder"] == "" || m["created"] == nil {
				t.Errorf("lock %q holds %v (%v), want token, holder, created", tc.name, m, err)
			}
		}
		if err := s.Unlock(ctx, tc.name); err != nil {
			t.Errorf("Unlock(%q): %v", tc.name, err)
		}
		if _, err := st.Stat(ctx, tc.key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("lock %q: object after Unlock: %v", tc.name, err)
		}
	}
	if err := s.Lock(ctx, ""); err == nil {
		t.Error("Lock of an empty name succeeded")
	}
}

// TestCertmagicCleanStorage runs certmagic's own storage cleaner on the
// Storage: it takes a lock, lists three levels of directories, loads and
// parses certificates, deletes the expired ones and records the run.
func TestCertmagicCleanStorage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		st := newStore(t)
		s := newStorage(t, st)
		ctx := t.Context()
		const issuer = "certificates/acme-v02.api.letsencrypt.org-directory"
		sites := map[string]time.Time{
			"expired.example.com": time.Now().Add(-48 * time.Hour),
			"*.expired.org":       time.Now().Add(-48 * time.Hour),
			"valid.example.com":   time.Now().Add(48 * time.Hour),
		}
		for site, notAfter := range sites {
			safe := certmagic.StorageKeys.Safe(site)
			for ext, data := range map[string][]byte{".crt": selfSigned(t, site, notAfter), ".key": []byte("key"), ".json": []byte("{}")} {
				if err := s.Store(ctx, issuer+"/"+safe+"/"+safe+ext, data); err != nil {
					t.Fatal(err)
				}
			}
		}
		err := certmagic.CleanStorage(ctx, s, certmagic.CleanStorageOptions{
			Logger:       zap.NewNop(),
			ExpiredCerts: true,
			OCSPStaples:  true,
		})
		if err != nil {
			t.Fatalf("CleanStorage: %v", err)
		}
		got, err := s.List(ctx, issuer, false)
		if want := []string{issuer + "/valid.example.com"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("sites after CleanStorage = %q, %v; want %q", got, err, want)
		}
		if !s.Exists(ctx, "last_clean.json") {
			t.Error("CleanStorage did not record its run")
		}
		if got := rawKeys(t, st, DefaultPrefix+lockDir); len(got) != 0 {
			t.Errorf("lock objects left: %q", got)
		}
	})
}

func selfSigned(t *testing.T, name string, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notAfter.Add(-90 * 24 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
