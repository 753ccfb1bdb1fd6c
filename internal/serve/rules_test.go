package serve_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
)

const redirects = `# Netlify _redirects, as a user would write them
/old             /new-page
/temp            /about/            302
/about           /elsewhere         301
/blog/post       /forced-target     301!
/news/*          /blog/:splat       301
/posts/:year/:slug  /blog/:year-:slug  301
/store id=:id    /product/:id       301
/search q=sitehost  /found          302
/app/*           /app/index.html    200
/files/*         /docs/:splat.txt   200
/gone            /errors/gone.html  410
/legal           /errors/legal.html 451
/en/*            /en/404.html       404
/lang            /de/               302  Language=de
/lang            /en/               302
/geo             /us/               302  Country=us,ca
/geo             /world/            302
/beta            /beta-on/          302  Cookie=beta,preview
/api/*           https://api.example.invalid/:splat  200
/staff           /staff/            302  Role=admin
https://a.example/*  https://a.test/moved/:splat  301!
/broken
/*               /index.html        200
`

const headers = `/*
  X-Frame-Options: DENY
/css/*
  Cache-Control: public, max-age=3600
  Link: </font.woff2>; rel=preload
  Link: </other.css>; rel=preload
/secret/*
  Content-Length: 5
  X-Secret: yes
`

var ruleSites = []serve.Site{
	{Name: "a", Domains: []string{"a.test", "www.a.test", "a.example"}, Rules: serve.RuleOptions{CountryHeader: "CF-IPCountry"}},
}

