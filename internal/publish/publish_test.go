package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

const blog site.Name = "blog"

var (
	commit1 = site.Commit(strings.Repeat("1", 40))
	commit2 = site.Commit(strings.Repeat("2", 40))
	commit3 = site.Commit(strings.Repeat("3", 40))
)

// newStore returns an empty fsstore in a temp folder.
func newStore(tb testing.TB) *fsstore.Store {
	tb.Helper()
	st, err := fsstore.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// writeTree writes files (slash paths → contents) under dir.
func writeTree(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// buildKey is a well-formed build key (sha256 hex) derived from label.
func buildKey(label string) string { return sha(label) }

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// clock is a deterministic clock that advances one second per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(time.Second)
	return now
}

// recStore wraps a real store: it records the keys of successful Puts in
// order, and fails the Puts that fail selects.
type recStore struct {
	store.Store
	fail func(key string) bool

	mu   sync.Mutex
	puts []string
}

var errInjected = errors.New("injected storage failure")

func (s *recStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	if s.fail != nil && s.fail(key) {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, errInjected)
	}
	info, err := s.Store.Put(ctx, key, r, size, opts)
	if err == nil {
		s.mu.Lock()
		s.puts = append(s.puts, key)
		s.mu.Unlock()
	}
	return info, err
}

func (s *recStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.puts)
}

