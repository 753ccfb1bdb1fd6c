package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/build/buildtest"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestHugoCacheThroughLoop: through the reconcile loop, a site's second
// deploy (a content change, the same images) processes no image: Hugo's
// cache is kept in data_dir/cache/hugo/<site> between builds.
func TestHugoCacheThroughLoop(t *testing.T) {
	const images, variants = 3, 3
	repo := gittest.New(t, "testdata/blog")
	for i := range images {
		repo.Write(fmt.Sprintf("assets/img/photo-%d.png", i), string(buildtest.PNG(t, 480, 320, byte(i+1))))
	}
	repo.Write("layouts/home.html", `{{ define "main" }}{{ .Content }}{{ range resources.Match "img/*" }}{{ $img := . }}`+
		`{{ range slice 100 200 }}<img src="{{ ($img.Resize (printf "%dx" .)).RelPermalink }}">{{ end }}`+
		`<img src="{{ ($img.Fill "48x48").RelPermalink }}">{{ end }}{{ end }}`+"\n")
	repo.Write("content/_index.md", "---\ntitle: Home\n---\nPhotos, first version.\n")
	repo.Commit("Photos")
	data := t.TempDir()
	srv := startServer(t, testConfig(t, data, siteYAML(repo.URL())+"    webhook: { secret_env: TEST_HOOK_SECRET }\n"),
		map[string]string{"TEST_HOOK_SECRET": testHookSecret})
	syncSite(t, srv, "blog")
	home := get(t, srv, "blog.test", "/")
	if home.status != 200 || strings.Count(home.body, "<img ") != images*variants {
		t.Fatalf("home after the first deploy: %d %q\nstatus: %s", home.status, home.body, status(t, srv, "blog"))
	}
	kept := filepath.Join(data, "cache", "hugo", "blog", "hugo-"+build.HugoVersion, "current", "gen", "images")
	if all, written := keptPNGs(t, kept, true); all != images*variants || written != all {
		t.Fatalf("first deploy kept %d processed images (%d written), want %d", all, written, images*variants)
	}

	repo.Write("content/_index.md", "---\ntitle: Home\n---\nPhotos, second version.\n")
	repo.Commit("Second version")
	syncSite(t, srv, "blog")
	if st, _ := srv.loop.SiteStatus("blog"); st.State != site.Synced || srv.loop.Builds() != 2 {
		t.Fatalf("after the second commit: %+v, %d builds", st, srv.loop.Builds())
	}
	home = get(t, srv, "blog.test", "/")
	if !strings.Contains(home.body, "second version") || len(imgSrcs(home.body)) != images*variants {
		t.Fatalf("home after the second deploy: %q", home.body)
	}
	for _, src := range imgSrcs(home.body) {
		if img := get(t, srv, "blog.test", src); img.status != 200 || !strings.HasPrefix(img.body, "\x89PNG") {
			t.Errorf("processed image %s: %d", src, img.status)
		}
	}
	if all, written := keptPNGs(t, kept, false); all != images*variants || written != 0 {
		t.Errorf("second deploy: %d images kept, %d processed again; want %d and 0", all, written, images*variants)
	}

	// A pull request from a fork changes an image: its preview processes
	// it from a copy of the cache and never writes the cache back.
	head := pushPR(repo, 9, "assets/img/photo-0.png", string(buildtest.PNG(t, 480, 320, 99)))
	payload := githubPayload(t, "pull_request.opened.json", repo.URL(), 9, head)
	payload = bytes.Replace(payload, []byte(`"id": 186853002`), []byte(`"id": 4242`), 1) // the head repository's: another one
	if code := sendGitHub(t, srv, "pull_request", payload); code != http.StatusAccepted {
		t.Fatalf("fork's pull request webhook: %d, want 202", code)
	}
	host := "pr-9--blog.localhost"
	waitFor(t, func() bool { return get(t, srv, host, "/").status == 200 })
	prodImgs, newImgs := imgSrcs(home.body), 0
	for _, src := range imgSrcs(get(t, srv, host, "/").body) {
		if !slices.Contains(prodImgs, src) {
			newImgs++
		}
	}
	if newImgs != variants {
		t.Fatalf("fork's preview has %d images production does not, want %d (the changed one)", newImgs, variants)
	}
	if all, written := keptPNGs(t, kept, false); all != images*variants || written != 0 {
		t.Errorf("after a fork's preview: %d images kept, %d written; want %d and 0 (untrusted builds never save)", all, written, images*variants)
	}
}

// keptMarker is the mtime the test gives kept images: Hugo never sets an
// mtime, so a kept image with another one was written by a later build.
var keptMarker = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// keptPNGs counts the images under dir and those written since markPNGs;
// with mark, it then marks them all.
func keptPNGs(t *testing.T, dir string, mark bool) (all, written int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".png" {
			return err
		}
		all++
		if fi, err := d.Info(); err != nil || !fi.ModTime().Equal(keptMarker) {
			written++
		}
		if mark {
			return os.Chtimes(p, keptMarker, keptMarker)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all, written
}

// imgSrcs is every image's src in a page (minified: quotes optional).
func imgSrcs(html string) []string {
	var srcs []string
	for _, m := range imgSrc.FindAllStringSubmatch(html, -1) {
		srcs = append(srcs, m[1])
	}
	return srcs
}

var imgSrc = regexp.MustCompile(`<img src="?([^" >]+)`)
