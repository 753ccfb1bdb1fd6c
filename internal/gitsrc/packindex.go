package gitsrc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// packStorage is the storage a fetch writes to. Its packs are indexed by
// indexPack instead of go-git's PackWriter, which inflates every object of
// a pack into memory, one at a time, to index it: a 1 GiB file in a
// repository took 1 GiB of the server's memory on each fetch.
type packStorage struct {
	*filesystem.Storage
	dir string // the repository, holding objects/pack
}

// PackfileWriter implements storer.PackfileWriter: the pack goes to a
// temporary file, and Close indexes it and moves it into objects/pack.
func (s *packStorage) PackfileWriter() (io.WriteCloser, error) {
	dir := filepath.Join(s.dir, "objects", "pack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "tmp_pack_")
	if err != nil {
		return nil, err
	}
	return &packWriter{f: f, s: s}, nil
}

type packWriter struct {
	f *os.File
	s *packStorage
}

func (w *packWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *packWriter) Close() error {
	name := w.f.Name()
	err := w.f.Close()
	if err == nil {
		err = w.s.save(name)
	}
	os.Remove(name) // renamed away on success
	return err
}

// save indexes the pack in file tmp and moves both into objects/pack,
// the index first: git and go-git find packs by their .pack file.
func (s *packStorage) save(tmp string) error {
	if fi, err := os.Stat(tmp); err != nil || fi.Size() == 0 {
		return err // nothing was fetched
	}
	idx, sum, err := indexPack(tmp, s.Storage)
	if err != nil {
		return fmt.Errorf("indexing fetched pack: %w", err)
	}
	base := filepath.Join(s.dir, "objects", "pack", "pack-"+sum.String())
	if _, err := os.Stat(base + ".pack"); err == nil {
		return nil // the same pack, fetched before
	}
	f, err := os.CreateTemp(filepath.Dir(base), "tmp_idx_")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = idxfile.NewEncoder(f).Encode(idx)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), base+".idx")
	}
	if err == nil {
		err = os.Rename(tmp, base+".pack")
	}
	if err != nil {
		return fmt.Errorf("storing fetched pack: %w", err)
	}
	s.Reindex() // the next read lists the packs again
	return nil
}

// packObject is one object of a pack being indexed.
type packObject struct {
	off      int64
	typ      plumbing.ObjectType // for a delta, its base's, once resolved
	crc      uint32
	sha      plumbing.Hash // zero for a delta until resolved
	baseOff  int64         // OFS delta
	baseRef  plumbing.Hash // REF delta
	delta    bool
	children []*packObject
}

