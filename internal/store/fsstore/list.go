package fsstore

import (
	"context"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sitehost/sitehost/internal/store"
)

// List yields the objects whose keys start with prefix, in key order. See
// store.Store. Temp and lock files are never listed.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(store.Info{}, fmt.Errorf("listing %s: %w", prefix, err))
			return
		}
		// Start in the deepest folder the prefix names in full: "sites/bl"
		// reads sites/ only. A folder part that no valid key can have
		// ("../", "a//") matches nothing, and must not be read.
		dir := prefix[:strings.LastIndexByte(prefix, '/')+1]
		if dir != "" && (!store.ValidKey(strings.TrimSuffix(dir, "/")) || reserved(dir)) {
			return
		}
		s.walk(ctx, dir, prefix, yield)
	}
}

// walk yields the objects under the key folder dir ("" or ending in "/")
// whose keys start with prefix. It returns false once the consumer has
// stopped or an error was yielded.
func (s *Store) walk(ctx context.Context, dir, prefix string, yield func(store.Info, error) bool) bool {
	entries, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(dir)))
	if isNotExist(err) {
		return true // nothing stored under dir (or it was just removed)
	}
	if err != nil {
		yield(store.Info{}, fmt.Errorf("listing %s: %w", prefix, err))
		return false
	}
	// ReadDir sorts by name, but key order differs when a name sorts before
	// "/": the keys "a-b" < "a/c" yet the folder "a" comes before the file
	// "a-b". Sorting folders as name+"/" makes a depth-first walk yield keys
	// in byte order.
	sortKey := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortKey(a), sortKey(b)) })

	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			yield(store.Info{}, fmt.Errorf("listing %s: %w", prefix, err))
			return false
		}
		key := dir + sortKey(e)
		if dir == "" && reserved(key) {
			continue
		}
		if e.IsDir() {
			// Descend only where keys can still match: the folder lies
			// under the prefix, or the prefix runs into the folder.
			if (strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key)) && !s.walk(ctx, key, prefix, yield) {
				return false
			}
			continue
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) || !store.ValidKey(key) {
			continue
		}
		fi, err := e.Info()
		if isNotExist(err) {
			continue // deleted since ReadDir
		}
		if err != nil {
			yield(store.Info{}, fmt.Errorf("listing %s: %w", prefix, err))
			return false
		}
		if !yield(info(key, fi), nil) {
			return false
		}
	}
	return true
}