// listKeys lists every object in st.
func listKeys(tb testing.TB, st store.Store) []string {
	tb.Helper()
	var keys []string
	for info, err := range st.List(context.Background(), "") {
		if err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func readObject(tb testing.TB, st store.Store, key string) []byte {
	tb.Helper()
	obj, _, err := st.Get(context.Background(), key)
	if err != nil {
		tb.Fatalf("Get(%s): %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func exists(tb testing.TB, st store.Store, key string) bool {
	tb.Helper()
	_, err := st.Stat(context.Background(), key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		tb.Fatalf("Stat(%s): %v", key, err)
	}
	return err == nil
}

// upload uploads dir as a deploy of blog with the build key of label.
func upload(tb testing.TB, p *publish.Publisher, dir, label string) (*manifest.Manifest, publish.UploadStats) {
	tb.Helper()
	m, stats, err := p.Upload(context.Background(), publish.Deploy{
		Site: blog, Commit: commit1, Tree: "tree-" + label, BuildKey: buildKey(label), Dir: dir,
	})
	if err != nil {
		tb.Fatalf("Upload(%s): %v", label, err)
	}
	return m, stats
}

func manifestKey(s site.Name, id site.DeployID) string {
	return "sites/" + string(s) + "/deploys/" + string(id) + ".json"
}

func pointerKey(s site.Name, c site.Channel) string {
	return "sites/" + string(s) + "/channels/" + string(c) + ".json"
}

func TestUploadDirectory(t *testing.T) {
	files := map[string]string{
		"index.html":                  "<!doctype html><title>home</title>",
		"css/site.css":                "body{color:red}",
		"js/app.js":                   "console.log(1)",
		"img/logo.svg":                `<svg xmlns="http://www.w3.org/2000/svg"/>`,
		"img/logo.png":                "not really a png", // the extension decides
		"posts/2024/hello/index.html": "<p>hello</p>",
		"empty.txt":                   "",
		"docs/hello wörld ☃.html":     "<p>unicode</p>",
		"a/same.txt":                  "same bytes",
		"b/c/same.txt":                "same bytes",
		"README":                      "plain text without an extension",
		"anim.zzunknown":              "GIF89a\x01\x00\x01\x00",
	}
	wantType := map[string]string{
		"index.html":                  "text/html; charset=utf-8",
		"css/site.css":                "text/css; charset=utf-8",
		"js/app.js":                   "text/javascript; charset=utf-8",
		"img/logo.svg":                "image/svg+xml",
		"img/logo.png":                "image/png",
		"posts/2024/hello/index.html": "text/html; charset=utf-8",
		"empty.txt":                   "text/plain; charset=utf-8",
		"docs/hello wörld ☃.html":     "text/html; charset=utf-8",
		"a/same.txt":                  "text/plain; charset=utf-8",
		"b/c/same.txt":                "text/plain; charset=utf-8",
		"README":                      "text/plain; charset=utf-8", // sniffed
		"anim.zzunknown":              "image/gif",                 // sniffed
	}
	out := t.TempDir()
	writeTree(t, out, files)
	// Never published: git metadata, and symlinks to a file and a folder
	// outside the output.
	writeTree(t, out, map[string]string{".git/config": "[core]", "sub/.git/HEAD": "ref"})
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": "top secret"})
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(out, "link.html")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(out, "linkdir")); err != nil {
		t.Fatal(err)
	}

	st := newStore(t)
	clk := newClock()
	created := clk.t
	p := publish.New(st, publish.Options{Now: clk.Now})
	key := buildKey("tree-1")
	log := []byte("hugo: built 12 pages\n")
	m, stats, err := p.Upload(t.Context(), publish.Deploy{
		Site: blog, Commit: commit1, Tree: "tree-1", BuildKey: key, Dir: out, Log: log,
		Info: manifest.CommitInfo{Subject: "first post", Author: "Ann"},
	})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}

	id := manifest.DeployIDFor(key)
	if m.ID != id || !id.Valid() {
		t.Errorf("deploy ID = %q, want DeployIDFor(key) = %q (valid)", m.ID, id)
	}
	if m.Site != blog || m.Commit != commit1 || m.Tree != "tree-1" || m.BuildKey != key || !m.Created.Equal(created) || m.Info.Subject != "first post" {
		t.Errorf("manifest header = %+v", m)
	}

	var total, uniqueBytes int64
	blobs := map[string]string{} // sha → body
	for _, body := range files {
		total += int64(len(body))
		if _, ok := blobs[sha(body)]; !ok {
			uniqueBytes += int64(len(body))
		}
		blobs[sha(body)] = body
	}
	for name, body := range files {
		t.Run("file "+name, func(t *testing.T) {
			f, ok := m.Lookup(name)
			if !ok {
				t.Fatalf("%q missing from manifest", name)
			}
			want := manifest.File{SHA256: sha(body), Size: int64(len(body)), Type: wantType[name]}
			if f != want {
				t.Errorf("manifest entry = %+v, want %+v", f, want)
			}
		})
	}
	if len(m.Files) != len(files) {
		var names []string
		for n := range m.Files {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Errorf("manifest has %d files, want %d (git metadata and symlinks left out): %q", len(m.Files), len(files), names)
	}
	if m.Bytes != total {
		t.Errorf("manifest bytes = %d, want %d", m.Bytes, total)
	}
	wantStats := publish.UploadStats{Files: len(files), Bytes: total, BlobsUploaded: len(blobs), BytesUploaded: uniqueBytes, BlobsChecked: len(blobs)}
	if stats != wantStats {
		t.Errorf("stats = %+v, want %+v", stats, wantStats)
	}

	// Exactly these objects exist: each distinct body once, the manifest,
	// the build key record and the log.
	want := []string{
		manifestKey(blog, id),
		"sites/blog/builds/" + key,
		"sites/blog/logs/" + string(id) + ".log",
	}
	for h := range blobs {
		want = append(want, "blobs/"+h[:2]+"/"+h)
	}
	slices.Sort(want)
	if got := listKeys(t, st); !slices.Equal(got, want) {
		t.Errorf("stored keys:\n got %q\nwant %q", got, want)
	}
	for h, body := range blobs {
		if got := readObject(t, st, manifest.BlobKey(h)); string(got) != body {
			t.Errorf("blob %s = %q, want %q", h, got, body)
		}
	}
	if got := string(readObject(t, st, "sites/blog/builds/"+key)); got != string(id) {
		t.Errorf("build key record = %q, want %q", got, id)
	}
	var stored manifest.Manifest
	if err := json.Unmarshal(readObject(t, st, manifestKey(blog, id)), &stored); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&stored, m) {
		t.Errorf("stored manifest = %+v\nwant %+v", stored, *m)
	}
	if got, err := p.Manifest(t.Context(), blog, id); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("Manifest(%s) = %+v, %v; want the uploaded one", id, got, err)
	}
	if got, err := p.Log(t.Context(), blog, id); err != nil || string(got) != string(log) {
		t.Errorf("Log = %q, %v; want %q", got, err, log)
	}
}

func TestUploadIncremental(t *testing.T) {
	base := map[string]string{
		"index.html":    "<p>home</p>",
		"about.html":    "<p>about</p>",
		"css/site.css":  "body{}",
		"img/photo.jpg": strings.Repeat("x", 3000),
	}
	tests := []struct {
		name      string
		change    func(t *testing.T, dir string)
		wantBlobs int
		wantBytes int64
	}{
		{"unchanged", func(*testing.T, string) {}, 0, 0},
		{"one file changed", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"about.html": "<p>about us</p>"})
		}, 1, int64(len("<p>about us</p>"))},
		{"one file added", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"posts/new/index.html": "<p>new</p>"})
		}, 1, int64(len("<p>new</p>"))},
		{"one file renamed", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "about.html"), filepath.Join(dir, "about-us.html")); err != nil {
				t.Fatal(err)
			}
		}, 0, 0},
		{"one file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "about.html")); err != nil {
				t.Fatal(err)
			}
		}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, base)
			p := publish.New(newStore(t), publish.Options{})
			if _, stats := upload(t, p, dir, "v1"); stats.BlobsUploaded != len(base) {
				t.Fatalf("first upload: %d blobs, want %d", stats.BlobsUploaded, len(base))
			}
			tt.change(t, dir)
			m, stats := upload(t, p, dir, "v2")
			if stats.BlobsUploaded != tt.wantBlobs || stats.BytesUploaded != tt.wantBytes {
				t.Errorf("second upload: %d blobs, %d bytes; want %d, %d", stats.BlobsUploaded, stats.BytesUploaded, tt.wantBlobs, tt.wantBytes)
			}
			if stats.Files != len(m.Files) {
				t.Errorf("stats.Files = %d, manifest has %d", stats.Files, len(m.Files))
			}
		})
	}
}