// indexPack builds the index of the pack file name. Whole objects are
// hashed as they stream by; only objects that are delta bases are read
// into memory, with the deltas built on them, one chain at a time (git
// does not delta files over core.bigFileThreshold, 512 MiB). REF deltas
// may name a base in ext, the repository the pack is for.
func indexPack(name string, ext storer.EncodedObjectStorer) (*idxfile.MemoryIndex, plumbing.Hash, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	defer f.Close()
	sc := packfile.NewScanner(f)
	_, count, err := sc.Header()
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	var w idxfile.Writer
	w.OnHeader(count) //nolint:errcheck // never fails
	objs := make([]*packObject, 0, count)
	byOff := make(map[int64]*packObject, count)
	byHash := make(map[plumbing.Hash]*packObject, count)
	for range count {
		oh, err := sc.NextObjectHeader()
		if err != nil {
			return nil, plumbing.ZeroHash, err
		}
		o := &packObject{off: oh.Offset, typ: oh.Type}
		hw := io.Discard
		var h plumbing.Hasher
		switch oh.Type {
		case plumbing.OFSDeltaObject:
			o.delta, o.baseOff = true, oh.OffsetReference
		case plumbing.REFDeltaObject:
			o.delta, o.baseRef = true, oh.Reference
		default:
			h = plumbing.NewHasher(oh.Type, oh.Length)
			hw = h
		}
		if _, o.crc, err = sc.NextObject(hw); err != nil {
			return nil, plumbing.ZeroHash, err
		}
		if !o.delta {
			o.sha = h.Sum()
			byHash[o.sha] = o
		}
		objs = append(objs, o)
		byOff[o.off] = o
	}
	sum, err := sc.Checksum()
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}

	// Hang every delta on its base; REF deltas on a base that is itself
	// a delta wait for that base's hash.
	waiting := map[plumbing.Hash][]*packObject{}
	var external []plumbing.Hash
	for _, o := range objs {
		switch {
		case !o.delta:
		case o.baseRef.IsZero():
			base, ok := byOff[o.baseOff]
			if !ok {
				return nil, plumbing.ZeroHash, fmt.Errorf("delta at %d: no object at base offset %d", o.off, o.baseOff)
			}
			base.children = append(base.children, o)
		case byHash[o.baseRef] != nil:
			base := byHash[o.baseRef]
			base.children = append(base.children, o)
		default:
			if len(waiting[o.baseRef]) == 0 {
				external = append(external, o.baseRef)
			}
			waiting[o.baseRef] = append(waiting[o.baseRef], o)
		}
	}
	r := &resolver{sc: sc, byHash: byHash, waiting: waiting}
	for _, o := range objs {
		if o.delta || len(o.children) == 0 {
			continue
		}
		content, err := r.read(o.off)
		if err != nil {
			return nil, plumbing.ZeroHash, err
		}
		if err := r.resolve(o, content); err != nil {
			return nil, plumbing.ZeroHash, err
		}
	}
	// Bases outside the pack (a thin pack; go-git does not ask for them),
	// and bases that are deltas resolved above.
	for _, ref := range external {
		kids := r.waiting[ref]
		if len(kids) == 0 {
			continue // resolved above
		}
		content, typ, err := readObject(ext, ref)
		if err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("delta base %s: %w", ref, err)
		}
		delete(r.waiting, ref)
		if err := r.resolve(&packObject{typ: typ, sha: ref, children: kids}, content); err != nil {
			return nil, plumbing.ZeroHash, err
		}
	}
	for _, o := range objs {
		if o.sha.IsZero() {
			return nil, plumbing.ZeroHash, fmt.Errorf("delta at %d: base not found", o.off)
		}
		w.OnInflatedObjectContent(o.sha, o.off, o.crc, nil) //nolint:errcheck // never fails
	}
	if err := w.OnFooter(sum); err != nil {
		return nil, plumbing.ZeroHash, err
	}
	idx, err := w.Index()
	return idx, sum, err
}

type resolver struct {
	sc      *packfile.Scanner
	byHash  map[plumbing.Hash]*packObject
	waiting map[plumbing.Hash][]*packObject
}

// read inflates the object data (whole, or a delta) at off.
func (r *resolver) read(off int64) ([]byte, error) {
	oh, err := r.sc.SeekObjectHeader(off)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(oh.Length))
	if _, _, err := r.sc.NextObject(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// resolve applies the deltas on o, whose content is given, and theirs,
// depth first, so only one chain's contents are held at a time.
func (r *resolver) resolve(o *packObject, content []byte) error {
	kids := o.children
	if w := r.waiting[o.sha]; len(w) > 0 {
		kids = append(kids[:len(kids):len(kids)], w...)
		delete(r.waiting, o.sha)
	}
	for _, c := range kids {
		delta, err := r.read(c.off)
		if err != nil {
			return err
		}
		target, err := packfile.PatchDelta(content, delta)
		if err != nil {
			return fmt.Errorf("delta at %d: %w", c.off, err)
		}
		c.typ, c.sha = o.typ, plumbing.ComputeHash(o.typ, target)
		if r.byHash[c.sha] == nil {
			r.byHash[c.sha] = c
		}
		if len(c.children) > 0 || len(r.waiting[c.sha]) > 0 {
			if err := r.resolve(c, target); err != nil {
				return err
			}
		}
	}
	return nil
}

// readObject returns the content and type of object h in st.
func readObject(st storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, plumbing.ObjectType, error) {
	obj, err := st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, plumbing.InvalidObject, err
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, plumbing.InvalidObject, err
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, plumbing.InvalidObject, err
	}
	if int64(len(data)) != obj.Size() {
		return nil, plumbing.InvalidObject, errors.New("short object")
	}
	return data, obj.Type(), nil
}
