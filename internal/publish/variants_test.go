package publish_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
)

// page is an HTML page well above the compression threshold.
func page(title string) string {
	return "<!doctype html><title>" + title + "</title>" + strings.Repeat("<p>A paragraph of a static page, compressed once at publish time.</p>\n", 100)
}

func TestUploadVariants(t *testing.T) {
	f := newGCFixture(t)
	files := map[string]string{
		"index.html": page("home"),
		"about.html": page("about"),
		"tiny.css":   "a{}",
		"logo.png":   strings.Repeat("\x89PNG", 1000),
	}
	m := f.deploy(t, site.Production, "v1", files)
	for name, want := range map[string]bool{"index.html": true, "about.html": true, "tiny.css": false, "logo.png": false} {
		file := m.Files[name]
		if got := file.Gzip != nil && file.Brotli != nil; got != want {
			t.Errorf("%s has variants: %v, want %v (%+v)", name, got, want, file)
		}
	}
	// Each variant is a blob named by its own hash, decoding to the file.
	idx := m.Files["index.html"]
	for _, v := range []struct {
		enc string
		v   *manifest.Variant
	}{{"gzip", idx.Gzip}, {"br", idx.Brotli}} {
		raw := readObject(t, f.st, manifest.BlobKey(v.v.SHA256))
		if sha(string(raw)) != v.v.SHA256 || int64(len(raw)) != v.v.Size || v.v.Size >= idx.Size {
			t.Errorf("%s variant: %d bytes stored, manifest says %d (file %d)", v.enc, len(raw), v.v.Size, idx.Size)
		}
		var r io.Reader = bytes.NewReader(raw)
		if v.enc == "gzip" {
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		} else {
			r = brotli.NewReader(r)
		}
		if got, err := io.ReadAll(r); err != nil || string(got) != files["index.html"] {
			t.Errorf("%s variant decodes to %d bytes, %v", v.enc, len(got), err)
		}
	}

	// A deploy that changes one page compresses one page; the others keep
	// their variants from the live deploy, which are not uploaded again.
	files["about.html"] = page("about us")
	dir := t.TempDir()
	writeTree(t, dir, files)
	m2, stats, err := f.p.Upload(t.Context(), publish.Deploy{Site: blog, Channel: site.Production, Commit: commit2, BuildKey: buildKey("v2"), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Variants != 2 || stats.BlobsUploaded != 3 {
		t.Errorf("stats = %+v; want 2 variants made and 3 blobs uploaded (a page and its two forms)", stats)
	}
	if *m2.Files["index.html"].Gzip != *idx.Gzip || m2.Files["about.html"].Brotli == nil {
		t.Errorf("variants not carried over: %+v", m2.Files)
	}

	// GC keeps the variants of kept deploys and collects the others.
	if _, err := f.p.Activate(t.Context(), blog, site.Production, m2, built(commit2)); err != nil {
		t.Fatal(err)
	}
	orphan := f.upload(t, site.Production, "orphan", map[string]string{"index.html": page("never live")}).Files["index.html"]
	f.ageAll(t, 2*time.Hour)
	if _, err := f.p.GC(t.Context(), publish.GCOptions{Retention: 1}); err != nil {
		t.Fatal(err)
	}
	old := m.Files["about.html"]
	for _, tt := range []struct {
		sha  string
		want bool
	}{
		{idx.Gzip.SHA256, true}, {idx.Brotli.SHA256, true}, {m2.Files["about.html"].Gzip.SHA256, true},
		{orphan.Gzip.SHA256, false}, {orphan.Brotli.SHA256, false},
	} {
		if got := f.exists(t, manifest.BlobKey(tt.sha)); got != tt.want {
			t.Errorf("blob %s exists = %v after GC, want %v", tt.sha[:8], got, tt.want)
		}
	}
	// The previous production deploy is kept (rollback), so its variants too.
	if !f.exists(t, manifest.BlobKey(old.Brotli.SHA256)) {
		t.Error("GC took a variant of the previous deploy")
	}
}

func TestUploadRules(t *testing.T) {
	f := newGCFixture(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"index.html": "home",
		"_redirects": "/a /b 302\n/bad\n",
		"_headers":   "/*\n  X-Frame-Options: DENY\n",
	})
	toml := []byte("[[redirects]]\nfrom = \"/c\"\nto = \"/d\"\n")
	m, _, err := f.p.Upload(t.Context(), publish.Deploy{Site: blog, Commit: commit1, BuildKey: buildKey("r"), Dir: dir, Log: []byte("built\n"), NetlifyTOML: toml})
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	for _, r := range m.Rules.Redirects {
		froms = append(froms, r.From)
	}
	if !slices.Equal(froms, []string{"/a", "/c"}) || len(m.Rules.Headers) != 1 {
		t.Errorf("rules = %+v; want /a then /c and one header rule", m.Rules)
	}
	if len(m.Rules.Errors) != 1 || m.Rules.Errors[0].File != "_redirects" || m.Rules.Errors[0].Line != 2 {
		t.Fatalf("errors = %+v; want one at _redirects:2", m.Rules.Errors)
	}
	if _, ok := m.Files["_redirects"]; ok {
		t.Error("_redirects published as a file")
	}
	// The stored manifest has them, and the build log lists the errors.
	stored, err := f.p.Manifest(t.Context(), blog, m.ID)
	if err != nil || len(stored.Rules.Redirects) != 2 || len(stored.Rules.Errors) != 1 {
		t.Errorf("stored rules = %+v, %v", stored.Rules, err)
	}
	log, err := f.p.Log(t.Context(), blog, m.ID)
	if err != nil || !strings.Contains(string(log), "built\nrules: _redirects:2: ") {
		t.Errorf("log = %q, %v; want the rule error after the build output", log, err)
	}
}

func TestPointerReplaced(t *testing.T) {
	c := newClock()
	p := publish.New(newStore(t), publish.Options{Now: c.Now})
	var ms []*manifest.Manifest
	for _, label := range []string{"v1", "v2", "v3"} {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"index.html": label})
		m, _ := upload(t, p, dir, label)
		ms = append(ms, m)
	}
	var times []time.Time
	for _, m := range []*manifest.Manifest{ms[0], ms[1], ms[2], ms[0]} { // the last one is a revert
		ptr, err := p.Activate(t.Context(), blog, site.Production, m, built(commit1))
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, ptr.PublishedAt)
	}
	ptr, err := p.Pointer(t.Context(), blog, site.Production)
	if err != nil {
		t.Fatal(err)
	}
	want := []manifest.Replacement{{Deploy: ms[2].ID, At: times[3]}, {Deploy: ms[1].ID, At: times[2]}}
	if got := ptr.Replaced(); !slices.Equal(got, want) {
		t.Errorf("Replaced() = %v, want %v", got, want)
	}
	// A pointer written before history times knows only the previous one.
	legacy := manifest.Pointer{Deploy: ms[0].ID, PublishedAt: times[0], History: []site.DeployID{ms[0].ID, ms[1].ID, ms[2].ID}}
	if got := legacy.Replaced(); len(got) != 1 || got[0] != (manifest.Replacement{Deploy: ms[1].ID, At: times[0]}) {
		t.Errorf("legacy Replaced() = %v", got)
	}
}