func TestRules(t *testing.T) {
	e := newEnvSites(t, time.Hour, true, ruleSites)
	m := e.live(t, "a", site.Production, map[string]string{
		"_redirects":         redirects,
		"_headers":           headers,
		"index.html":         "spa shell",
		"about/index.html":   "about",
		"blog/post.html":     "a post",
		"app/index.html":     "app shell",
		"errors/gone.html":   "gone for good",
		"errors/legal.html":  "unavailable for legal reasons",
		"en/404.html":        "english not found",
		"css/site.css":       "body{}",
		"docs/café menu.txt": "café menu",
		"secret/x.txt":       "x",
		"404.html":           "custom not found",
	})
	if _, ok := m.Files["_redirects"]; ok {
		t.Error("_redirects was published as a file")
	}
	if _, ok := m.Files["_headers"]; ok {
		t.Error("_headers was published as a file")
	}
	// Errors name the file and line; the deploy is live anyway.
	var errs []string
	for _, e := range m.Rules.Errors {
		errs = append(errs, e.Error())
	}
	for _, want := range []string{"_redirects:21:", "_redirects:23:", "_headers:8:"} {
		if !slices.ContainsFunc(errs, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no rule error at %s; errors: %q", want, errs)
		}
	}

	tests := []struct {
		name     string
		method   string
		host     string
		target   string
		header   http.Header
		status   int
		location string
		body     string
	}{
		{name: "default 301", target: "/old", status: 301, location: "/new-page"},
		{name: "query passed through", target: "/old?utm=x&a=1", status: 301, location: "/new-page?utm=x&a=1"},
		{name: "trailing slash matches", target: "/old/", status: 301, location: "/new-page"},
		{name: "302", target: "/temp", status: 302, location: "/about/"},
		{name: "existing file shadows an unforced rule", target: "/about", status: 301, location: "/about/"},
		{name: "existing file shadows, with slash", target: "/about/", status: 200, body: "about"},
		{name: "forced rule beats a file", target: "/blog/post", status: 301, location: "/forced-target"},
		{name: "splat", target: "/news/2024/hello", status: 301, location: "/blog/2024/hello"},
		{name: "placeholders", target: "/posts/2024/hello", status: 301, location: "/blog/2024-hello"},
		{name: "query placeholder", target: "/store?id=42", status: 301, location: "/product/42"},
		{name: "query rule needs its parameter", target: "/store", status: 200, body: "spa shell"},
		{name: "query literal matches", target: "/search?q=sitehost", status: 302, location: "/found"},
		{name: "query literal differs", target: "/search?q=other", status: 200, body: "spa shell"},
		{name: "rewrite", target: "/app/settings/profile", status: 200, body: "app shell"},
		{name: "rewrite to an escaped name", target: "/files/caf%C3%A9%20menu", status: 200, body: "café menu"},
		{name: "a splat never climbs out", target: "/news/../../etc/passwd", status: 200, body: "spa shell"},
		{name: "a splat never climbs out, escaped", target: "/news/%2e%2e/x", status: 200, body: "spa shell"},
		{name: "410 with content", target: "/gone", status: 410, body: "gone for good"},
		{name: "451 with content", target: "/legal", status: 451, body: "unavailable for legal reasons"},
		{name: "custom 404 for a section", target: "/en/missing", status: 404, body: "english not found"},
		{name: "language first choice", target: "/lang", header: http.Header{"Accept-Language": {"de-CH, en;q=0.5"}}, status: 302, location: "/de/"},
		{name: "language other", target: "/lang", header: http.Header{"Accept-Language": {"en-US,en;q=0.9,de;q=0.8"}}, status: 302, location: "/en/"},
		{name: "language absent", target: "/lang", status: 302, location: "/en/"},
		{name: "country from the trusted header", target: "/geo", header: http.Header{"Cf-Ipcountry": {"CA"}}, status: 302, location: "/us/"},
		{name: "country other", target: "/geo", header: http.Header{"Cf-Ipcountry": {"FR"}}, status: 302, location: "/world/"},
		{name: "country unknown", target: "/geo", status: 302, location: "/world/"},
		{name: "cookie present", target: "/beta", header: http.Header{"Cookie": {"theme=dark; preview=1"}}, status: 302, location: "/beta-on/"},
		{name: "cookie absent", target: "/beta", header: http.Header{"Cookie": {"theme=dark"}}, status: 200, body: "spa shell"},
		{name: "proxy rules are off unless enabled", target: "/api/users", status: 200, body: "spa shell"},
		{name: "role rules never match", target: "/staff", status: 200, body: "spa shell"},
		{name: "SPA fallback", target: "/some/client/route", status: 200, body: "spa shell"},
		{name: "a missing script is not the SPA shell", target: "/assets/app.js", status: 404, body: "custom not found"},
		{name: "a missing stylesheet is not the SPA shell", target: "/assets/app.css", status: 404, body: "custom not found"},
		{name: "domain-level rule on an alias", host: "a.example", target: "/x/y?z=1", status: 301, location: "https://a.test/moved/x/y?z=1"},
		{name: "alias without a rule", host: "www.a.test", target: "/x", status: 301, location: "http://a.test/x"},
		{name: "redirects answer any method", method: "POST", target: "/old", status: 301, location: "/new-page"},
		{name: "rewrites are read-only", method: "POST", target: "/app/x", status: 405, body: "405 method not allowed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.host == "" {
				tt.host = "a.test"
			}
			rec := do(t, e.h, request{method: tt.method, host: tt.host, target: tt.target, header: tt.header})
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (Location %q, body %q)", rec.Code, tt.status, rec.Header().Get("Location"), rec.Body)
			}
			if got := rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location = %q, want %q", got, tt.location)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("body = %q, want %q", rec.Body, tt.body)
			}
		})
	}

	t.Run("headers", func(t *testing.T) {
		rec := do(t, e.h, request{host: "a.test", target: "/css/site.css"})
		h := rec.Header()
		if got := h.Get("Cache-Control"); got != "public, max-age=3600" {
			t.Errorf("Cache-Control = %q: _headers must replace the default", got)
		}
		if got := h.Values("Link"); !slices.Equal(got, []string{"</font.woff2>; rel=preload", "</other.css>; rel=preload"}) {
			t.Errorf("Link = %q, want both values", got)
		}
		if got := h.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("X-Frame-Options = %q: every matching rule applies", got)
		}
		// Rewritten and 404 answers are files too; redirects are not.
		if got := do(t, e.h, request{host: "a.test", target: "/app/x"}).Header().Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("rewrite: X-Frame-Options = %q", got)
		}
		if got := do(t, e.h, request{host: "a.test", target: "/old"}).Header().Get("X-Frame-Options"); got != "" {
			t.Errorf("redirect: X-Frame-Options = %q, want none", got)
		}
		rec = do(t, e.h, request{host: "a.test", target: "/secret/x.txt"})
		if rec.Header().Get("X-Secret") != "yes" || rec.Header().Get("Content-Length") != "1" || rec.Body.String() != "x" {
			t.Errorf("refused Content-Length leaked: headers %v, body %q", rec.Header(), rec.Body)
		}
	})
}