func TestReuse(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "hi"})
	p := publish.New(newStore(t), publish.Options{})
	key := buildKey("v1")

	if _, err := p.Reuse(t.Context(), blog, key); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("Reuse before upload: err = %v, want ErrNotFound", err)
	}
	m, _ := upload(t, p, dir, "v1")
	got, err := p.Reuse(t.Context(), blog, key)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("Reuse after upload = %+v, %v; want %+v", got, err, m)
	}
	if _, err := p.Reuse(t.Context(), "docs", key); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("Reuse for another site: err = %v, want ErrNotFound", err)
	}
}

func TestActivate(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	writeTree(t, dir1, map[string]string{"index.html": "one"})
	writeTree(t, dir2, map[string]string{"index.html": "two"})
	type call struct {
		s site.Name
		c site.Channel
	}
	var calls []call
	p := publish.New(newStore(t), publish.Options{
		Now:       newClock().Now,
		OnChanged: func(s site.Name, c site.Channel) { calls = append(calls, call{s, c}) },
	})
	m1, _ := upload(t, p, dir1, "v1")
	m2, _ := upload(t, p, dir2, "v2")

	if _, err := p.Pointer(t.Context(), blog, site.Production); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("Pointer of a new channel: err = %v, want ErrNotFound", err)
	}

	// Each step activates a deploy and says what the pointer must be.
	var last manifest.Pointer
	steps := []struct {
		name     string
		m        *manifest.Manifest
		commit   site.Commit
		previous site.DeployID
		changed  bool
	}{
		{"new channel", m1, commit1, "", true},
		{"second deploy", m2, commit2, m1.ID, true},
		{"same deploy and commit again is a no-op", m2, commit2, m1.ID, false},
		{"same deploy from another commit keeps previous", m2, commit3, m1.ID, true},
		{"roll back", m1, commit1, m2.ID, true},
	}
	wantCalls := 0
	for _, st := range steps {
		ptr, err := p.Activate(t.Context(), blog, site.Production, st.m, built(st.commit))
		if err != nil {
			t.Fatalf("%s: Activate: %v", st.name, err)
		}
		if ptr.Deploy != st.m.ID || ptr.Commit != st.commit || ptr.Previous != st.previous {
			t.Errorf("%s: pointer = %+v, want deploy %s commit %s previous %q", st.name, ptr, st.m.ID, st.commit.Short(), st.previous)
		}
		if st.changed {
			wantCalls++
			if !ptr.PublishedAt.After(last.PublishedAt) {
				t.Errorf("%s: PublishedAt %v not after %v", st.name, ptr.PublishedAt, last.PublishedAt)
			}
		} else if !reflect.DeepEqual(ptr, last) {
			t.Errorf("%s: pointer = %+v, want it unchanged %+v", st.name, ptr, last)
		}
		if len(calls) != wantCalls {
			t.Errorf("%s: OnChanged called %d times in all, want %d", st.name, len(calls), wantCalls)
		}
		stored, err := p.Pointer(t.Context(), blog, site.Production)
		if err != nil || !reflect.DeepEqual(stored, ptr) {
			t.Errorf("%s: stored pointer = %+v, %v; want %+v", st.name, stored, err, ptr)
		}
		last = ptr
	}
	for _, c := range calls {
		if c != (call{blog, site.Production}) {
			t.Errorf("OnChanged(%s, %s), want (blog, production)", c.s, c.c)
		}
	}
}

