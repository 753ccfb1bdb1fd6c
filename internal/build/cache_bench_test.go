package build_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
)

// BenchmarkHugoCache times the first build of an image-heavy site (empty
// cache) and a second one (a content change, the same images, the cache
// the first one kept). The site: 40 photo-sized JPEGs (1600x1200) each
// resized to three widths. See bench/README.md.
//
//	go test -tags extended -run XXX -bench HugoCache -benchtime 3x -count 1 ./internal/build
func BenchmarkHugoCache(b *testing.B) {
	const images = 40
	site := filepath.Join(b.TempDir(), "site")
	files := map[string][]byte{
		"hugo.toml":         []byte("title = \"Photos\"\n"),
		"content/_index.md": []byte("---\ntitle: Home\n---\n"),
		"layouts/home.html": []byte(`{{ range resources.Match "img/*" }}{{ $img := . }}{{ range slice 480 960 1440 }}<img src="{{ ($img.Resize (printf "%dx" .)).RelPermalink }}">{{ end }}{{ end }}{{ .Content }}`),
	}
	var srcBytes int
	for i := range images {
		files[fmt.Sprintf("assets/img/photo-%02d.jpg", i)] = photoJPEG(b, 1600, 1200, uint64(i))
		srcBytes += len(files[fmt.Sprintf("assets/img/photo-%02d.jpg", i)])
	}
	for name, data := range files {
		p := filepath.Join(site, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	builder, err := build.New(build.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d JPEGs, %.1f MB of sources", images, float64(srcBytes)/1e6)
	n := 0
	// buildOnce builds a fresh copy of the site (a new home page text)
	// with the given cache, and returns how many cache files it made. Only
	// the build itself is timed, and only when timed.
	var copyIn, save time.Duration // the cache's own work in the last build
	buildOnce := func(b *testing.B, cache string, timed bool) (made int) {
		b.StopTimer()
		n++
		dir := b.TempDir()
		src := filepath.Join(dir, "src")
		if err := os.CopyFS(src, os.DirFS(site)); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "content", "_index.md"), fmt.Appendf(nil, "---\ntitle: Home\n---\nVersion %d.\n", n), 0o644); err != nil {
			b.Fatal(err)
		}
		req := build.Request{Site: "bench", Src: src, Out: filepath.Join(dir, "out"), BaseURL: "https://example.test/", CacheDir: cache,
			Settings: build.Settings{Tool: build.ToolHugo, Environment: "production"}}
		if timed {
			b.StartTimer()
		}
		res, err := builder.Build(context.Background(), req)
		b.StopTimer()
		if err != nil {
			b.Fatalf("build: %v\n%s", err, res.Log)
		}
		m := madeRe.FindSubmatch(res.Log)
		if m == nil {
			b.Fatalf("no cache note in the build log:\n%s", res.Log)
		}
		made, _ = strconv.Atoi(string(m[1]))
		save, _ = time.ParseDuration(string(m[2]))
		copyIn = 0
		if m := seedRe.FindSubmatch(res.Log); m != nil {
			copyIn, _ = time.ParseDuration(string(m[1]))
		}
		if timed {
			b.StartTimer()
		}
		return made
	}

	b.Run("first", func(b *testing.B) {
		made := 0
		for range b.N {
			made = buildOnce(b, filepath.Join(b.TempDir(), "cache"), true) // empty each time
		}
		b.ReportMetric(float64(made), "made/build")
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/build")
		b.ReportMetric(float64(save.Milliseconds()), "ms-cache-save")
	})
	b.Run("second", func(b *testing.B) {
		cache := filepath.Join(b.TempDir(), "cache")
		b.StopTimer()
		buildOnce(b, cache, false) // the first build, not timed
		b.StartTimer()
		made := 0
		for range b.N {
			made = buildOnce(b, cache, true)
		}
		b.ReportMetric(float64(made), "made/build")
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/build")
		b.ReportMetric(float64(copyIn.Milliseconds()), "ms-cache-copy-in")
		b.ReportMetric(float64(save.Milliseconds()), "ms-cache-save")
	})
}

var (
	madeRe = regexp.MustCompile(`Hugo cache: saved \d+ files \([^)]*\), (\d+) of them made by this build, in (\S+)\n`)
	seedRe = regexp.MustCompile(`Hugo cache: reusing .* copied in (\S+)\n`)
)

// photoJPEG is a w×h JPEG that compresses like a photo: gradients with
// noise, so decoding and resizing cost what they do on real pictures.
func photoJPEG(b *testing.B, w, h int, seed uint64) []byte {
	b.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := byte(r.IntN(48))
			img.Set(x, y, color.RGBA{byte(x*255/w) + n, byte(y*255/h) + n, byte(seed*40) + n, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}
