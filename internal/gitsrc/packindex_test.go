package gitsrc

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
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
		big  int64 // bigObject
	}{
		{"ofs deltas", []string{"--delta-base-offset"}, bigObject},
		{"ref deltas", nil, bigObject},
		// Every base, delta and result over bigObject: through files.
		{"ofs deltas, spilled", []string{"--delta-base-offset"}, 0},
		{"ref deltas, spilled", nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(v int64) { bigObject = v }(bigObject)
			bigObject = tt.big
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
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(pack), "tmp_obj_*")); len(left) > 0 {
				t.Errorf("left %q", left)
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
	defer func(v int64) { bigObject = v }(bigObject)
	bigObject = 0 // the repository's base streams, the result goes to a file
	spilled, _, err := indexPack(pack, ext)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := entries(t, spilled), entries(t, idx); g != w {
		t.Errorf("spilled:\n%s\nwant:\n%s", g, w)
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

// TestIndexPackGrowingDelta indexes a hand-made pack whose delta makes
// a result four times its base (git itself rarely deltas a bigger object
// on a smaller one), with the base under bigObject and the result over
// it, and one more delta on that result; git index-pack agrees.
func TestIndexPackGrowingDelta(t *testing.T) {
	f := newFixture(t)
	base := []byte(strings.Repeat("0123456789", 100))
	grow := deltaCopies(len(base), len(base), 4) // 4000 bytes
	shrink := deltaCopies(4*len(base), 3000, 1)  // the first 3000 of them
	var pack bytes.Buffer
	pack.WriteString("PACK\x00\x00\x00\x02\x00\x00\x00\x03")
	baseOff := packEntry(t, &pack, 3, len(base), nil, base) // blob
	growOff := packEntry(t, &pack, 6, len(grow), ofsDelta(int64(pack.Len())-baseOff), grow)
	packEntry(t, &pack, 6, len(shrink), ofsDelta(int64(pack.Len())-growOff), shrink)
	sum := sha1.Sum(pack.Bytes())
	pack.Write(sum[:])
	name := filepath.Join(t.TempDir(), "grow.pack")
	if err := os.WriteFile(name, pack.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f.git("index-pack", "-o", strings.TrimSuffix(name, ".pack")+".idx", name)
	want := decodeIdx(t, strings.TrimSuffix(name, ".pack")+".idx")
	defer func(v int64) { bigObject = v }(bigObject)
	bigObject = 2000
	got, _, err := indexPack(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := entries(t, got), entries(t, want); g != w {
		t.Errorf("index:\n%s\nwant:\n%s", g, w)
	}
}

// deltaCopies is a delta on a base of n bytes that copies its first m
// bytes times times.
func deltaCopies(n, m, times int) []byte {
	d := binary.AppendUvarint(nil, uint64(n))
	d = binary.AppendUvarint(d, uint64(m*times))
	for range times {
		// Copy from offset 0 (no offset bytes), size in two bytes.
		d = append(d, 0x80|0x10|0x20, byte(m), byte(m>>8))
	}
	return d
}

// ofsDelta encodes an OFS delta's distance back to its base.
func ofsDelta(dist int64) []byte {
	b := []byte{byte(dist & 0x7f)}
	for dist >>= 7; dist > 0; dist >>= 7 {
		dist--
		b = append([]byte{0x80 | byte(dist&0x7f)}, b...)
	}
	return b
}

// packEntry appends an object of type typ and size n (its data, for a
// delta the delta's) and returns its offset.
func packEntry(t *testing.T, pack *bytes.Buffer, typ byte, n int, extra, data []byte) int64 {
	t.Helper()
	off := int64(pack.Len())
	c := typ<<4 | byte(n&0x0f)
	for n >>= 4; n > 0; n >>= 7 {
		pack.WriteByte(c | 0x80)
		c = byte(n & 0x7f)
	}
	pack.WriteByte(c)
	pack.Write(extra)
	zw := zlib.NewWriter(pack)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return off
}

// TestIndexPackHostile: packs no git makes, as a pushed pack whose deltas
// a forge reuses could be, fail with an error instead of costing the
// server its memory, stack or disk.
func TestIndexPackHostile(t *testing.T) {
	base := []byte(strings.Repeat("0123456789", 100))
	write := func(t *testing.T, count uint32, entries func(pack *bytes.Buffer)) string {
		t.Helper()
		var pack bytes.Buffer
		pack.WriteString("PACK\x00\x00\x00\x02")
		pack.Write(binary.BigEndian.AppendUint32(nil, count))
		entries(&pack)
		sum := sha1.Sum(pack.Bytes())
		pack.Write(sum[:])
		name := filepath.Join(t.TempDir(), "hostile.pack")
		if err := os.WriteFile(name, pack.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	t.Run("count far over the objects", func(t *testing.T) {
		name := write(t, 1<<32-1, func(pack *bytes.Buffer) { packEntry(t, pack, 3, len(base), nil, base) })
		if _, _, err := indexPack(name, nil); err == nil || !strings.Contains(err.Error(), "objects in") {
			t.Fatalf("got %v, want the count refused", err)
		}
	})
	t.Run("chain deeper than git makes", func(t *testing.T) {
		n := maxDeltaDepth + 2
		name := write(t, uint32(n+1), func(pack *bytes.Buffer) {
			prev := packEntry(t, pack, 3, len(base), nil, base)
			same := deltaCopies(len(base), len(base), 1)
			for range n {
				prev = packEntry(t, pack, 6, len(same), ofsDelta(int64(pack.Len())-prev), same)
			}
		})
		if _, _, err := indexPack(name, nil); err == nil || !strings.Contains(err.Error(), "deeper than") {
			t.Fatalf("got %v, want the chain refused", err)
		}
	})
	t.Run("delta bomb", func(t *testing.T) {
		defer func(v, b int64) { maxObject, bigObject = v, b }(maxObject, bigObject)
		maxObject, bigObject = 1<<20, 0                 // through files, as a big result goes
		bomb := deltaCopies(len(base), len(base), 2000) // 2 MB from 6 KB
		name := write(t, 2, func(pack *bytes.Buffer) {
			off := packEntry(t, pack, 3, len(base), nil, base)
			packEntry(t, pack, 6, len(bomb), ofsDelta(int64(pack.Len())-off), bomb)
		})
		if _, _, err := indexPack(name, nil); err == nil || !strings.Contains(err.Error(), "object over") {
			t.Fatalf("got %v, want the result refused at maxObject", err)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(name), "tmp_obj_*")); len(left) > 0 {
			t.Errorf("left %q", left)
		}
	})
}