// TestWriteOrder checks DESIGN §6: blobs, then the manifest (and the build
// key record that points at it), and the pointer last.
func TestWriteOrder(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "a", "b.css": "b", "c/d.js": "c"})
	rs := &recStore{Store: newStore(t)}
	p := publish.New(rs, publish.Options{})
	m, _, err := p.Upload(t.Context(), publish.Deploy{Site: blog, Commit: commit1, BuildKey: buildKey("v1"), Dir: dir, Log: []byte("log")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Activate(t.Context(), blog, site.Production, m, built(commit1)); err != nil {
		t.Fatal(err)
	}
	puts := rs.keys()
	pos := func(key string) int {
		t.Helper()
		i := slices.Index(puts, key)
		if i < 0 {
			t.Fatalf("%s never written; writes: %q", key, puts)
		}
		return i
	}
	manifestAt := pos(manifestKey(blog, m.ID))
	if got, want := pos(pointerKey(blog, site.Production)), len(puts)-1; got != want {
		t.Errorf("pointer written at %d, want last (%d): %q", got, want, puts)
	}
	if bk := pos("sites/blog/builds/" + buildKey("v1")); bk < manifestAt {
		t.Errorf("build key record written before the manifest: %q", puts)
	}
	for _, f := range m.Files {
		if b := pos(manifest.BlobKey(f.SHA256)); b > manifestAt {
			t.Errorf("blob %s written after the manifest: %q", f.SHA256, puts)
		}
	}
}

// TestUploadFailure checks that a failed upload publishes nothing: no
// manifest, no build key record (so it is not reused), and the live pointer
// is untouched. Retrying with a healthy store then succeeds.
func TestUploadFailure(t *testing.T) {
	oldFiles := map[string]string{"index.html": "old"}
	newFiles := map[string]string{"index.html": "new", "a.css": "a", "b.js": "b"}
	tests := []struct {
		name string
		fail func(key string) bool
	}{
		{"one blob", func(key string) bool { return key == manifest.BlobKey(sha("a")) }},
		{"build log", func(key string) bool { return strings.Contains(key, "/logs/") }},
		{"manifest", func(key string) bool { return strings.Contains(key, "/deploys/") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := &recStore{Store: newStore(t)}
			p := publish.New(rs, publish.Options{})
			oldDir, newDir := t.TempDir(), t.TempDir()
			writeTree(t, oldDir, oldFiles)
			writeTree(t, newDir, newFiles)
			old, _ := upload(t, p, oldDir, "old")
			live, err := p.Activate(t.Context(), blog, site.Production, old, built(commit1))
			if err != nil {
				t.Fatal(err)
			}

			rs.fail = tt.fail
			key := buildKey("new")
			d := publish.Deploy{Site: blog, Commit: commit2, BuildKey: key, Dir: newDir, Log: []byte("log")}
			m, _, err := p.Upload(t.Context(), d)
			if !errors.Is(err, errInjected) || m != nil {
				t.Fatalf("Upload = %v, %v; want a nil manifest and the storage error", m, err)
			}
			id := manifest.DeployIDFor(key)
			if exists(t, rs, manifestKey(blog, id)) {
				t.Error("manifest written by a failed upload")
			}
			if exists(t, rs, "sites/blog/builds/"+key) {
				t.Error("build key record written by a failed upload")
			}
			if _, err := p.Reuse(t.Context(), blog, key); !errors.Is(err, publish.ErrNotFound) {
				t.Errorf("Reuse after a failed upload: err = %v, want ErrNotFound", err)
			}
			if ptr, err := p.Pointer(t.Context(), blog, site.Production); err != nil || !reflect.DeepEqual(ptr, live) {
				t.Errorf("pointer after a failed upload = %+v, %v; want %+v", ptr, err, live)
			}

			rs.fail = nil
			m, _, err = p.Upload(t.Context(), d)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got, err := p.Reuse(t.Context(), blog, key); err != nil || got.ID != m.ID {
				t.Errorf("Reuse after retry = %v, %v", got, err)
			}
		})
	}
}

// TestActivateConcurrent races two activations of one channel: both must
// succeed, and the final pointer's history must include both (no lost
// update): original → winner → loser.
func TestActivateConcurrent(t *testing.T) {
	p := publish.New(newStore(t), publish.Options{})
	var ms [3]*manifest.Manifest
	for i := range ms {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"index.html": fmt.Sprint(i)})
		ms[i], _ = upload(t, p, dir, fmt.Sprint("v", i))
	}
	orig, a, b := ms[0], ms[1], ms[2]
	for round := range 10 {
		c := site.PullRequest(round + 1)
		if _, err := p.Activate(t.Context(), blog, c, orig, built(commit1)); err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var ptrs [2]manifest.Pointer
		var errs [2]error
		for i, m := range []*manifest.Manifest{a, b} {
			wg.Go(func() {
				<-start
				ptrs[i], errs[i] = p.Activate(t.Context(), blog, c, m, built(commit2))
			})
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: Activate errors: %v, %v", round, errs[0], errs[1])
		}
		final, err := p.Pointer(t.Context(), blog, c)
		if err != nil {
			t.Fatal(err)
		}
		// The first writer replaced orig; the second replaced the first.
		first, second := ptrs[0], ptrs[1]
		if first.Previous != orig.ID {
			first, second = second, first
		}
		if first.Previous != orig.ID || second.Previous != first.Deploy || !reflect.DeepEqual(final, second) || !slices.Equal(final.History, []site.DeployID{second.Deploy, first.Deploy, orig.ID}) {
			t.Errorf("round %d: pointers %+v and %+v, final %+v; want a sequence %s → one → the other",
				round, ptrs[0], ptrs[1], final, orig.ID)
		}
	}
}