func TestRulesFromNetlifyTOML(t *testing.T) {
	e := newEnvSites(t, time.Hour, true, ruleSites)
	e.live(t, "a", site.Production, map[string]string{
		"_redirects":   "/a /from-redirects-file 302\n",
		"index.html":   "home",
		"page.html":    "page",
		"netlify.toml": "[[redirects]]\nfrom = \"/a\"\nto = \"/from-toml\"\n\n[[redirects]]\nfrom = \"/b\"\nto = \"/page\"\nstatus = 200\nforce = true\n\n[[headers]]\nfor = \"/page\"\n[headers.values]\nX-From = \"toml\"\n",
	})
	if rec := do(t, e.h, request{host: "a.test", target: "/a"}); rec.Code != 302 || rec.Header().Get("Location") != "/from-redirects-file" {
		t.Errorf("/a = %d %q: _redirects must come before netlify.toml", rec.Code, rec.Header().Get("Location"))
	}
	if rec := do(t, e.h, request{host: "a.test", target: "/b"}); rec.Code != 200 || rec.Body.String() != "page" {
		t.Errorf("/b = %d %q, want the rewrite to page.html", rec.Code, rec.Body)
	}
	if got := do(t, e.h, request{host: "a.test", target: "/page"}).Header().Get("X-From"); got != "toml" {
		t.Errorf("X-From = %q, want the netlify.toml header", got)
	}
}

