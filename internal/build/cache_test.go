package build_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/build/buildtest"
)

// imageLayout resizes every image in assets/img to two widths and fills a
// square: three processed images each.
const imageLayout = `{{ range resources.Match "img/*" }}{{ $img := . }}` +
	`{{ range slice 120 240 }}<img src="{{ ($img.Resize (printf "%dx" .)).RelPermalink }}">{{ end }}` +
	`<img src="{{ ($img.Fill "64x64").RelPermalink }}">{{ end }}
{{ .Content }}`

const variantsPerImage = 3

// imageSite is testdata/site with n generated PNGs (400x300, their pixels
// depend on seed) that the home page processes, and text in the home page.
func imageSite(t *testing.T, n int, seed byte, text string, files map[string]string) string {
	t.Helper()
	all := map[string]string{
		"layouts/home.html": imageLayout,
		"content/_index.md": "---\ntitle: Home\n---\n" + text + "\n",
	}
	for i := range n {
		all[fmt.Sprintf("assets/img/photo-%d.png", i)] = string(buildtest.PNG(t, 400, 300, seed+byte(i)))
	}
	for k, v := range files {
		all[k] = v
	}
	return copySite(t, all)
}

// cacheRequest is a build of src with the given site cache.
func cacheRequest(t *testing.T, src, cacheDir string) build.Request {
	req := hugoRequest(t, src)
	req.CacheDir = cacheDir
	return req
}

func mustBuild(t *testing.T, b *build.Builder, req build.Request) build.Result {
	t.Helper()
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	return res
}

// snapshot is where a site's cache keeps resources/_gen for the compiled-in
// Hugo (the layout cache.go describes).
func snapshot(cacheDir string) string {
	return filepath.Join(cacheDir, "hugo-"+build.HugoVersion, "current", "gen")
}

// marker is the mtime the tests give kept files: Hugo never sets an
// mtime, so a kept file with another one was written by a later build.
var marker = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// markKept sets every kept file's mtime to marker.
func markKept(t *testing.T, cacheDir string) {
	t.Helper()
	root := filepath.Join(cacheDir, "hugo-"+build.HugoVersion, "current")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, marker, marker)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// keptImages counts the processed images kept in the snapshot, and those
// of them written since markKept.
func keptImages(t *testing.T, cacheDir string) (all, written int) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(snapshot(cacheDir), "images"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".png" && ext != ".jpg" {
			return nil
		}
		all++
		if fi, err := d.Info(); err != nil || !fi.ModTime().Equal(marker) {
			written++
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return all, written
}

// publishedImages is the number of processed images in a build's output.
func publishedImages(t *testing.T, out string) int {
	t.Helper()
	html, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, part := range strings.Split(string(html), `<img src="`)[1:] {
		src := strings.TrimPrefix(part[:strings.Index(part, `"`)], "/sub/")
		if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(src))); err != nil {
			t.Errorf("published page names %s, not in the output: %v", src, err)
		}
		n++
	}
	return n
}

// TestHugoCacheSecondBuildProcessesNoImage: the second build of a site
// (new content, same images) processes no image. Hugo's own "Processed
// images" counts cache hits too (resources/image_cache.go says so), so the
// kept files are counted instead: one Hugo writes has a new mtime.
func TestHugoCacheSecondBuildProcessesNoImage(t *testing.T) {
	const images = 4
	b := newBuilder(t, build.Options{})
	cache := filepath.Join(t.TempDir(), "cache", "site")

	first := cacheRequest(t, imageSite(t, images, 1, "First version.", nil), cache)
	res := mustBuild(t, b, first)
	if n := publishedImages(t, first.Out); n != images*variantsPerImage {
		t.Fatalf("first build published %d images, want %d", n, images*variantsPerImage)
	}
	all, written := keptImages(t, cache)
	if all != images*variantsPerImage || written != all {
		t.Fatalf("after the first build: %d images kept, %d written; want %d and %d\n%s", all, written, images*variantsPerImage, images*variantsPerImage, res.Log)
	}
	if !strings.Contains(string(res.Log), "Hugo cache: none yet") || !strings.Contains(string(res.Log), "Hugo cache: saved") {
		t.Errorf("first build's log does not say what the cache did:\n%s", res.Log)
	}
	markKept(t, cache)

	second := cacheRequest(t, imageSite(t, images, 1, "Second version.", nil), cache)
	res = mustBuild(t, b, second)
	if n := publishedImages(t, second.Out); n != images*variantsPerImage {
		t.Fatalf("second build published %d images, want %d", n, images*variantsPerImage)
	}
	html, _ := os.ReadFile(filepath.Join(second.Out, "index.html"))
	if !strings.Contains(string(html), "Second version.") {
		t.Errorf("second build did not render the new content: %s", html)
	}
	all, written = keptImages(t, cache)
	if all != images*variantsPerImage || written != 0 {
		t.Errorf("after the second build: %d images kept, %d processed again; want %d and 0\n%s", all, written, images*variantsPerImage, res.Log)
	}
	if !strings.Contains(string(res.Log), ", 0 of them made by this build, in ") {
		t.Errorf("second build's log does not say it made nothing:\n%s", res.Log)
	}

	// A site that drops an image and adds one: only the new one is
	// processed, and --gc leaves the dropped one out of the cache.
	markKept(t, cache)
	third := cacheRequest(t, imageSite(t, images, 1, "Third.", map[string]string{
		"assets/img/photo-0.png": string(buildtest.PNG(t, 400, 300, 200)),
	}), cache)
	mustBuild(t, b, third)
	if all, written = keptImages(t, cache); all != images*variantsPerImage || written != variantsPerImage {
		t.Errorf("after changing one image: %d kept, %d processed; want %d and %d", all, written, images*variantsPerImage, variantsPerImage)
	}
}