func TestUploadRejects(t *testing.T) {
	files := map[string]string{"a.html": "aaaa", "b.html": "bbbb", "c/d.html": "dddd"} // 3 files, 12 bytes
	tests := []struct {
		name         string
		maxFiles     int
		maxBytes     int64
		maxFile      int64
		key          string
		wantErr      bool
		wantTooLarge bool
		wantFile     string // in the error, with ErrFileTooLarge
	}{
		{name: "at the file limit", maxFiles: 3, key: buildKey("k")},
		{name: "over the file limit", maxFiles: 2, key: buildKey("k"), wantErr: true, wantTooLarge: true},
		{name: "at the byte limit", maxBytes: 12, key: buildKey("k")},
		{name: "over the byte limit", maxBytes: 11, key: buildKey("k"), wantErr: true, wantTooLarge: true},
		{name: "at the per-file limit", maxFile: 4, key: buildKey("k")},
		{name: "over the per-file limit", maxFile: 3, key: buildKey("k"), wantErr: true,
			wantFile: "is 4 B (4 bytes), over the limit of 3 B (3 bytes) per file (build.max_file)"},
		{name: "build key too short", key: "0123abc", wantErr: true},
		{name: "build key not hex", key: "release-2024-01-01", wantErr: true},
		{name: "build key with a slash", key: "0123456789abcdef/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, files)
			st := newStore(t)
			p := publish.New(st, publish.Options{MaxFiles: tt.maxFiles, MaxBytes: tt.maxBytes})
			m, _, err := p.Upload(t.Context(), publish.Deploy{Site: blog, Commit: commit1, BuildKey: tt.key, Dir: dir, MaxFile: tt.maxFile})
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Upload: %v", err)
				}
				if len(m.Files) != len(files) {
					t.Errorf("manifest has %d files, want %d", len(m.Files), len(files))
				}
				return
			}
			if err == nil {
				t.Fatal("Upload succeeded, want an error")
			}
			if got := errors.Is(err, publish.ErrTooLarge); got != tt.wantTooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.wantTooLarge)
			}
			if tt.wantFile != "" && (!errors.Is(err, publish.ErrFileTooLarge) || fault.KindOf(err) != fault.KindStalled ||
				!regexp.MustCompile(`[abd]\.html `+regexp.QuoteMeta(tt.wantFile)).MatchString(err.Error())) {
				t.Errorf("Upload = %v, want stalled ErrFileTooLarge naming the file and %q", err, tt.wantFile)
			}
			if keys := listKeys(t, st); len(keys) != 0 {
				t.Errorf("a rejected upload stored %q", keys)
			}
		})
	}
}