func TestCompression(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	page := "<!doctype html><title>t</title>" + strings.Repeat("<p>Static sites, served from git, compressed once.</p>\n", 200)
	small := "<p>tiny</p>"
	png := string(bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 2000))
	m := e.live(t, "a", site.Production, map[string]string{"index.html": page, "small.html": small, "img.png": png})
	f := m.Files["index.html"]
	if f.Gzip == nil || f.Brotli == nil {
		t.Fatalf("index.html has no variants: %+v", f)
	}
	if g := m.Files["small.html"]; g.Gzip != nil || g.Brotli != nil {
		t.Errorf("a file below the threshold got variants: %+v", g)
	}
	if g := m.Files["img.png"]; g.Gzip != nil || g.Brotli != nil {
		t.Errorf("an image got variants: %+v", g)
	}

	tests := []struct {
		accept   string
		encoding string
		etag     string
	}{
		{"", "", f.SHA256},
		{"gzip, deflate, br, zstd", "br", f.Brotli.SHA256},
		{"gzip", "gzip", f.Gzip.SHA256},
		{"br;q=0, gzip;q=0.5", "gzip", f.Gzip.SHA256},
		{"identity", "", f.SHA256},
		{"gzip;q=0, br;q=0", "", f.SHA256},
	}
	for _, tt := range tests {
		t.Run("Accept-Encoding "+tt.accept, func(t *testing.T) {
			rec := do(t, e.h, request{host: "a.test", target: "/", header: http.Header{"Accept-Encoding": {tt.accept}}})
			h := rec.Header()
			if rec.Code != 200 || h.Get("Content-Encoding") != tt.encoding {
				t.Fatalf("status %d, Content-Encoding %q, want 200 %q", rec.Code, h.Get("Content-Encoding"), tt.encoding)
			}
			if h.Get("Vary") != "Accept-Encoding" {
				t.Errorf("Vary = %q", h.Get("Vary"))
			}
			if h.Get("ETag") != `"`+tt.etag+`"` {
				t.Errorf("ETag = %q, want %q", h.Get("ETag"), tt.etag)
			}
			if got := decode(t, tt.encoding, rec.Body.Bytes()); got != page {
				t.Errorf("body decodes to %d bytes, want the %d-byte page", len(got), len(page))
			}
			if h.Get("Content-Length") != fmt.Sprint(rec.Body.Len()) {
				t.Errorf("Content-Length = %s, body %d", h.Get("Content-Length"), rec.Body.Len())
			}
			// The ETag revalidates only the representation it names.
			rec = do(t, e.h, request{host: "a.test", target: "/", header: http.Header{"Accept-Encoding": {tt.accept}, "If-None-Match": {h.Get("ETag")}}})
			if rec.Code != 304 {
				t.Errorf("revalidation = %d, want 304", rec.Code)
			}
		})
	}
	// Ranges count identity bytes: a compressed answer is whole.
	rec := do(t, e.h, request{host: "a.test", target: "/", header: http.Header{"Accept-Encoding": {"br"}, "Range": {"bytes=0-9"}}})
	if rec.Code != 200 || decode(t, "br", rec.Body.Bytes()) != page {
		t.Errorf("Range with br: %d, %d bytes; want the whole compressed page", rec.Code, rec.Body.Len())
	}
	rec = do(t, e.h, request{host: "a.test", target: "/", header: http.Header{"Range": {"bytes=0-9"}}})
	if rec.Code != 206 || rec.Body.String() != page[:10] {
		t.Errorf("Range without compression: %d %q", rec.Code, rec.Body)
	}
	if h := do(t, e.h, request{host: "a.test", target: "/img.png", header: http.Header{"Accept-Encoding": {"br"}}}).Header(); h.Get("Content-Encoding") != "" || h.Get("Vary") != "" {
		t.Errorf("image: Content-Encoding %q, Vary %q; want neither", h.Get("Content-Encoding"), h.Get("Vary"))
	}
	// A custom 404 page is compressed too.
	m404 := e.live(t, "b", site.Production, map[string]string{"404.html": page})
	rec = do(t, e.h, request{host: "b.test", target: "/nope", header: http.Header{"Accept-Encoding": {"gzip"}}})
	if rec.Code != 404 || rec.Header().Get("Content-Encoding") != "gzip" || decode(t, "gzip", rec.Body.Bytes()) != page || m404.Files["404.html"].Gzip == nil {
		t.Errorf("404 page: %d, Content-Encoding %q", rec.Code, rec.Header().Get("Content-Encoding"))
	}
}

func decode(t *testing.T, enc string, b []byte) string {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(r)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", enc, err)
	}
	return string(out)
}

func TestSkewProtection(t *testing.T) {
	skewSites := []serve.Site{{Name: "a", Domains: []string{"a.test"}, Skew: serve.SkewOptions{Deploys: 2, Grace: time.Hour}}}
	e := newEnvSites(t, time.Hour, true, skewSites)
	deploy := func(n int, ago time.Duration) {
		e.shift = -ago
		e.live(t, "a", site.Production, map[string]string{
			"index.html":                          fmt.Sprintf("page v%d", n),
			fmt.Sprintf("app.%08x.js", 0xa0+n):    fmt.Sprintf("app v%d", n),
			fmt.Sprintf("old-v%d.js", n):          "not fingerprinted",
			fmt.Sprintf("page.%08x.html", 0xa0+n): "html",
			"_redirects":                          "/* /index.html 200\n",
		})
		e.shift = 0
	}
	deploy(1, 3*time.Hour) // replaced 2 hours ago: past the grace period
	deploy(2, 2*time.Hour) // replaced 30 minutes ago
	deploy(3, 30*time.Minute)
	deploy(4, 10*time.Minute)
	deploy(5, 0)

	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/app.000000a5.js", 200, "app v5"},
		{"/app.000000a4.js", 200, "app v4"}, // previous deploy
		{"/app.000000a3.js", 200, "app v3"}, // two back: K = 2
		{"/app.000000a2.js", 404, ""},       // three back
		{"/app.000000a1.js", 404, ""},
		{"/old-v4.js", 404, ""},                 // not fingerprinted
		{"/page.000000a4.html", 200, "page v5"}, // HTML always from the live deploy (here: the SPA rule)
		{"/", 200, "page v5"},
	}
	for _, tt := range tests {
		rec := do(t, e.h, request{host: "a.test", target: tt.path})
		if rec.Code != tt.status || (tt.body != "" && rec.Body.String() != tt.body) {
			t.Errorf("%s = %d %q, want %d %q", tt.path, rec.Code, rec.Body, tt.status, tt.body)
		}
	}

	// Deploys replaced longer ago than the grace period are not served.
	e2 := newEnvSites(t, time.Hour, true, skewSites)
	e = e2
	deploy(1, 3*time.Hour)
	deploy(2, 90*time.Minute)
	deploy(3, 0)
	if code, _ := get(t, e.h, "a.test", "/app.000000a2.js"); code != 200 {
		t.Errorf("previous deploy's asset = %d, want 200", code)
	}
	if code, _ := get(t, e.h, "a.test", "/app.000000a1.js"); code != 404 {
		t.Errorf("asset of a deploy replaced 90 minutes ago = %d, want 404", code)
	}
}

