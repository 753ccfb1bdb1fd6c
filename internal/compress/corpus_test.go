package compress

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
)

// Deterministic, realistic-looking inputs for the round-trip tests and the
// benchmarks. A single repeated byte or a repeated paragraph would make every
// compressor look brilliant and fast; these mix a large pseudo-word
// vocabulary drawn with a Zipf distribution (like natural language), random
// identifiers, numbers and URLs inside the markup or syntax that repeats in
// real sites. Their ratios land near real files of the same kind (see
// BenchmarkEncodeFiles for measuring real ones).

// corpus is one generated input.
type corpus struct {
	name, contentType string
	data              []byte
}

var corpora = sync.OnceValue(func() []corpus {
	return []corpus{
		{"html-30k", "text/html; charset=utf-8", genHTML(30 << 10)},
		{"js-300k", "text/javascript; charset=utf-8", genJS(300 << 10)},
		{"json-2m", "application/json", genJSON(2 << 20)},
	}
})

// gen carries the random source and vocabulary for one generated file.
type gen struct {
	r     *rand.Rand
	zipf  *rand.Zipf
	words []string
	ids   []string // camelCase identifiers, for JS and CSS classes
}

func newGen(seed uint64) *gen {
	r := rand.New(rand.NewPCG(seed, 0x5173_4057))
	syll := []string{"ka", "ti", "ro", "men", "sa", "lu", "de", "ver", "on", "pa",
		"ist", "co", "re", "an", "mo", "the", "ing", "al", "tr", "ex", "per", "ly",
		"ne", "ci", "bo", "ge", "fa", "st", "ul", "wh", "ra", "to", "ia", "ment", "ed"}
	seen := map[string]bool{}
	var words []string
	for len(words) < 6000 {
		n := 1 + r.IntN(3)
		if r.IntN(4) == 0 {
			n++
		}
		var b strings.Builder
		for range n {
			b.WriteString(syll[r.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	ids := make([]string, 800)
	for i := range ids {
		a, b := words[r.IntN(400)], words[r.IntN(2000)]
		ids[i] = a + strings.ToUpper(b[:1]) + b[1:]
	}
	return &gen{r: r, zipf: rand.NewZipf(r, 1.1, 2, uint64(len(words)-1)), words: words, ids: ids}
}

func (g *gen) word() string { return g.words[g.zipf.Uint64()] }

func (g *gen) id() string { return g.ids[g.r.IntN(len(g.ids))] }

func (g *gen) sentence(b *strings.Builder) {
	n := 6 + g.r.IntN(18)
	for i := range n {
		w := g.word()
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		if i < n-1 && g.r.IntN(12) == 0 {
			b.WriteByte(',')
		}
	}
	b.WriteString(". ")
}

func (g *gen) slug() string {
	return g.word() + "-" + g.word() + "-" + g.word()
}

func (g *gen) date() string {
	return fmt.Sprintf("20%02d-%02d-%02d", 18+g.r.IntN(8), 1+g.r.IntN(12), 1+g.r.IntN(28))
}

// genHTML is a blog post as a static site generator renders it: a head full
// of meta and link tags, navigation, an article with paragraphs, inline
// links and a code block, related-post cards and a footer.
func genHTML(size int) []byte {
	g := newGen(1)
	var b strings.Builder
	title := g.word() + " " + g.word() + " " + g.word()
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en-us" dir="ltr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s | Example Blog</title>
<meta name="description" content="`, title)
	g.sentence(&b)
	fmt.Fprintf(&b, `">
<link rel="canonical" href="https://blog.example.com/posts/%s/">
<link rel="stylesheet" href="/css/main.%08x.css" integrity="sha256-%x" crossorigin="anonymous">
<link rel="icon" href="/favicon.ico">
<meta property="og:title" content="%s">
<meta property="og:type" content="article">
<meta property="article:published_time" content="%sT09:00:00+00:00">
<script type="application/ld+json">{"@context":"https://schema.org","@type":"BlogPosting","headline":"%s","datePublished":"%s"}</script>
</head>
<body class="page-post">
<header class="site-header"><nav class="site-nav"><ul class="menu">
`, g.slug(), g.r.Uint32(), g.r.Uint64(), title, g.date(), title, g.date())
	for range 8 {
		w := g.word()
		fmt.Fprintf(&b, "<li class=\"menu-item\"><a class=\"menu-link\" href=\"/%s/\"><svg class=\"icon\" aria-hidden=\"true\" width=\"16\" height=\"16\" viewBox=\"0 0 24 24\"><path d=\"M%d %dh%dv%dH%dz\"/></svg><span>%s</span></a></li>\n",
			w, g.r.IntN(24), g.r.IntN(24), g.r.IntN(12), g.r.IntN(12), g.r.IntN(24), w)
	}
	fmt.Fprintf(&b, "</ul></nav></header>\n<main id=\"main\" class=\"content\">\n<article class=\"post h-entry\">\n<h1 class=\"post-title p-name\">%s</h1>\n", title)
	fmt.Fprintf(&b, "<div class=\"post-meta\"><time datetime=\"%s\">%s</time> · %d min read</div>\n", g.date(), g.date(), 2+g.r.IntN(12))
	b.WriteString("<nav class=\"toc\" aria-label=\"Table of contents\"><ol class=\"toc-list\">\n")
	for range 6 {
		fmt.Fprintf(&b, "<li class=\"toc-item\"><a class=\"toc-link\" href=\"#%s\">%s %s</a></li>\n", g.slug(), g.word(), g.word())
	}
	b.WriteString("</ol></nav>\n<div class=\"post-content e-content\">\n")
	for b.Len() < size*65/100 {
		switch g.r.IntN(10) {
		case 0:
			fmt.Fprintf(&b, "<h2 id=\"%s\">%s %s<a class=\"anchor\" href=\"#%s\" aria-hidden=\"true\">#</a></h2>\n", g.slug(), g.word(), g.word(), g.slug())
		case 1:
			b.WriteString("<div class=\"highlight\"><pre tabindex=\"0\" class=\"chroma\"><code class=\"language-go\" data-lang=\"go\">")
			for range 3 + g.r.IntN(6) {
				fmt.Fprintf(&b, "<span class=\"line\"><span class=\"cl\">\t<span class=\"nx\">%s</span> <span class=\"o\">:=</span> <span class=\"nx\">%s</span><span class=\"p\">.</span><span class=\"nf\">%s</span><span class=\"p\">(</span><span class=\"s\">%q</span><span class=\"p\">)</span>\n</span></span>",
					g.id(), g.id(), g.id(), g.word())
			}
			b.WriteString("</code></pre></div>\n")
		default:
			b.WriteString("<p>")
			for range 2 + g.r.IntN(4) {
				g.sentence(&b)
				switch g.r.IntN(4) {
				case 0:
					fmt.Fprintf(&b, "<a href=\"/posts/%s/\">%s %s</a> ", g.slug(), g.word(), g.word())
				case 1:
					fmt.Fprintf(&b, "<code>%s</code> ", g.id())
				}
			}
			b.WriteString("</p>\n")
		}
	}
	b.WriteString("</div>\n<ul class=\"post-tags\">")
	for range 5 {
		w := g.word()
		fmt.Fprintf(&b, "<li><a class=\"tag\" href=\"/tags/%s/\">#%s</a></li>", w, w)
	}
	b.WriteString("</ul>\n</article>\n<section class=\"related\"><h2>Related posts</h2><ul class=\"cards\">\n")
	for b.Len() < size*90/100 {
		fmt.Fprintf(&b, "<li class=\"card\"><a class=\"card-link\" href=\"/posts/%s/\"><img class=\"card-img\" src=\"/images/%s.webp\" alt=\"%s\" loading=\"lazy\" width=\"320\" height=\"180\"><span class=\"card-title\">%s %s</span><time class=\"card-date\" datetime=\"%s\">%s</time></a></li>\n",
			g.slug(), g.slug(), g.word(), g.word(), g.word(), g.date(), g.date())
	}
	b.WriteString("</ul></section>\n</main>\n<footer class=\"site-footer\"><div class=\"footer-columns\">\n")
	for b.Len() < size-300 {
		b.WriteString("<ul class=\"footer-links\">")
		for range 6 {
			w := g.word()
			fmt.Fprintf(&b, "<li class=\"footer-item\"><a class=\"footer-link\" href=\"/%s/\">%s</a></li>", w, w)
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("</div><p>© 2025 Example Blog. Built with a static site generator.</p></footer>\n<script src=\"/js/main.min.js\" defer></script>\n</body>\n</html>\n")
	return []byte(b.String())
}

// genJS is a minified bundle: many small modules of short local names,
// property accesses on a shared API vocabulary, string literals and numbers.
func genJS(size int) []byte {
	g := newGen(2)
	var b strings.Builder
	b.WriteString(`"use strict";(self.webpackChunkapp=self.webpackChunkapp||[]).push([[179],{`)
	locals := "abcdefghijklmnopqrstuvwxyz"
	local := func() string {
		if g.r.IntN(4) == 0 {
			return string(locals[g.r.IntN(26)]) + string(locals[g.r.IntN(26)])
		}
		return string(locals[g.r.IntN(26)])
	}
	for mod := 0; b.Len() < size-2; mod++ {
		fmt.Fprintf(&b, "%d:function(e,t,n){", 1000+g.r.IntN(90000))
		for range 2 + g.r.IntN(6) {
			a, c, d := local(), local(), local()
			switch g.r.IntN(6) {
			case 0:
				fmt.Fprintf(&b, "var %s=n(%d),%s=n.n(%s);", a, g.r.IntN(99999), c, a)
			case 1:
				fmt.Fprintf(&b, "function %s(%s,%s){if(!%s||typeof %s.%s!==\"function\")throw new TypeError(\"%s %s %s\");return %s.%s(%s,{%s:!0,%s:%d})}",
					a, c, d, c, c, g.id(), g.word(), g.word(), g.word(), c, g.id(), d, g.id(), g.id(), g.r.IntN(1000))
			case 2:
				fmt.Fprintf(&b, "%s.prototype.%s=function(%s){var %s=this;return this.%s.map(function(%s){return %s.%s(%s,%s.%s)})};",
					a, g.id(), c, d, g.id(), a, d, g.id(), a, c, g.id())
			case 3:
				fmt.Fprintf(&b, "const %s={%s:\"%s\",%s:%d,%s:[%d,%d,%d],%s:function(){return this.%s}};",
					a, g.id(), g.word(), g.id(), g.r.IntN(10000), g.id(), g.r.IntN(256), g.r.IntN(256), g.r.IntN(256), g.id(), g.id())
			case 4:
				fmt.Fprintf(&b, "for(let %s=0;%s<%s.length;%s++){const %s=%s[%s];%s.%s?%s.push(%s.%s):%s[%s.%s]=%s}",
					a, a, c, a, d, c, a, d, g.id(), c, d, g.id(), c, d, g.id(), d)
			default:
				fmt.Fprintf(&b, "t.%s=async function(%s){const %s=await fetch(\"/api/%s/\"+%s.%s);if(!%s.ok)throw new Error(\"%s\");return %s.json()};",
					g.id(), a, c, g.word(), a, g.id(), c, g.word(), c)
			}
		}
		b.WriteString("},")
	}
	b.WriteString("}]);")
	return []byte(b.String())
}

// genJSON is a search index as static site generators emit it: one object
// per page with title, URL, date, tags, summary and the page's full text.
func genJSON(size int) []byte {
	g := newGen(3)
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; b.Len() < size-2; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"title":"%s %s %s","permalink":"https://docs.example.com/%s/%s/","date":"%sT%02d:%02d:00Z","section":"%s","tags":["%s","%s","%s"],"summary":"`,
			g.word(), g.word(), g.word(), g.word(), g.slug(), g.date(), g.r.IntN(24), g.r.IntN(60), g.word(), g.word(), g.word(), g.word())
		g.sentence(&b)
		b.WriteString(`","content":"`)
		for range 5 + g.r.IntN(30) {
			g.sentence(&b)
		}
		fmt.Fprintf(&b, `","wordCount":%d,"readingTime":%d}`, 100+g.r.IntN(3000), 1+g.r.IntN(15))
	}
	b.WriteByte(']')
	return []byte(b.String())
}
