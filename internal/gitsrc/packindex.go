package gitsrc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
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
	size     int64               // inflated: the object's, or the delta's
	typ      plumbing.ObjectType // for a delta, its base's, once resolved
	crc      uint32
	sha      plumbing.Hash // zero for a delta until resolved
	baseOff  int64         // OFS delta
	baseRef  plumbing.Hash // REF delta
	delta    bool
	children []*packObject
}

// indexPack builds the index of the pack file name. Whole objects are
// hashed as they stream by; only delta bases are read again, with the
// deltas on them, one chain at a time: in memory up to bigObject, through
// temporary files next to the pack above it, so no object of any size is
// held whole. REF deltas may name a base in ext, the repository the pack
// is for.
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
	// Every object takes at least 8 bytes (a header byte, a zlib stream):
	// a count beyond that is a lie that would size the index.
	fi, err := f.Stat()
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	if int64(count) > fi.Size()/8 {
		return nil, plumbing.ZeroHash, fmt.Errorf("pack says it has %d objects in %d bytes", count, fi.Size())
	}
	var w idxfile.Writer
	w.OnHeader(count) //nolint:errcheck // never fails
	hint := int(min(count, 1<<16))
	objs := make([]*packObject, 0, hint)
	byOff := make(map[int64]*packObject, hint)
	byHash := make(map[plumbing.Hash]*packObject, hint)
	for range count {
		oh, err := sc.NextObjectHeader()
		if err != nil {
			return nil, plumbing.ZeroHash, err
		}
		o := &packObject{off: oh.Offset, size: oh.Length, typ: oh.Type}
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
	r := &resolver{sc: sc, byHash: byHash, waiting: waiting, tmp: filepath.Dir(name)}
	for _, o := range objs {
		if o.delta || len(o.children) == 0 {
			continue
		}
		base, err := r.base(o)
		if err == nil {
			err = r.resolve(o, base, 0)
			base.remove()
		}
		if err != nil {
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
		obj, err := ext.EncodedObject(plumbing.AnyObject, ref)
		if err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("delta base %s: %w", ref, err)
		}
		delete(r.waiting, ref)
		if err := r.resolve(&packObject{typ: obj.Type(), sha: ref, children: kids}, content{obj: obj}, 0); err != nil {
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

// A pack comes from the forge, but its deltas may be what a pull request's
// author pushed: chains deeper than git ever makes (pack.depth is at most
// 4095) and objects bigger than a deploy may hold are refused, before
// they cost the stack or the disk. maxObject is a variable for tests.
const maxDeltaDepth = 4095

var maxObject int64 = 4 << 30

// bigObject is the size over which a delta base, a delta or its result
// is not held in memory: bases and results go to temporary files, and the
// delta is applied as a stream. A variable for tests.
var bigObject int64 = 16 << 20

// content is an object's content while the deltas on it are resolved: in
// data, or in obj (a temporary file, or the repository's object).
type content struct {
	data []byte
	obj  plumbing.EncodedObject
}

// object returns c as an object ReaderFromDelta can read.
func (c content) object() plumbing.EncodedObject {
	if c.obj != nil {
		return c.obj
	}
	o := &plumbing.MemoryObject{}
	o.Write(c.data) //nolint:errcheck // never fails
	return o
}

// remove deletes c's temporary file, if it has one.
func (c content) remove() {
	if f, ok := c.obj.(*fileObject); ok {
		os.Remove(f.name)
	}
}

type resolver struct {
	sc      *packfile.Scanner
	byHash  map[plumbing.Hash]*packObject
	waiting map[plumbing.Hash][]*packObject
	tmp     string // for big contents
}

// base returns the content of the whole object o.
func (r *resolver) base(o *packObject) (content, error) {
	if o.size <= bigObject {
		data, err := r.read(o.off)
		return content{data: data}, err
	}
	if _, err := r.sc.SeekObjectHeader(o.off); err != nil {
		return content{}, err
	}
	return r.spill(o.typ, func(w io.Writer) error {
		_, _, err := r.sc.NextObject(w)
		return err
	})
}

// spill writes what write writes to a temporary file, hashed as an
// object of type typ.
func (r *resolver) spill(typ plumbing.ObjectType, write func(io.Writer) error) (content, error) {
	f, err := os.CreateTemp(r.tmp, "tmp_obj_")
	if err != nil {
		return content{}, err
	}
	fo := &fileObject{name: f.Name(), typ: typ}
	err = write(&capped{w: f, left: maxObject})
	if err == nil {
		fo.size, err = f.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err == nil {
		h := plumbing.NewHasher(typ, fo.size)
		if _, err = io.Copy(h, f); err == nil {
			fo.hash = h.Sum()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return content{}, err
	}
	return content{obj: fo}, nil
}

// resolve applies the deltas on o, whose content is given, and theirs,
// depth first, so only one chain's contents are held at a time. o is at
// depth in its chain.
func (r *resolver) resolve(o *packObject, base content, depth int) error {
	if depth >= maxDeltaDepth {
		return fmt.Errorf("delta chain deeper than %d", maxDeltaDepth)
	}
	kids := o.children
	if w := r.waiting[o.sha]; len(w) > 0 {
		kids = append(kids[:len(kids):len(kids)], w...)
		delete(r.waiting, o.sha)
	}
	for _, c := range kids {
		target, err := r.apply(o.typ, base, c)
		if err != nil {
			return fmt.Errorf("delta at %d: %w", c.off, err)
		}
		c.typ = o.typ
		if r.byHash[c.sha] == nil {
			r.byHash[c.sha] = c
		}
		if len(c.children) > 0 || len(r.waiting[c.sha]) > 0 {
			err = r.resolve(c, target, depth+1)
		}
		target.remove()
		if err != nil {
			return err
		}
	}
	return nil
}

// apply applies delta c to base and sets c's hash: in memory when base,
// delta and result are small, else as a stream into a temporary file.
func (r *resolver) apply(typ plumbing.ObjectType, base content, c *packObject) (content, error) {
	if base.obj == nil && c.size <= bigObject {
		delta, err := r.read(c.off)
		if err != nil {
			return content{}, err
		}
		if deltaTargetSize(delta) <= bigObject {
			target, err := packfile.PatchDelta(base.data, delta)
			if err != nil {
				return content{}, err
			}
			c.sha = plumbing.ComputeHash(typ, target)
			return content{data: target}, nil
		}
	}
	if _, err := r.sc.SeekObjectHeader(c.off); err != nil {
		return content{}, err
	}
	delta, err := r.sc.ReadObject()
	if err != nil {
		return content{}, err
	}
	defer delta.Close()
	rd, err := packfile.ReaderFromDelta(base.object(), delta)
	if err != nil {
		return content{}, err
	}
	defer rd.Close()
	target, err := r.spill(typ, func(w io.Writer) error {
		_, err := io.Copy(w, rd)
		return err
	})
	if err == nil {
		c.sha = target.obj.Hash()
	}
	return target, err
}

// deltaTargetSize reads the result's size from a delta's header (two
// base-128 varints, the base's size first); -1 if it is malformed, which
// PatchDelta then reports.
func deltaTargetSize(delta []byte) int64 {
	var v uint64
	for range 2 {
		v = 0
		for shift := uint(0); ; shift += 7 {
			if len(delta) == 0 || shift > 63 {
				return -1
			}
			b := delta[0]
			delta = delta[1:]
			v |= uint64(b&0x7f) << shift
			if b&0x80 == 0 {
				break
			}
		}
	}
	if v > math.MaxInt64 {
		return -1
	}
	return int64(v)
}

// capped writes to w until left runs out, then fails.
type capped struct {
	w    io.Writer
	left int64
}

func (c *capped) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		return 0, fmt.Errorf("object over %d bytes", maxObject)
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}

// fileObject is an object's content in a temporary file.
type fileObject struct {
	name string
	typ  plumbing.ObjectType
	size int64
	hash plumbing.Hash
}

func (o *fileObject) Hash() plumbing.Hash             { return o.hash }
func (o *fileObject) Type() plumbing.ObjectType       { return o.typ }
func (o *fileObject) SetType(t plumbing.ObjectType)   { o.typ = t }
func (o *fileObject) Size() int64                     { return o.size }
func (o *fileObject) SetSize(n int64)                 { o.size = n }
func (o *fileObject) Reader() (io.ReadCloser, error)  { return os.Open(o.name) }
func (o *fileObject) Writer() (io.WriteCloser, error) { return nil, errors.ErrUnsupported }

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