func TestProxy(t *testing.T) {
	var hits atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/slow":
			time.Sleep(2 * time.Second)
		case "/big":
			w.Header().Set("Content-Length", "5000")
			w.Write(bytes.Repeat([]byte("x"), 5000)) //nolint:errcheck // the limit cuts the client off
			return
		case "/stream":
			w.(http.Flusher).Flush() // no Content-Length: the limit applies while copying
			for range 10 {
				w.Write(bytes.Repeat([]byte("y"), 1000)) //nolint:errcheck // the limit cuts the client off
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprintf(w, "%s %s?%s body=%s x-from=%s xff=%s hops=%s", r.Method, r.URL.Path, r.URL.RawQuery, body,
			r.Header.Get("X-From"), r.Header.Get("X-Forwarded-For"), r.Header.Get("Sitehost-Proxy-Hops"))
	}))
	defer upstream.Close()

	files := map[string]string{
		"index.html": "home",
		"_redirects": "/api/*  " + upstream.URL + "/:splat  200\n",
		"_headers":   "/*\n  X-Frame-Options: DENY\n",
		"netlify.toml": "[[redirects]]\nfrom = \"/h/*\"\nto = \"" + upstream.URL + "/h/:splat\"\nstatus = 200\n" +
			"[redirects.headers]\nX-From = \"sitehost\"\n",
	}
	opts := serve.RuleOptions{Proxy: true, ProxyPrivate: true, ProxyTimeout: 500 * time.Millisecond, ProxyMaxBytes: 4096}
	e := newEnvSites(t, time.Hour, true, []serve.Site{{Name: "a", Domains: []string{"a.test"}, Rules: opts}})
	e.live(t, "a", site.Production, files)

	rec := do(t, e.h, request{method: "POST", host: "a.test", target: "/api/v1/users?limit=5"})
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(body, "POST /v1/users?limit=5 body=") || !strings.Contains(body, "hops=1") {
		t.Fatalf("proxied = %d %q", rec.Code, body)
	}
	if !strings.Contains(body, "xff=192.0.2.1") { // httptest's client address
		t.Errorf("X-Forwarded-For not set: %q", body)
	}
	h := rec.Header()
	if h.Get("X-Upstream") != "1" || h.Get("Keep-Alive") != "" || h.Get("X-Frame-Options") != "" {
		t.Errorf("headers %v: want upstream's, without hop-by-hop ones or _headers", h)
	}
	if rec := do(t, e.h, request{host: "a.test", target: "/h/x"}); !strings.Contains(rec.Body.String(), "x-from=sitehost") {
		t.Errorf("netlify.toml proxy headers not sent: %q", rec.Body)
	}
	for _, tt := range []struct {
		target string
		status int
	}{
		{"/api/slow", 504},
		{"/api/big", 502},
	} {
		if rec := do(t, e.h, request{host: "a.test", target: tt.target}); rec.Code != tt.status {
			t.Errorf("%s = %d, want %d", tt.target, rec.Code, tt.status)
		}
	}
	if rec := do(t, e.h, request{host: "a.test", target: "/api/stream"}); rec.Body.Len() > 4096 {
		t.Errorf("streamed %d bytes past the 4096-byte limit", rec.Body.Len())
	}
	if rec := do(t, e.h, request{host: "a.test", target: "/api/x", header: http.Header{"Sitehost-Proxy-Hops": {"3"}}}); rec.Code != http.StatusLoopDetected {
		t.Errorf("looping proxy = %d, want 508", rec.Code)
	}

	// Without proxy_private the loopback upstream is refused, after DNS.
	before := hits.Load()
	opts.ProxyPrivate = false
	e = newEnvSites(t, time.Hour, true, []serve.Site{{Name: "a", Domains: []string{"a.test"}, Rules: opts}})
	e.live(t, "a", site.Production, files)
	if rec := do(t, e.h, request{host: "a.test", target: "/api/x"}); rec.Code != 502 {
		t.Errorf("proxy to loopback = %d, want 502", rec.Code)
	}
	localhost := strings.Replace(upstream.URL, "127.0.0.1", "localhost", 1)
	files["_redirects"] = "/api/*  " + localhost + "/:splat  200\n"
	e.live(t, "a", site.Production, files)
	if rec := do(t, e.h, request{host: "a.test", target: "/api/x"}); rec.Code != 502 {
		t.Errorf("proxy to localhost = %d, want 502", rec.Code)
	}
	if hits.Load() != before {
		t.Error("the private upstream was reached")
	}
}

