package build

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/tempdir"
)

// keep saves a cache for one Hugo version with one generated file in it,
// as a successful build of that version does.
func keep(t *testing.T, b *Builder, cacheDir, version string) *hugoCache {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	c := b.openCache(Request{Src: src, CacheDir: cacheDir, Settings: Settings{Tool: ToolHugo, HugoVersion: version}}, t.TempDir())
	defer c.close()
	if err := os.MkdirAll(filepath.Join(src, genDir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, genDir, "images", "made-by-"+version+".png"), []byte(version), 0o644); err != nil {
		t.Fatal(err)
	}
	c.save()
	if !strings.Contains(strings.Join(c.notes, "\n"), "Hugo cache: saved 1 files (") {
		t.Fatalf("version %s: %q", version, c.notes)
	}
	return c
}

// TestCachePerHugoVersion: a build never reads another Hugo version's
// cache, and a site keeps the caches of its two most recent versions.
func TestCachePerHugoVersion(t *testing.T) {
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(t.TempDir(), "site")
	keep(t, b, cacheDir, "0.150.0")

	// Another version finds nothing, and its files are its own.
	src := filepath.Join(t.TempDir(), "src")
	c := b.openCache(Request{Src: src, CacheDir: cacheDir, Settings: Settings{Tool: ToolHugo, HugoVersion: "0.151.0"}}, t.TempDir())
	c.close()
	if len(c.seeded) != 0 || !strings.Contains(strings.Join(c.notes, "\n"), "none yet for Hugo v0.151.0") {
		t.Errorf("version 0.151.0 read %d files: %q", len(c.seeded), c.notes)
	}
	if _, err := os.Stat(filepath.Join(src, genDir, "images", "made-by-0.150.0.png")); err == nil {
		t.Error("0.150.0's image reached a 0.151.0 build")
	}

	// The same version reads its own.
	c = b.openCache(Request{Src: filepath.Join(t.TempDir(), "src"), CacheDir: cacheDir, Settings: Settings{Tool: ToolHugo, HugoVersion: "0.150.0"}}, t.TempDir())
	c.close()
	if len(c.seeded) != 1 {
		t.Errorf("version 0.150.0 read %d files of its own cache, want 1", len(c.seeded))
	}

	// Three more versions, in turn: the last two are kept.
	for i, v := range []string{"0.151.0", "0.152.0", "0.153.0"} {
		old := time.Now().Add(time.Duration(i-10) * time.Minute)
		_ = os.Chtimes(filepath.Join(cacheDir, "hugo-0.150.0"), old, old) // used long ago
		keep(t, b, cacheDir, v)
	}
	ents, err := os.ReadDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		dirs = append(dirs, e.Name())
	}
	if want := []string{"hugo-0.152.0", "hugo-0.153.0", "lock"}; !slices.Equal(dirs, want) {
		t.Errorf("cache dir holds %v, want %v", dirs, want)
	}
}

// TestCacheOddVersion: a version that is no directory name gets no cache.
func TestCacheOddVersion(t *testing.T) {
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(t.TempDir(), "site")
	c := b.openCache(Request{Src: t.TempDir(), CacheDir: cacheDir, Settings: Settings{Tool: ToolHugo, HugoVersion: "../escape"}}, t.TempDir())
	defer c.close()
	c.save()
	if c.root != "" || !strings.Contains(strings.Join(c.notes, "\n"), "not a directory name") {
		t.Errorf("version ../escape: root %q, notes %q", c.root, c.notes)
	}
	if _, err := os.Stat(filepath.Dir(cacheDir)); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(cacheDir)); len(ents) != 0 {
		t.Errorf("something was written next to the site's cache: %v", ents)
	}
}

// TestCachePrunesOnlyItsOwn: saving removes Hugo's dirs from the layout
// before this one and work dirs a dead server left (a day old, or, named
// by tempdir, whose lock nobody holds), nothing else.
func TestCachePrunesOnlyItsOwn(t *testing.T) {
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(t.TempDir(), "site")
	dayAgo := time.Now().Add(-25 * time.Hour)
	for name, mtime := range map[string]time.Time{
		"src/filecache/misc": time.Now(), "modules/filecache": time.Now(), // the layout before
		"work-dead": dayAgo, "work-running": time.Now(), "trash-dead": dayAgo,
		"other": dayAgo, // not ours
	} {
		p := filepath.Join(cacheDir, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(filepath.Join(cacheDir, strings.Split(name, "/")[0]), mtime, mtime)
	}
	// A killed build's copy: its lock file is there, nobody holds it.
	killed := filepath.Join(cacheDir, "work-99999-0123456789ab")
	if err := os.MkdirAll(filepath.Join(killed, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(killed+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A running build's copy, held.
	running, err := tempdir.Claim(cacheDir, workPrefix)
	if err != nil {
		t.Fatal(err)
	}
	keep(t, b, cacheDir, HugoVersion)
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("a killed build's copy survived: %v", err)
	}
	if _, err := os.Stat(running.Path()); err != nil {
		t.Errorf("a running build's copy was removed: %v", err)
	}
	if err := running.Release(); err != nil { // gone from the listing below
		t.Fatal(err)
	}
	ents, err := os.ReadDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"hugo-" + HugoVersion, "lock", "other", "work-running"}; !slices.Equal(names, want) {
		t.Errorf("cache dir holds %v, want %v", names, want)
	}
}
