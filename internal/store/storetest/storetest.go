// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's test calls Run with a constructor for empty stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := fsstore.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite only relies on what an S3-compatible service can also do: ETags
// are compared for equality, never parsed, and rewrites in the suite always
// change the content (S3 keeps the ETag of identical bytes).
package storetest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/sitehost/sitehost/internal/store"
)

// Run runs the conformance suite. newStore must return a new, empty store on
// each call (it may register cleanups on t); subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"UnknownSize", testUnknownSize},
		{"Stat", testStat},
		{"NotFound", testNotFound},
		{"OverwriteChangesETag", testOverwriteChangesETag},
		{"ETagStable", testETagStable},
		{"IfNoneMatch", testIfNoneMatch},
		{"IfMatch", testIfMatch},
		{"BothConditions", testBothConditions},
		{"CreateRace", testCreateRace},
		{"CompareAndSwapRace", testCompareAndSwapRace},
		{"Seek", testSeek},
		{"ServeContent", testServeContent},
		{"List", testList},
		{"ListStopEarly", testListStopEarly},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"Cancelled", testCancelled},
		{"CancelledMidBody", testCancelledMidBody},
		{"ShortBody", testShortBody},
		{"Empty", testEmpty},
		{"Large", testLarge},
		{"UnicodeKeys", testUnicodeKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func mustPut(t *testing.T, s store.Store, key string, data []byte) store.Info {
	t.Helper()
	info, err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), store.PutOptions{})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func mustGet(t *testing.T, s store.Store, key string) ([]byte, store.Info) {
	t.Helper()
	obj, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return data, info
}

func mustStat(t *testing.T, s store.Store, key string) store.Info {
	t.Helper()
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func listInfos(t *testing.T, s store.Store, prefix string) []store.Info {
	t.Helper()
	var infos []store.Info
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		infos = append(infos, info)
	}
	return infos
}

func listKeys(t *testing.T, s store.Store, prefix string) []string {
	t.Helper()
	var keys []string
	for _, info := range listInfos(t, s, prefix) {
		keys = append(keys, info.Key)
	}
	return keys
}

// pseudoRandom returns n reproducible bytes.
func pseudoRandom(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