// BenchmarkServeRules45000 serves from a deploy with Netlify's 45,000-rule
// fixture as its _redirects: a redirect near the end of the file, a file
// the rules do not touch, and a miss that every rule is checked against.
func BenchmarkServeRules45000(b *testing.B) {
	data, err := os.ReadFile("../../testdata/netlify/build/redirect-parser/fixtures/redirects_file/large_45000_redirects_file")
	if err != nil {
		b.Skipf("fixture: %v", err)
	}
	e := newEnvSites(b, time.Hour, true, ruleSites)
	e.live(b, "a", site.Production, map[string]string{
		"_redirects": string(data), "index.html": "<!doctype html><p>home</p>", "404.html": "not found",
	})
	for _, tt := range []struct {
		name, target string
		status       int
	}{
		{"redirect", "/base/some-44990", 301},
		{"file", "/", 200},
		{"miss", "/nothing/here", 404},
	} {
		b.Run(tt.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://a.test"+tt.target, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				if rec.Code != tt.status {
					b.Fatalf("status %d, want %d", rec.Code, tt.status)
				}
			}
		})
	}
}

// TestSetRoutes: a reloaded config reroutes at once — a changed domain
// answers, a removed site's hosts are unknown, and rule settings apply.
func TestSetRoutes(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{"index.html": "a home", "_redirects": "/api/* https://api.example.invalid/:splat 200\n/* /index.html 200\n"})
	e.live(t, "b", site.Production, map[string]string{"index.html": "b home"})
	if code, body := get(t, e.h, "a.test", "/api/x"); code != 200 || body != "a home" {
		t.Fatalf("before: %d %q (proxying is off)", code, body)
	}
	e.h.SetRoutes(mustRoutes(t, []serve.Site{{Name: "a", Domains: []string{"new.test"}, Rules: serve.RuleOptions{Proxy: true, ProxyTimeout: time.Second}}}))
	for _, tt := range []struct {
		host, path string
		status     int
	}{
		{"new.test", "/", 200},
		{"a.test", "/", 404},
		{"b.test", "/", 404},
		{"pr-1--b." + previewDomain, "/", 404},
		{"new.test", "/api/x", 502}, // proxying now on: api.example.invalid does not resolve
	} {
		if code, body := get(t, e.h, tt.host, tt.path); code != tt.status {
			t.Errorf("%s%s = %d %q, want %d", tt.host, tt.path, code, body, tt.status)
		}
	}
}
