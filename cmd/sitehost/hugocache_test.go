package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestHugoCacheThroughLoop: through the reconcile loop, a site's second
// deploy (a content change, the same images) processes no image: Hugo's
// cache is kept in data_dir/cache/<site> between builds.
func TestHugoCacheThroughLoop(t *testing.T) {
	const images, variants = 3, 3
	repo := gittest.New(t, "testdata/blog")
	for i := range images {
		repo.Write(fmt.Sprintf("assets/img/photo-%d.png", i), string(gradientPNG(t, 480, 320, byte(i+1))))
	}
	repo.Write("layouts/home.html", `{{ define "main" }}{{ .Content }}{{ range resources.Match "img/*" }}{{ $img := . }}`+
		`{{ range slice 100 200 }}<img src="{{ ($img.Resize (printf "%dx" .)).RelPermalink }}">{{ end }}`+
		`<img src="{{ ($img.Fill "48x48").RelPermalink }}">{{ end }}{{ end }}`+"\n")
	repo.Write("content/_index.md", "---\ntitle: Home\n---\nPhotos, first version.\n")
	repo.Commit("Photos")
	data := t.TempDir()
	srv := startServer(t, testConfig(t, data, siteYAML(repo.URL())), nil)
	syncSite(t, srv, "blog")
	home := get(t, srv, "blog.test", "/")
	if home.status != 200 || strings.Count(home.body, "<img ") != images*variants {
		t.Fatalf("home after the first deploy: %d %q\nstatus: %s", home.status, home.body, status(t, srv, "blog"))
	}
	kept := filepath.Join(data, "cache", "blog", "hugo-"+build.HugoVersion, "current", "gen", "images")
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
	if !strings.Contains(home.body, "second version") || strings.Count(home.body, "<img ") != images*variants {
		t.Fatalf("home after the second deploy: %q", home.body)
	}
	for _, part := range strings.Split(home.body, `<img src="`)[1:] {
		if img := get(t, srv, "blog.test", part[:strings.Index(part, `"`)]); img.status != 200 || !strings.HasPrefix(img.body, "\x89PNG") {
			t.Errorf("processed image %s: %d", part[:strings.Index(part, `"`)], img.status)
		}
	}
	if all, written := keptPNGs(t, kept, false); all != images*variants || written != 0 {
		t.Errorf("second deploy: %d images kept, %d processed again; want %d and 0", all, written, images*variants)
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

func gradientPNG(t *testing.T, w, h int, seed byte) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{byte(x) ^ seed, byte(y) + seed, byte(x+y) * seed, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