// TestHugoCacheCommittedGenWins: a file the repository has under
// resources/_gen is what Hugo uses, not the cached one; and it is not
// saved into the cache.
func TestHugoCacheCommittedGenWins(t *testing.T) {
	b := newBuilder(t, build.Options{})
	cache := filepath.Join(t.TempDir(), "cache", "site")
	mustBuild(t, b, cacheRequest(t, imageSite(t, 1, 1, "First.", nil), cache))
	var name string // one processed image, as Hugo names it
	_ = filepath.WalkDir(snapshot(cache), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".png" {
			name, _ = filepath.Rel(snapshot(cache), p)
		}
		return nil
	})
	if name == "" {
		t.Fatal("no processed image in the cache")
	}
	committed := buildtest.PNG(t, 8, 8, 99)
	req := cacheRequest(t, imageSite(t, 1, 1, "Second.", map[string]string{
		"resources/_gen/" + filepath.ToSlash(name): string(committed),
	}), cache)
	res := mustBuild(t, b, req)
	found := false
	_ = filepath.WalkDir(req.Out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(p); bytes.Equal(data, committed) {
				found = true
			}
		}
		return nil
	})
	if !found {
		t.Errorf("the committed resources/_gen/%s is not what was published\n%s", name, res.Log)
	}
	kept, err := os.ReadFile(filepath.Join(snapshot(cache), name))
	if err == nil && bytes.Equal(kept, committed) {
		t.Error("the committed file was saved into the cache")
	}
}

// TestHugoCachePerSite: two sites never see each other's cache. Site b
// first builds other images (its cache is then its own), then the very
// images site a built: it processes every one itself.
func TestHugoCachePerSite(t *testing.T) {
	b := newBuilder(t, build.Options{})
	caches := filepath.Join(t.TempDir(), "cache")
	a, c := filepath.Join(caches, "a"), filepath.Join(caches, "b")
	mustBuild(t, b, cacheRequest(t, imageSite(t, 2, 1, "Site a.", nil), a))
	keptA := listKept(t, a)
	res := mustBuild(t, b, cacheRequest(t, imageSite(t, 2, 50, "Site b.", nil), c))
	if !strings.Contains(string(res.Log), "Hugo cache: none yet") {
		t.Errorf("site b's first build found a cache:\n%s", res.Log)
	}
	markKept(t, c)
	mustBuild(t, b, cacheRequest(t, imageSite(t, 2, 1, "Site b, a's images.", nil), c))
	if all, written := keptImages(t, c); all != 2*variantsPerImage || written != all {
		t.Errorf("site b with site a's images: %d kept, %d processed by b; want %d and all", all, written, 2*variantsPerImage)
	}
	if got := listKept(t, a); len(got) != len(keptA) {
		t.Errorf("site a's cache changed while building site b: %d files, then %d", len(keptA), len(got))
	}
}

func listKept(t *testing.T, cacheDir string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	root := filepath.Join(cacheDir, "hugo-"+build.HugoVersion, "current")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			set[rel] = true
		}
		return nil
	})
	return set
}

// TestHugoCacheFailedBuildDoesNotSave: a build that fails after processing
// images leaves the kept cache as it was.
func TestHugoCacheFailedBuildDoesNotSave(t *testing.T) {
	b := newBuilder(t, build.Options{})
	cache := filepath.Join(t.TempDir(), "cache", "site")
	mustBuild(t, b, cacheRequest(t, imageSite(t, 2, 1, "First.", nil), cache))
	markKept(t, cache)
	before := listKept(t, cache)
	// New images are processed, then the template fails.
	src := imageSite(t, 4, 1, "Broken.", map[string]string{"layouts/home.html": imageLayout + "{{ .Nope.Nope }}"})
	if _, err := b.Build(context.Background(), cacheRequest(t, src, cache)); !build.IsUserError(err) {
		t.Fatalf("want the template error, got %v", err)
	}
	after := listKept(t, cache)
	if _, written := keptImages(t, cache); written != 0 || len(after) != len(before) {
		t.Errorf("a failed build changed the cache: %d files, then %d, %d written", len(before), len(after), written)
	}
	if work, _ := filepath.Glob(filepath.Join(cache, "work-*")); len(work) != 0 {
		t.Errorf("a failed build left its work dir: %v", work)
	}
}

