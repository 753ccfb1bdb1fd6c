package publish_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// gcFixture is a publisher on an fsstore whose objects the test can age.
type gcFixture struct {
	root string
	st   store.Store
	p    *publish.Publisher
}

func newGCFixture(t *testing.T) *gcFixture {
	t.Helper()
	root := t.TempDir()
	st, err := fsstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return &gcFixture{root: root, st: st, p: publish.New(st, publish.Options{})}
}

// ageAll makes every stored object d old.
func (f *gcFixture) ageAll(t *testing.T, d time.Duration) {
	t.Helper()
	when := time.Now().Add(-d)
	err := filepath.WalkDir(f.root, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		return os.Chtimes(p, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *gcFixture) exists(t *testing.T, key string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(f.root, filepath.FromSlash(key)))
	return err == nil
}

// deploy uploads files as deploy label and activates it on c.
func (f *gcFixture) deploy(t *testing.T, c site.Channel, label string, files map[string]string) *manifest.Manifest {
	t.Helper()
	m := f.upload(t, c, label, files)
	if _, err := f.p.Activate(t.Context(), blog, c, m, built(commit1)); err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *gcFixture) upload(t *testing.T, c site.Channel, label string, files map[string]string) *manifest.Manifest {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	m, _, err := f.p.Upload(t.Context(), publish.Deploy{Site: blog, Channel: c, Commit: commit1, BuildKey: buildKey(label), Dir: dir, Log: []byte("log " + label)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGC(t *testing.T) {
	f := newGCFixture(t)
	shared := "shared by every deploy"
	var prod []*manifest.Manifest
	preview := f.deploy(t, site.PullRequest(1), "preview", map[string]string{"index.html": "preview", "s.css": shared})
	for i := range 5 {
		prod = append(prod, f.deploy(t, site.Production, fmt.Sprint("v", i), map[string]string{
			"index.html": fmt.Sprint("version ", i), "s.css": shared,
		}))
	}
	orphan := f.upload(t, site.Production, "never activated", map[string]string{"index.html": "orphan"})
	f.ageAll(t, 2*time.Hour)
	// Young objects: a deploy uploaded but not yet live (a publish in
	// flight) and its blob.
	inFlight := f.upload(t, site.Production, "in flight", map[string]string{"index.html": "in flight", "s.css": shared})

	stats, err := f.p.GC(t.Context(), publish.GCOptions{Retention: 3})
	if err != nil {
		t.Fatal(err)
	}
	kept := []*manifest.Manifest{preview, prod[2], prod[3], prod[4], inFlight}
	deleted := []*manifest.Manifest{prod[0], prod[1], orphan}
	if stats.DeploysKept != len(kept) || stats.DeploysDeleted != len(deleted) {
		t.Errorf("stats = %+v; want %d deploys kept, %d deleted", stats, len(kept), len(deleted))
	}
	for _, m := range kept {
		if _, err := f.p.Manifest(t.Context(), blog, m.ID); err != nil {
			t.Errorf("kept deploy %s: %v", m.ID, err)
		}
		if _, err := f.p.Reuse(t.Context(), blog, m.BuildKey); err != nil {
			t.Errorf("kept deploy %s cannot be reused: %v", m.ID, err)
		}
		for name, file := range m.Files {
			if !f.exists(t, manifest.BlobKey(file.SHA256)) {
				t.Errorf("kept deploy %s lost %s", m.ID, name)
			}
		}
	}
	for _, m := range deleted {
		if _, err := f.p.Manifest(t.Context(), blog, m.ID); !errors.Is(err, publish.ErrNotFound) {
			t.Errorf("deleted deploy %s: Manifest err = %v, want ErrNotFound", m.ID, err)
		}
		if _, err := f.p.Reuse(t.Context(), blog, m.BuildKey); !errors.Is(err, publish.ErrNotFound) {
			t.Errorf("deleted deploy %s: Reuse err = %v, want ErrNotFound", m.ID, err)
		}
		if f.exists(t, "sites/blog/logs/"+string(m.ID)+".log") {
			t.Errorf("deleted deploy %s kept its log", m.ID)
		}
		if b := m.Files["index.html"].SHA256; f.exists(t, manifest.BlobKey(b)) {
			t.Errorf("deleted deploy %s: its own blob %s is still stored", m.ID, b[:8])
		}
	}
	if want := len(deleted); stats.BlobsDeleted != want {
		t.Errorf("BlobsDeleted = %d, want %d", stats.BlobsDeleted, want)
	}
	// Production is served as before.
	ptr, err := f.p.Pointer(t.Context(), blog, site.Production)
	if err != nil || ptr.Deploy != prod[4].ID {
		t.Fatalf("production = %+v, %v; want %s", ptr, err, prod[4].ID)
	}
	want := []site.DeployID{prod[4].ID, prod[3].ID, prod[2].ID, prod[1].ID, prod[0].ID}
	if !slices.Equal(ptr.History, want) {
		t.Errorf("history = %v, want %v", ptr.History, want)
	}

	// A second run finds nothing more to do.
	stats, err = f.p.GC(t.Context(), publish.GCOptions{Retention: 3})
	if err != nil || stats.DeploysDeleted != 0 || stats.BlobsDeleted != 0 {
		t.Errorf("second GC = %+v, %v; want nothing deleted", stats, err)
	}
}

// TestGCRevertSparesDeploy: a deploy made live again (a revert) after
// falling out of the history is kept, because a pointer names it.
func TestGCRevertSparesDeploy(t *testing.T) {
	f := newGCFixture(t)
	var ms []*manifest.Manifest
	for i := range 4 {
		ms = append(ms, f.deploy(t, site.Production, fmt.Sprint("v", i), map[string]string{"index.html": fmt.Sprint(i)}))
	}
	if _, err := f.p.Activate(t.Context(), blog, site.Production, ms[0], built(commit1)); err != nil {
		t.Fatal(err)
	}
	f.ageAll(t, 2*time.Hour)
	if _, err := f.p.GC(t.Context(), publish.GCOptions{Retention: 1}); err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		_, err := f.p.Manifest(t.Context(), blog, m.ID)
		// Live: v0; previous: v3. v1 and v2 go.
		if live := i == 0 || i == 3; live != (err == nil) {
			t.Errorf("v%d: Manifest err = %v; want kept = %v", i, err, live)
		}
	}
}

// TestUploadSkipsKnownBlobs: blobs of the live deploy are not asked for;
// only new content is checked and written.
func TestUploadSkipsKnownBlobs(t *testing.T) {
	f := newGCFixture(t)
	files := map[string]string{"index.html": "home", "a.css": "a", "b.js": "b", "c.txt": "c"}
	f.deploy(t, site.Production, "v1", files)
	files["index.html"] = "new home"
	dir := t.TempDir()
	writeTree(t, dir, files)
	_, stats, err := f.p.Upload(t.Context(), publish.Deploy{Site: blog, Channel: site.Production, Commit: commit2, BuildKey: buildKey("v2"), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if stats.BlobsKnown != 3 || stats.BlobsChecked != 1 || stats.BlobsUploaded != 1 {
		t.Errorf("stats = %+v; want 3 known, 1 checked, 1 uploaded", stats)
	}
}

// TestUploadRewritesOldBlob races a publish with a GC: the publish finds
// old orphaned blobs in the store and relies on them, after the GC has read
// the manifests and before it sweeps the blobs. The publish must have
// written them again (made them young), or the live deploy loses files.
func TestUploadRewritesOldBlob(t *testing.T) {
	f := newGCFixture(t)
	files := map[string]string{"index.html": "home", "a.css": "a"}
	old := f.upload(t, site.Production, "orphan", files) // never live
	f.ageAll(t, 2*time.Hour)

	var m *manifest.Manifest
	hooked := &hookStore{Store: f.st, beforeList: map[string]func(){
		"blobs/": func() {
			m = f.upload(t, site.Production, "v2", files)
			if _, err := f.p.Activate(t.Context(), blog, site.Production, m, built(commit2)); err != nil {
				t.Error(err)
			}
		},
	}}
	if _, err := publish.New(hooked, publish.Options{}).GC(t.Context(), publish.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if m == nil {
		t.Fatal("the GC never listed blobs")
	}
	for name, file := range m.Files {
		if !f.exists(t, manifest.BlobKey(file.SHA256)) {
			t.Errorf("%s of the live deploy was collected", name)
		}
	}
	if _, err := f.p.Manifest(t.Context(), blog, old.ID); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("orphan deploy: err = %v, want it collected", err)
	}
}

// hookStore runs a function before the first List of a prefix.
type hookStore struct {
	store.Store
	beforeList map[string]func()
}

func (s *hookStore) List(ctx context.Context, prefix string) iter.Seq2[store.Info, error] {
	if fn := s.beforeList[prefix]; fn != nil {
		delete(s.beforeList, prefix)
		fn()
	}
	return s.Store.List(ctx, prefix)
}

// TestGCKeepsSkewDeploys: the deploys a channel replaced within the skew
// grace period keep serving their assets, so GC keeps them, on previews
// too (whose history retention does not cover).
func TestGCKeepsSkewDeploys(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts publish.GCOptions
		kept bool
	}{
		{"skew protection on", publish.GCOptions{Retention: 1, SkewDeploys: 3, SkewGrace: time.Hour}, true},
		{"skew protection off", publish.GCOptions{Retention: 1}, false},
		{"replaced too long ago", publish.GCOptions{Retention: 1, SkewDeploys: 3, SkewGrace: time.Nanosecond}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newGCFixture(t)
			old := f.deploy(t, "pr-1", "a", map[string]string{"app.0123abcd.js": "a"})
			f.deploy(t, "pr-1", "b", map[string]string{"app.4567cdef.js": "b"})
			f.ageAll(t, 2*time.Hour) // old by age; replaced just now
			if _, err := f.p.GC(t.Context(), tt.opts); err != nil {
				t.Fatal(err)
			}
			if got := f.exists(t, manifestKey(blog, old.ID)); got != tt.kept {
				t.Errorf("replaced deploy kept = %v, want %v", got, tt.kept)
			}
			if got := f.exists(t, manifest.BlobKey(sha("a"))); got != tt.kept {
				t.Errorf("its asset kept = %v, want %v", got, tt.kept)
			}
		})
	}
}
