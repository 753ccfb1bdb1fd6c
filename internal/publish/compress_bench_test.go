package publish_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
)

// The cost of precompressing at publish time (variants.go): a first publish
// compresses every page, the first 1 MiB of it (smallest files first) at
// the best level (gzip 9, brotli 11) and the rest at the fast one (gzip 6,
// brotli 5); a deploy that changes one page compresses that page alone.
//
//	go test -run XXX -bench 'UploadCompressed|UploadNoVariants|UploadOneChanged' -benchtime 3x ./internal/publish
const (
	benchPages    = 1000
	benchPageSize = 30 << 10
)

// siteGen makes deterministic pages that compress like real ones: words
// from a pseudo-word vocabulary drawn with a Zipf distribution (as natural
// language is), links, dates and numbers inside markup a template repeats
// on every page. One repeated string would make every compressor look
// brilliant and fast.
type siteGen struct {
	r     *rand.Rand
	zipf  *rand.Zipf
	words []string
}

func newSiteGen(seed uint64) *siteGen {
	r := rand.New(rand.NewPCG(seed, 0x0c0ffee))
	syll := []string{"ka", "ti", "ro", "men", "sa", "lu", "de", "ver", "on", "pa",
		"ist", "co", "re", "an", "mo", "the", "ing", "al", "tr", "ex", "per", "ly",
		"ne", "ci", "bo", "ge", "fa", "st", "ul", "wh", "ra", "to", "ia", "ment", "ed"}
	seen := map[string]bool{}
	var words []string
	for len(words) < 5000 {
		var b strings.Builder
		for range 1 + r.IntN(3) + r.IntN(2) {
			b.WriteString(syll[r.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return &siteGen{r: r, zipf: rand.NewZipf(r, 1.1, 2, uint64(len(words)-1)), words: words}
}

func (g *siteGen) word() string { return g.words[g.zipf.Uint64()] }

// para writes one paragraph of 3–7 sentences, some words linked or
// emphasised.
func (g *siteGen) para(b *strings.Builder) {
	b.WriteString("<p>")
	for s := range 3 + g.r.IntN(5) {
		if s > 0 {
			b.WriteByte(' ')
		}
		for i := range 6 + g.r.IntN(18) {
			w := g.word()
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			switch g.r.IntN(40) {
			case 0:
				fmt.Fprintf(b, `<a href="/posts/%04d/">%s</a>`, g.r.IntN(benchPages), w)
			case 1:
				fmt.Fprintf(b, "<em>%s</em>", w)
			case 2:
				fmt.Fprintf(b, "%s %d", w, g.r.IntN(10000))
			default:
				b.WriteString(w)
			}
		}
		b.WriteByte('.')
	}
	b.WriteString("</p>\n")
}

// page returns post i, about size bytes.
func (g *siteGen) page(i, size int) []byte {
	var b strings.Builder
	title := g.word() + " " + g.word() + " " + g.word()
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s | bench blog</title><meta name="description" content="%s %s %s">
<link rel="canonical" href="https://bench.test/posts/%04d/"><link rel="stylesheet" href="/css/site.css">
<script src="/js/app.js" defer></script></head>
<body><header class="site-header"><a class="logo" href="/">bench blog</a><nav><ul>
`, title, g.word(), g.word(), g.word(), i)
	for _, s := range []string{"about", "archive", "tags", "projects", "notes", "contact", "feed"} {
		fmt.Fprintf(&b, `<li class="nav-item"><a class="nav-link" href="/%s/">%s</a></li>`+"\n", s, s)
	}
	fmt.Fprintf(&b, `</ul></nav></header>
<main><article class="post"><h1 class="post-title">%s</h1>
<p class="post-meta"><time datetime="20%02d-%02d-%02d">%02d/%02d/20%02d</time> · %d min read</p>
`, title, 15+i%10, 1+i%12, 1+i%28, 1+i%28, 1+i%12, 15+i%10, 2+g.r.IntN(12))
	for b.Len() < size-600 {
		if g.r.IntN(5) == 0 {
			fmt.Fprintf(&b, "<h2 id=\"%s-%d\">%s %s</h2>\n", g.word(), b.Len(), g.word(), g.word())
		}
		g.para(&b)
	}
	fmt.Fprintf(&b, `</article></main>
<footer class="site-footer"><p><a href="/posts/%04d/">previous</a> · <a href="/posts/%04d/">next</a></p>
<p>© bench blog · <a href="/feed.xml">RSS</a></p></footer></body></html>
`, (i+benchPages-1)%benchPages, (i+1)%benchPages)
	return []byte(b.String())
}

// writeBenchSite writes benchPages posts of ~benchPageSize bytes at
// posts/NNNN/<file> and returns the folder.
func writeBenchSite(b *testing.B, file string) string {
	b.Helper()
	dir := b.TempDir()
	g := newSiteGen(1)
	for i := range benchPages {
		name := filepath.Join(dir, "posts", fmt.Sprintf("%04d", i), file)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(name, g.page(i, benchPageSize), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// uploadTotals adds up what uploads did, for per-op metrics.
type uploadTotals struct {
	n, variants, blobs int
	bytes              int64
}

func (t *uploadTotals) add(s publish.UploadStats) {
	t.n++
	t.variants += s.Variants
	t.blobs += s.BlobsUploaded
	t.bytes += s.BytesUploaded
}

func (t *uploadTotals) report(b *testing.B) {
	n := float64(t.n)
	b.ReportMetric(float64(t.variants)/n, "variants/op")
	b.ReportMetric(float64(t.blobs)/n, "blobs-uploaded/op")
	b.ReportMetric(float64(t.bytes)/n, "bytes-uploaded/op")
}

// BenchmarkUploadCompressed: the first publish of 1,000 pages of ~30 KiB
// into an empty store (every page compressed twice); each iteration starts
// from a new store.
func BenchmarkUploadCompressed(b *testing.B) {
	benchmarkFirstUpload(b, "index.html", true)
}

// BenchmarkUploadNoVariants is the control: the same bytes named
// index.bin, a type that gets no variants, so the upload hashes and
// stores the same bodies and compresses nothing. The difference from
// BenchmarkUploadCompressed is what the variants cost (compressing, and
// storing 2,000 more blobs).
func BenchmarkUploadNoVariants(b *testing.B) {
	benchmarkFirstUpload(b, "index.bin", false)
}

func benchmarkFirstUpload(b *testing.B, file string, variants bool) {
	dir := writeBenchSite(b, file)
	ctx := context.Background()
	var tot uploadTotals
	var raw, gz, br int64
	for b.Loop() {
		b.StopTimer()
		p := publish.New(newStore(b), publish.Options{TempDir: b.TempDir()})
		b.StartTimer()
		m, stats, err := p.Upload(ctx, publish.Deploy{Site: blog, Commit: commit1, BuildKey: buildKey(fmt.Sprint("first ", tot.n)), Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		tot.add(stats)
		raw, gz, br = 0, 0, 0
		for _, f := range m.Files {
			if (f.Gzip != nil && f.Brotli != nil) != variants {
				b.Fatalf("a page with variants %v, want %v: %+v", f.Gzip != nil && f.Brotli != nil, variants, f)
			}
			raw += f.Size
			if variants {
				gz, br = gz+f.Gzip.Size, br+f.Brotli.Size
			}
		}
	}
	tot.report(b)
	b.ReportMetric(float64(raw), "identity-bytes")
	if variants {
		b.ReportMetric(float64(gz)/float64(raw), "gzip-ratio")
		b.ReportMetric(float64(br)/float64(raw), "br-ratio")
	}
}

// BenchmarkUploadOneChanged: the same site is live on production; each
// iteration changes one page (a different text each time) and uploads the
// new deploy, whose other 999 pages take their variants from the live
// manifest.
func BenchmarkUploadOneChanged(b *testing.B) {
	dir := writeBenchSite(b, "index.html")
	ctx := context.Background()
	p := publish.New(newStore(b), publish.Options{TempDir: b.TempDir()})
	m, _ := upload(b, p, dir, "live")
	if _, err := p.Activate(ctx, blog, site.Production, m, built(commit1)); err != nil {
		b.Fatal(err)
	}
	name := filepath.Join(dir, "posts", "0500", "index.html")
	orig, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	var tot uploadTotals
	for b.Loop() {
		b.StopTimer()
		// An edit in the middle of the page, so the page stays the same size.
		body := []byte(strings.Replace(string(orig), "<p>", fmt.Sprintf("<p>Edit %d. ", tot.n), 1))
		if err := os.WriteFile(name, body, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		_, stats, err := p.Upload(ctx, publish.Deploy{Site: blog, Channel: site.Production, Commit: commit2,
			BuildKey: buildKey(fmt.Sprint("changed ", tot.n)), Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		tot.add(stats)
	}
	tot.report(b)
}