// TestUploadUpgradesFastVariants: a deploy too big for the best-level
// budget gets fast variants; later deploys spend their spare budget making
// them again at the best level, smallest first, until none is left.
func TestUploadUpgradesFastVariants(t *testing.T) {
	st := newStore(t)
	p := publish.New(st, publish.Options{BestBudget: 20_000})
	files := map[string]string{}
	for i := range 6 {
		files[fmt.Sprintf("p%d.html", i)] = page(fmt.Sprint("page ", i)) // ~7 KB each
	}
	fast := func(m *manifest.Manifest) int {
		n := 0
		for _, f := range m.Files {
			if f.Brotli.Fast || f.Gzip.Fast {
				n++
			}
		}
		return n
	}
	var prev *manifest.Manifest
	for i, wantFast := range []int{4, 2, 0} { // 20 kB covers two ~7 kB pages per deploy
		dir := t.TempDir()
		writeTree(t, dir, files)
		m, _, err := p.Upload(t.Context(), publish.Deploy{Site: blog, Channel: site.Production, Commit: commit1, BuildKey: buildKey(fmt.Sprint("u", i)), Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if got := fast(m); got != wantFast {
			t.Errorf("deploy %d: %d pages with fast variants, want %d", i+1, got, wantFast)
		}
		if prev != nil {
			for name, f := range m.Files {
				if old := prev.Files[name]; !old.Brotli.Fast && *f.Brotli != *old.Brotli {
					t.Errorf("deploy %d: %s's best variant was made again", i+1, name)
				}
			}
		}
		if _, err := p.Activate(t.Context(), blog, site.Production, m, built(commit1)); err != nil {
			t.Fatal(err)
		}
		prev = m
	}
}

// TestVerifyAndRepair: Verify finds a live deploy's missing and corrupt
// objects; an Upload in repair mode puts them back.
func TestVerifyAndRepair(t *testing.T) {
	f := newGCFixture(t)
	files := map[string]string{"index.html": page("home"), "404.html": "gone", "a.css": "a{}"}
	m := f.deploy(t, site.Production, "v1", files)
	if _, problems, err := f.p.Verify(t.Context(), blog, site.Production, 10); err != nil || len(problems) != 0 {
		t.Fatalf("intact deploy: problems %q, err %v", problems, err)
	}
	if _, _, err := f.p.Verify(t.Context(), blog, "pr-1", 10); !errors.Is(err, publish.ErrNotFound) {
		t.Errorf("Verify of a missing channel: %v, want ErrNotFound", err)
	}
	// Lose one blob, corrupt another, and a variant.
	blob := func(sha string) string { return filepath.Join(f.root, filepath.FromSlash(manifest.BlobKey(sha))) }
	if err := os.Remove(blob(m.Files["404.html"].SHA256)); err != nil {
		t.Fatal(err)
	}
	for _, sha := range []string{m.Files["a.css"].SHA256, m.Files["index.html"].Brotli.SHA256} {
		if err := os.WriteFile(blob(sha), []byte("bit rot"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, problems, err := f.p.Verify(t.Context(), blog, site.Production, 10)
	if err != nil || len(problems) != 3 {
		t.Fatalf("problems %q, err %v; want 3", problems, err)
	}
	joined := strings.Join(problems, "\n")
	for _, want := range []string{"404.html: blob", "is missing", "a.css: blob", "is corrupt", "index.html (br): blob"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}

	dir := t.TempDir()
	writeTree(t, dir, files)
	if _, _, err := f.p.Upload(t.Context(), publish.Deploy{Site: blog, Channel: site.Production, Commit: commit1, BuildKey: buildKey("v1"), Dir: dir, Repair: true}); err != nil {
		t.Fatal(err)
	}
	if _, problems, err := f.p.Verify(t.Context(), blog, site.Production, 10); err != nil || len(problems) != 0 {
		t.Errorf("after repair: problems %q, err %v", problems, err)
	}

	// A lost manifest is drift too, and a repair writes it again.
	if err := os.Remove(filepath.Join(f.root, filepath.FromSlash(manifestKey(blog, m.ID)))); err != nil {
		t.Fatal(err)
	}
	if _, problems, _ := f.p.Verify(t.Context(), blog, site.Production, 10); len(problems) != 1 || !strings.Contains(problems[0], "manifest") {
		t.Errorf("lost manifest: problems %q", problems)
	}
}