// TestHugoCacheUntrustedDoesNotWriteBack: an untrusted build reads a copy
// of the cache and never saves, so it cannot plant an entry.
func TestHugoCacheUntrustedDoesNotWriteBack(t *testing.T) {
	b := newBuilder(t, build.Options{})
	cache := filepath.Join(t.TempDir(), "cache", "site")
	mustBuild(t, b, cacheRequest(t, imageSite(t, 2, 1, "First.", nil), cache))
	markKept(t, cache)
	before := listKept(t, cache)
	req := cacheRequest(t, imageSite(t, 3, 1, "From a fork.", map[string]string{
		"resources/_gen/images/planted.png": string(buildtest.PNG(t, 4, 4, 7)),
	}), cache)
	req.Untrusted = true
	res := mustBuild(t, b, req)
	if !strings.Contains(string(res.Log), "untrusted build: a copy, never saved") {
		t.Errorf("the untrusted build's log does not say it used a copy:\n%s", res.Log)
	}
	if n := publishedImages(t, req.Out); n != 3*variantsPerImage {
		t.Errorf("untrusted build published %d images, want %d", n, 3*variantsPerImage)
	}
	after := listKept(t, cache)
	if _, written := keptImages(t, cache); written != 0 || len(after) != len(before) {
		t.Errorf("an untrusted build changed the cache: %d files, then %d, %d written", len(before), len(after), written)
	}
	for name := range after {
		if strings.Contains(name, "planted") {
			t.Errorf("planted %s reached the cache", name)
		}
	}
}

// TestHugoCacheConcurrentBuilds: two builds of a site at once (production
// and a preview) both succeed; the cache kept is one of them, whole.
func TestHugoCacheConcurrentBuilds(t *testing.T) {
	b := newBuilder(t, build.Options{})
	cache := filepath.Join(t.TempDir(), "cache", "site")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		req := cacheRequest(t, imageSite(t, 3, 1, fmt.Sprintf("Build %d.", i), nil), cache)
		wg.Go(func() {
			_, errs[i] = b.Build(context.Background(), req)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	markKept(t, cache)
	mustBuild(t, b, cacheRequest(t, imageSite(t, 3, 1, "After.", nil), cache))
	if all, written := keptImages(t, cache); all != 3*variantsPerImage || written != 0 {
		t.Errorf("after two builds at once, the next one: %d kept, %d processed again; want %d and 0", all, written, 3*variantsPerImage)
	}
}

// TestHugoCacheOverLimit: a site whose cache is over the limit keeps none,
// and the build log says so.
func TestHugoCacheOverLimit(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache", "site")
	mustBuild(t, newBuilder(t, build.Options{}), cacheRequest(t, imageSite(t, 1, 1, "Small.", nil), cache))
	if len(listKept(t, cache)) == 0 {
		t.Fatal("nothing kept under the default limit")
	}
	b := newBuilder(t, build.Options{CacheLimit: 999})
	res := mustBuild(t, b, cacheRequest(t, imageSite(t, 3, 1, "Big.", nil), cache))
	if !strings.Contains(string(res.Log), "over the 999 B limit per site: not kept") {
		t.Errorf("log does not say the cache is over the limit:\n%s", res.Log)
	}
	if kept := listKept(t, cache); len(kept) != 0 {
		t.Errorf("over the limit, %d files still kept", len(kept))
	}
}

// TestHugoCacheKilledBuildDoesNotSave: a build killed at its timeout,
// after writing into its cache dir, leaves the kept cache as it was.
func TestHugoCacheKilledBuildDoesNotSave(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache", "site")
	mustBuild(t, newBuilder(t, build.Options{}), cacheRequest(t, imageSite(t, 1, 1, "First.", nil), cache))
	before := listKept(t, cache)
	script := filepath.Join(t.TempDir(), "half-write")
	body := `#!/bin/sh
dir=$(/bin/sed -n 's/.*"cache_dir":"\([^"]*\)".*/\1/p')
/bin/mkdir -p "$dir/filecache/misc" resources/_gen/images
echo half > "$dir/filecache/misc/entry"
echo half > resources/_gen/images/half.png
exec /bin/sleep 60
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, build.Options{Exe: script, Timeout: time.Second})
	if _, err := b.Build(context.Background(), cacheRequest(t, imageSite(t, 1, 1, "Killed.", nil), cache)); !build.IsUserError(err) {
		t.Fatalf("want a timeout, got %v", err)
	}
	after := listKept(t, cache)
	if len(after) != len(before) {
		t.Errorf("a killed build changed the cache: %d files, then %d", len(before), len(after))
	}
	for name := range after {
		if strings.Contains(name, "half") || strings.Contains(name, "entry") {
			t.Errorf("the killed build's %s was kept", name)
		}
	}
}