func TestManifestNotFound(t *testing.T) {
	p := publish.New(newStore(t), publish.Options{})
	tests := []struct {
		name string
		id   site.DeployID
	}{
		{"empty", ""},
		{"too short", "abc"},
		{"upper case", "0123456789ABCDEF"},
		{"not hex", "0123456789abcdeg"},
		{"too long", site.DeployID(sha("x") + "aaa")},
		{"traversal", "../../../../etc/passwd"},
		{"traversal after a valid prefix", "0123456789abcdef/../../x"},
		{"well formed but absent", "0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := p.Manifest(t.Context(), blog, tt.id); !errors.Is(err, publish.ErrNotFound) {
				t.Errorf("Manifest(%q) = %v, %v; want ErrNotFound", tt.id, m, err)
			}
		})
	}
}

// write10k writes 10,000 files of 1 KiB in 100 folders and returns the
// folder and a 1 KiB buffer for changing one of them.
func write10k(b *testing.B) (string, []byte) {
	b.Helper()
	dir := b.TempDir()
	body := make([]byte, 1024)
	for i := range 10_000 {
		name := filepath.Join(dir, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("page-%05d.html", i))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		copy(body, fmt.Sprintf("file %d\n", i))
		if err := os.WriteFile(name, body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir, body
}

// BenchmarkUpload10k publishes a site of 10,000 files of 1 KiB. "unchanged"
// re-uploads the same output (after the first iteration nothing is
// uploaded); "one file changed" changes one file per iteration.
func BenchmarkUpload10k(b *testing.B) {
	dir, body := write10k(b)
	// One store for both sub-benchmarks, so "one file changed" starts from a
	// store that already holds the site.
	p := publish.New(newStore(b), publish.Options{})
	ctx := context.Background()
	run := func(b *testing.B, change func(i int) string) {
		blobs, iters := 0, 0
		for b.Loop() {
			key := change(iters)
			_, stats, err := p.Upload(ctx, publish.Deploy{Site: blog, Commit: commit1, BuildKey: key, Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			blobs += stats.BlobsUploaded
			iters++
		}
		b.ReportMetric(float64(blobs)/float64(iters), "blobs/op")
	}
	b.Run("unchanged", func(b *testing.B) {
		run(b, func(int) string { return buildKey("same") })
	})
	b.Run("one file changed", func(b *testing.B) {
		name := filepath.Join(dir, "d000", "page-00000.html")
		run(b, func(i int) string {
			copy(body, fmt.Sprintf("changed %d\n", i))
			if err := os.WriteFile(name, body, 0o644); err != nil {
				b.Fatal(err)
			}
			return buildKey(fmt.Sprint("changed ", i))
		})
	})
}

// TestManifestImmutable: uploading a build key again (after a crash between
// manifest and key record, or a race) keeps the manifest first written.
func TestManifestImmutable(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "hi"})
	p := publish.New(newStore(t), publish.Options{Now: newClock().Now})
	first, _ := upload(t, p, dir, "v1")
	writeTree(t, dir, map[string]string{"index.html": "a different, non-reproducible build"})
	again, _ := upload(t, p, dir, "v1")
	if !reflect.DeepEqual(again, first) {
		t.Errorf("second upload of one key returned %+v, want the first manifest %+v", again, first)
	}
	stored, err := p.Manifest(t.Context(), blog, first.ID)
	if err != nil || !stored.Created.Equal(first.Created) || stored.Files["index.html"] != first.Files["index.html"] {
		t.Errorf("stored manifest was rewritten: %+v, %v", stored, err)
	}
}

func TestChannelsAndDelete(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "hi"})
	var changed []site.Channel
	p := publish.New(newStore(t), publish.Options{OnChanged: func(_ site.Name, c site.Channel) { changed = append(changed, c) }})
	m, _ := upload(t, p, dir, "v1")
	for _, c := range []site.Channel{site.Production, site.PullRequest(7), site.Branch("staging")} {
		if _, err := p.Activate(t.Context(), blog, c, m, built(commit1)); err != nil {
			t.Fatal(err)
		}
	}
	chans, err := p.Channels(t.Context(), blog)
	if err != nil || len(chans) != 3 || chans["pr-7"].Deploy != m.ID {
		t.Fatalf("Channels = %v, %v; want production, pr-7, branch-staging", chans, err)
	}
	if err := p.DeleteChannel(t.Context(), blog, "pr-7"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Pointer(t.Context(), blog, "pr-7"); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("pointer after delete: %v", err)
	}
	if changed[len(changed)-1] != "pr-7" {
		t.Errorf("OnChanged not called for the deleted channel: %v", changed)
	}
	if err := p.DeleteChannel(t.Context(), blog, site.Production); err == nil {
		t.Error("production must never be deleted")
	}
	if _, err := p.Manifest(t.Context(), blog, m.ID); err != nil {
		t.Errorf("the deploy must outlive its channel (permalinks): %v", err)
	}
}

// TestUploadRetriesBlob: a blob write that fails twice (a flaky link to the
// store) is retried, and the upload succeeds without starting over.
func TestUploadRetriesBlob(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "home", "a.css": "a"})
	rs := &recStore{Store: newStore(t)}
	var mu sync.Mutex
	failures := 0
	rs.fail = func(key string) bool {
		mu.Lock()
		defer mu.Unlock()
		if key == manifest.BlobKey(sha("a")) && failures < 2 {
			failures++
			return true
		}
		return false
	}
	p := publish.New(rs, publish.Options{})
	m, stats := upload(t, p, dir, "v1")
	if failures != 2 || stats.BlobsUploaded != 2 {
		t.Errorf("failures = %d, stats = %+v; want 2 injected failures and both blobs uploaded", failures, stats)
	}
	if _, err := p.Manifest(t.Context(), blog, m.ID); err != nil {
		t.Errorf("manifest after retries: %v", err)
	}
}

// built is the cause of publishing a deploy just built from c.
func built(c site.Commit) publish.Cause { return publish.Cause{Kind: manifest.Built, Commit: c} }
