package gitsrc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// TestIndexPack indexes packs git made, with offset and with ref deltas
// in chains, and wants git's own index back.
func TestIndexPack(t *testing.T) {
	f := newFixture(t)
	body := strings.Repeat("a line that every version shares\n", 200)
	for i := range 12 {
		f.write("page.md", fmt.Sprintf("%sversion %d\n", body, i))
		f.write(fmt.Sprintf("notes/%d.md", i%3), fmt.Sprintf("%snote %d\n", body, i))
		f.commit(fmt.Sprint(i))
	}
	objects := f.git("rev-list", "--objects", "--all")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"ofs deltas", []string{"--delta-base-offset"}},
		{"ref deltas", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "p")
			sum := strings.TrimSpace(string(f.gitIn(objects+"\n", append(append([]string{"pack-objects", "-q", "--window=20"}, tt.args...), prefix)...)))
			pack := prefix + "-" + sum + ".pack"
			// verify-pack ends with "chain length = n: k objects" lines.
			if !strings.Contains(f.git("verify-pack", "-v", pack), "chain length = 2") {
				t.Fatal("git made no delta chains to resolve")
			}
			got, gotSum, err := indexPack(pack, nil)
			if err != nil {
				t.Fatal(err)
			}
			if gotSum.String() != sum {
				t.Errorf("checksum %s, want %s", gotSum, sum)
			}
			want := decodeIdx(t, strings.TrimSuffix(pack, ".pack")+".idx")
			if n := len(want.Offset32); n < 40 {
				t.Fatalf("git's index has %d objects, want all of the 12 commits'", n)
			}
			if g, w := entries(t, got), entries(t, want); g != w {
				t.Errorf("index:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

// TestIndexPackThin indexes a thin pack, whose deltas name bases outside
// it, from the repository that has them; go-git does not ask for thin
// packs, but a pack that has them must still index right.
func TestIndexPackThin(t *testing.T) {
	f := newFixture(t)
	body := strings.Repeat("a line that every version shares\n", 200)
	for i := range 2 {
		f.write("page.md", fmt.Sprintf("%sversion %d\n", body, i))
		f.commit(fmt.Sprint(i))
	}
	pack := filepath.Join(t.TempDir(), "thin.pack")
	data := f.gitIn("HEAD\n^HEAD~1\n", "pack-objects", "-q", "--revs", "--thin", "--stdout")
	if err := os.WriteFile(pack, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ext := filesystem.NewStorage(osfs.New(filepath.Join(f.dir, ".git")), cache.NewObjectLRUDefault())
	defer ext.Close()
	if _, _, err := indexPack(pack, filesystem.NewStorage(osfs.New(t.TempDir()), cache.NewObjectLRUDefault())); err == nil {
		t.Fatal("indexed a thin pack without its bases: not thin, the test proves nothing")
	}
	idx, _, err := indexPack(pack, ext)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(entries(t, idx), "\n") {
		if h, _, ok := strings.Cut(line, " "); ok {
			got = append(got, h)
		}
	}
	var want []string
	for _, line := range strings.Split(f.git("rev-list", "--objects", "HEAD", "^HEAD~1"), "\n") {
		h, _, _ := strings.Cut(line, " ")
		want = append(want, h)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("index holds %q, want %q", got, want)
	}
}

func decodeIdx(t *testing.T, name string) *idxfile.MemoryIndex {
	t.Helper()
	fh, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(fh).Decode(idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

// entries lists an index's hash, offset and CRC, in hash order.
func entries(t *testing.T, idx *idxfile.MemoryIndex) string {
	t.Helper()
	it, err := idx.Entries()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		e, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %08x\n", e.Hash, e.Offset, e.CRC32)
	}
	return b.String()
}
