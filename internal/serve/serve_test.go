package serve_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/preview"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

var (
	_ serve.Reader = (*publish.Publisher)(nil)
	_ serve.Reader = (*manifest.Reader)(nil)
)

const previewDomain = "preview.test"

var sites = []serve.Site{
	{Name: "a", Domains: []string{"a.test", "www.a.test", "a.example"}},
	{Name: "b", Domains: []string{"b.test"}},
}

// mustRoutes routes withSites, previews under previewDomain.
func mustRoutes(tb testing.TB, withSites []serve.Site) *serve.Routes {
	tb.Helper()
	rt, err := serve.NewRoutes(withSites, previewDomain)
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

// env is a publisher on a real fsstore and a handler reading from it.
type env struct {
	pub *publish.Publisher
	h   *serve.Handler
	n   int // deploys so far, for distinct build keys
	// shift moves the publisher's clock, to publish "an hour ago".
	shift time.Duration
}

// newEnv builds an env. With invalidate, activations drop the handler's
// cached pointer at once, as cmd/sitehost wires it; otherwise only the
// PointerTTL refreshes it.
func newEnv(tb testing.TB, ttl time.Duration, invalidate bool) *env {
	tb.Helper()
	return newEnvSites(tb, ttl, invalidate, sites)
}

// newEnvSites is newEnv serving withSites.
func newEnvSites(tb testing.TB, ttl time.Duration, invalidate bool, withSites []serve.Site) *env {
	tb.Helper()
	st, err := fsstore.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{}
	var onActivated func(site.Name, site.Channel)
	if invalidate {
		onActivated = func(s site.Name, c site.Channel) { e.h.Invalidate(s, c) }
	}
	e.pub = publish.New(st, publish.Options{OnChanged: onActivated, Now: func() time.Time { return e.now() }})
	e.h = serve.New(serve.Options{Routes: mustRoutes(tb, withSites), Reader: e.pub, PointerTTL: ttl})
	return e
}

// now is the publisher's clock: real time, or shifted by e.shift.
func (e *env) now() time.Time { return time.Now().Add(e.shift) }

// deploy uploads files as a new deploy of s, without activating it.
func (e *env) deploy(tb testing.TB, s site.Name, files map[string]string) *manifest.Manifest {
	tb.Helper()
	dir := tb.TempDir()
	var toml []byte
	for name, body := range files {
		if name == "netlify.toml" {
			toml = []byte(body) // from the repository, not the output
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	e.n++
	m, _, err := e.pub.Upload(context.Background(), publish.Deploy{
		Site: s, Commit: commit(e.n), BuildKey: sha(fmt.Sprint(s, e.n)), Dir: dir, NetlifyTOML: toml,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func (e *env) activate(tb testing.TB, s site.Name, c site.Channel, m *manifest.Manifest) {
	tb.Helper()
	if _, err := e.pub.Activate(context.Background(), s, c, m, built(m.Commit)); err != nil {
		tb.Fatal(err)
	}
}

// live deploys files to channel c of s.
func (e *env) live(tb testing.TB, s site.Name, c site.Channel, files map[string]string) *manifest.Manifest {
	tb.Helper()
	m := e.deploy(tb, s, files)
	e.activate(tb, s, c, m)
	return m
}

func commit(n int) site.Commit { return site.Commit(fmt.Sprintf("%040x", n)) }

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// request is one request to the handler.
type request struct {
	method string // default GET
	host   string
	target string // path and query
	tls    bool
	header http.Header
}

func do(tb testing.TB, h http.Handler, r request) *httptest.ResponseRecorder {
	tb.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	req := httptest.NewRequest(r.method, "http://"+r.host+r.target, nil)
	if r.tls {
		req.TLS = &tls.ConnectionState{}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// get fetches target from host and returns status and body.
func get(tb testing.TB, h http.Handler, host, target string) (int, string) {
	tb.Helper()
	rec := do(tb, h, request{host: host, target: target})
	return rec.Code, rec.Body.String()
}

// waitFor polls fn until it reports true, failing after a generous deadline.
func waitFor(tb testing.TB, what string, fn func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHostRouting(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	old := e.live(t, "a", site.Production, map[string]string{"index.html": "a v1", "x": "x v1"})
	e.live(t, "a", site.Production, map[string]string{"index.html": "a v2", "x": "x v2"})
	other := e.live(t, "b", site.Production, map[string]string{"index.html": "b"})

	tests := []struct {
		name         string
		req          request
		wantStatus   int
		wantBody     string // substring
		wantLocation string
		wantNoindex  bool
	}{
		{name: "primary domain", req: request{host: "a.test", target: "/"}, wantStatus: 200, wantBody: "a v2"},
		{name: "second site", req: request{host: "b.test", target: "/"}, wantStatus: 200, wantBody: "b"},
		{name: "alias keeps path, query and port", req: request{host: "www.a.test:8080", target: "/x?y=1"},
			wantStatus: 301, wantLocation: "http://a.test:8080/x?y=1"},
		{name: "alias without port", req: request{host: "a.example", target: "/x"},
			wantStatus: 301, wantLocation: "http://a.test/x"},
		{name: "alias over TLS", req: request{host: "www.a.test", target: "/x?y=1", tls: true},
			wantStatus: 301, wantLocation: "https://a.test/x?y=1"},
		{name: "alias with escaped path", req: request{host: "www.a.test", target: "/a%20b/%3F"},
			wantStatus: 301, wantLocation: "http://a.test/a%20b/%3F"},
		{name: "upper case host", req: request{host: "A.TEST", target: "/"}, wantStatus: 200, wantBody: "a v2"},
		{name: "trailing dot", req: request{host: "a.test.", target: "/"}, wantStatus: 200, wantBody: "a v2"},
		{name: "port", req: request{host: "a.test:8080", target: "/"}, wantStatus: 200, wantBody: "a v2"},
		{name: "all at once", req: request{host: "A.Test.:8443", target: "/"}, wantStatus: 200, wantBody: "a v2"},
		{name: "unknown host", req: request{host: "nope.test", target: "/"},
			wantStatus: 404, wantBody: serve.NoSiteBody},
		{name: "subdomain of a site", req: request{host: "x.a.test", target: "/"},
			wantStatus: 404, wantBody: serve.NoSiteBody},
		{name: "permalink of an older deploy", req: request{host: preview.PermalinkHost(old.ID, "a", previewDomain), target: "/"},
			wantStatus: 200, wantBody: "a v1", wantNoindex: true},
		{name: "permalink with port and upper case", req: request{host: strings.ToUpper(preview.PermalinkHost(old.ID, "a", previewDomain)) + ":8080", target: "/x"},
			wantStatus: 200, wantBody: "x v1", wantNoindex: true},
		{name: "permalink of another site's deploy", req: request{host: preview.PermalinkHost(other.ID, "a", previewDomain), target: "/"},
			wantStatus: 404, wantNoindex: true},
		{name: "permalink of no deploy", req: request{host: preview.PermalinkHost("0123456789abcdef", "a", previewDomain), target: "/"},
			wantStatus: 404, wantNoindex: true},
		{name: "preview of an unknown site", req: request{host: "pr-1--zzz." + previewDomain, target: "/"},
			wantStatus: 404, wantBody: serve.NoSiteBody},
		{name: "preview domain itself", req: request{host: previewDomain, target: "/"},
			wantStatus: 404, wantBody: serve.NoSiteBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, e.h, tt.req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", rec.Code, tt.wantStatus, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", rec.Body, tt.wantBody)
			}
			if got := rec.Header().Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
			if got := rec.Header().Get("X-Robots-Tag"); (got == "noindex") != tt.wantNoindex {
				t.Errorf("X-Robots-Tag = %q, want noindex: %v", got, tt.wantNoindex)
			}
			if tt.wantStatus == 404 && tt.wantBody != "" {
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("unknown host answered Content-Type %q, want plain text", ct)
				}
			}
		})
	}
}

// TestPreviewChannels: a preview host answers 404 until its channel exists,
// then serves it with noindex.
func TestPreviewChannels(t *testing.T) {
	tests := []struct {
		name    string
		channel site.Channel
		host    string
	}{
		{"pull request", site.PullRequest(7), "pr-7--a." + previewDomain},
		{"branch", site.Branch("Feature/Login"), "feature-login--a." + previewDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, time.Hour, true)
			e.live(t, "a", site.Production, map[string]string{"index.html": "production"})
			if host := preview.ChannelHost(tt.channel, "a", previewDomain); host != tt.host {
				t.Fatalf("ChannelHost = %q, want %q", host, tt.host)
			}
			if code, body := get(t, e.h, tt.host, "/"); code != http.StatusNotFound {
				t.Fatalf("before the channel exists: %d %q, want 404", code, body)
			}
			e.live(t, "a", tt.channel, map[string]string{"index.html": "preview"})
			rec := do(t, e.h, request{host: tt.host, target: "/"})
			if rec.Code != http.StatusOK || rec.Body.String() != "preview" {
				t.Fatalf("after activation: %d %q, want 200 \"preview\"", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("X-Robots-Tag"); got != "noindex" {
				t.Errorf("X-Robots-Tag = %q, want noindex", got)
			}
			if code, body := get(t, e.h, "pr-8--a."+previewDomain, "/"); code != http.StatusNotFound {
				t.Errorf("another pull request: %d %q, want 404", code, body)
			}
			rec = do(t, e.h, request{host: "a.test", target: "/"})
			if rec.Body.String() != "production" || rec.Header().Get("X-Robots-Tag") != "" {
				t.Errorf("production: %q with X-Robots-Tag %q, want its own deploy and no X-Robots-Tag", rec.Body, rec.Header().Get("X-Robots-Tag"))
			}
		})
	}
}

func TestPaths(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{
		"index.html":      "home",
		"a/index.html":    "section a",
		"about.html":      "about",
		"docs.html":       "docs page",
		"docs/index.html": "docs section",
		"b.txt":           "bee",
		"sp ace/ü.txt":    "unicode",
		".git/config":     "[core] secret", // never published
		"404.html":        "<h1>custom not found</h1>",
	})
	e.live(t, "b", site.Production, map[string]string{"index.html": "b home"})

	tests := []struct {
		name         string
		host         string
		method       string
		target       string
		wantStatus   int
		wantBody     string
		wantLocation string
		wantType     string // prefix
	}{
		{"root is index.html", "a.test", "", "/", 200, "home", "", "text/html"},
		{"index.html by name", "a.test", "", "/index.html", 200, "home", "", "text/html"},
		{"folder with slash", "a.test", "", "/a/", 200, "section a", "", "text/html"},
		{"folder without slash redirects", "a.test", "", "/a", 301, "", "/a/", ""},
		{"redirect keeps the query", "a.test", "", "/a?x=1&y=2", 301, "", "/a/?x=1&y=2", ""},
		{"pretty URL of a page", "a.test", "", "/about", 200, "about", "", "text/html"},
		{"page by name", "a.test", "", "/about.html", 200, "about", "", "text/html"},
		{"folder wins over page", "a.test", "", "/docs", 301, "", "/docs/", ""},
		{"page with a slash redirects", "a.test", "", "/about/?x=1", 301, "", "/about?x=1", ""},
		{"dot-dot cleaned", "a.test", "", "/a/../b.txt", 200, "bee", "", "text/plain"},
		{"escaped dot-dot cleaned", "a.test", "", "/a/%2e%2e/b.txt", 200, "bee", "", "text/plain"},
		{"dot-dot above the root", "a.test", "", "/../../b.txt", 200, "bee", "", "text/plain"},
		{"escaped space and unicode", "a.test", "", "/sp%20ace/%C3%BC.txt", 200, "unicode", "", "text/plain"},
		{"git metadata", "a.test", "", "/.git/config", 404, "<h1>custom not found</h1>", "", "text/html"},
		{"missing file", "a.test", "", "/missing", 404, "<h1>custom not found</h1>", "", "text/html"},
		{"missing folder", "a.test", "", "/nope/", 404, "<h1>custom not found</h1>", "", "text/html"},
		{"case matters", "a.test", "", "/B.txt", 404, "<h1>custom not found</h1>", "", "text/html"},
		{"no 404.html", "b.test", "", "/missing", 404, "404 page not found\n", "", "text/plain"},
		{"HEAD", "a.test", "HEAD", "/", 200, "", "", "text/html"},
		{"HEAD of a miss", "a.test", "HEAD", "/missing", 404, "", "", "text/html"},
		{"POST", "a.test", "POST", "/", 405, "405 method not allowed\n", "", "text/plain"},
		{"DELETE", "a.test", "DELETE", "/b.txt", 405, "405 method not allowed\n", "", "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, e.h, request{method: tt.method, host: tt.host, target: tt.target})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus != 301 && rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body, tt.wantBody)
			}
			if got := rec.Header().Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
			if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s…", got, tt.wantType)
			}
			if tt.method == "HEAD" && rec.Header().Get("Content-Length") == "" {
				t.Error("HEAD answered without Content-Length")
			}
			if tt.wantStatus == 405 && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q, want \"GET, HEAD\"", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	const css = "body { color: rebeccapurple }"
	hash64 := sha("style")
	files := map[string]string{
		"index.html":                       "<p>home</p>",
		"style.css":                        css,
		"app.3f2a9c1b.js":                  "app()",
		"css/style.min." + hash64 + ".css": "a{}",
		"img/logo.png":                     "png",
		"img/photo-20240115.jpg":           "a dated photo, not a fingerprint",
		"page.3f2a9c1b.html":               "<p>html is always revalidated</p>",
		"vendor-0123456789abcdef0123.js":   "vendor()",
		"img/icon.svg":                     "<svg/>",
	}
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, files)

	t.Run("ETag and Content-Type", func(t *testing.T) {
		rec := do(t, e.h, request{host: "a.test", target: "/style.css"})
		if want := `"` + sha(css) + `"`; rec.Header().Get("ETag") != want {
			t.Errorf("ETag = %q, want %q", rec.Header().Get("ETag"), want)
		}
		if got := rec.Header().Get("Content-Type"); got != "text/css; charset=utf-8" {
			t.Errorf("Content-Type = %q", got)
		}
		if got := rec.Header().Get("Content-Length"); got != fmt.Sprint(len(css)) {
			t.Errorf("Content-Length = %q, want %d", got, len(css))
		}
	})

	conditional := []struct {
		name       string
		header     http.Header
		wantStatus int
		wantBody   string
	}{
		{"If-None-Match matches", http.Header{"If-None-Match": {`"` + sha(css) + `"`}}, 304, ""},
		{"If-None-Match among others", http.Header{"If-None-Match": {`"x", "` + sha(css) + `"`}}, 304, ""},
		{"If-None-Match differs", http.Header{"If-None-Match": {`"` + sha("old") + `"`}}, 200, css},
		{"Range", http.Header{"Range": {"bytes=2-5"}}, 206, css[2:6]},
		{"Range suffix", http.Header{"Range": {"bytes=-4"}}, 206, css[len(css)-4:]},
		{"Range not satisfiable", http.Header{"Range": {"bytes=1000-"}}, 416, ""},
	}
	for _, tt := range conditional {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, e.h, request{host: "a.test", target: "/style.css", header: tt.header})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantStatus != 416 && rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body, tt.wantBody)
			}
			if tt.wantStatus == 206 {
				if got := rec.Header().Get("Content-Range"); !strings.HasSuffix(got, fmt.Sprintf("/%d", len(css))) {
					t.Errorf("Content-Range = %q", got)
				}
			}
		})
	}

	const (
		revalidate = "public, max-age=0, must-revalidate"
		immutable  = "public, max-age=31536000, immutable"
	)
	cache := []struct {
		path string
		want string
	}{
		{"/", revalidate},
		{"/style.css", revalidate},
		{"/app.3f2a9c1b.js", immutable},
		{"/css/style.min." + hash64 + ".css", immutable},
		{"/vendor-0123456789abcdef0123.js", immutable},
		{"/img/logo.png", revalidate},
		{"/img/icon.svg", revalidate},
		{"/img/photo-20240115.jpg", revalidate},
		{"/page.3f2a9c1b.html", revalidate},
	}
	for _, tt := range cache {
		t.Run("Cache-Control "+tt.path, func(t *testing.T) {
			rec := do(t, e.h, request{host: "a.test", target: tt.path})
			if got := rec.Header().Get("Cache-Control"); got != tt.want {
				t.Errorf("Cache-Control = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestOverHTTP runs a few requests through a real server and client.
func TestOverHTTP(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{"index.html": "hello over http", "a/index.html": "a"})
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		name         string
		host         string
		path         string
		header       http.Header
		wantStatus   int
		wantBody     string
		wantLocation string
	}{
		{"page", "a.test", "/", nil, 200, "hello over http", ""},
		{"range", "a.test", "/", http.Header{"Range": {"bytes=6-9"}}, 206, "over", ""},
		{"folder redirect", "a.test", "/a?q=1", nil, 301, "", "/a/?q=1"},
		{"alias", "www.a.test:8080", "/x?y=1", nil, 301, "", "http://a.test:8080/x?y=1"},
		{"unknown host", "nope.test", "/", nil, 404, "no site is served at this host\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != 301 && !strings.HasSuffix(string(body), tt.wantBody) {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			if got := resp.Header.Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
		})
	}
}

// TestPointerCache: after an activation the handler serves the old deploy
// until Invalidate is called or the PointerTTL has passed.
func TestPointerCache(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		refresh func(h *serve.Handler) // nil: wait for the TTL
	}{
		{"Invalidate", time.Hour, func(h *serve.Handler) { h.Invalidate("a", site.Production) }},
		{"PointerTTL", 50 * time.Millisecond, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.ttl, false)
			e.live(t, "a", site.Production, map[string]string{"index.html": "v1"})
			if _, body := get(t, e.h, "a.test", "/"); body != "v1" {
				t.Fatalf("body = %q, want v1", body)
			}
			e.live(t, "a", site.Production, map[string]string{"index.html": "v2"})
			if tt.refresh == nil {
				waitFor(t, "the TTL to pick up v2", func() bool {
					_, body := get(t, e.h, "a.test", "/")
					if body != "v1" && body != "v2" {
						t.Fatalf("body = %q, want v1 or v2", body)
					}
					return body == "v2"
				})
				return
			}
			if _, body := get(t, e.h, "a.test", "/"); body != "v1" {
				t.Errorf("before Invalidate: body = %q, want the cached v1", body)
			}
			e.h.Invalidate("a", site.PullRequest(1)) // another channel: no effect
			if _, body := get(t, e.h, "a.test", "/"); body != "v1" {
				t.Errorf("after invalidating another channel: body = %q, want v1", body)
			}
			tt.refresh(e.h)
			if _, body := get(t, e.h, "a.test", "/"); body != "v2" {
				t.Errorf("after Invalidate: body = %q, want v2", body)
			}
		})
	}
}

// flakyReader is a Reader whose Pointer fails, as an unreachable store
// would, after the first ok calls.
type flakyReader struct {
	serve.Reader
	ok int

	mu              sync.Mutex
	calls, failures int
}

var errStoreDown = errors.New("store: connection refused")

func (r *flakyReader) Pointer(ctx context.Context, s site.Name, c site.Channel) (manifest.Pointer, error) {
	r.mu.Lock()
	r.calls++
	fail := r.calls > r.ok
	if fail {
		r.failures++
	}
	r.mu.Unlock()
	if fail {
		return manifest.Pointer{}, errStoreDown
	}
	return r.Reader.Pointer(ctx, s, c)
}

func (r *flakyReader) failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures
}

// TestStoreOutage: a handler that has served a channel keeps serving it
// while pointers cannot be read; a cold one answers 503, never 404.
func TestStoreOutage(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	m := e.live(t, "a", site.Production, map[string]string{"index.html": "still here"})

	t.Run("warm handler keeps serving", func(t *testing.T) {
		fr := &flakyReader{Reader: e.pub, ok: 1}
		h := serve.New(serve.Options{Routes: mustRoutes(t, sites), Reader: fr, PointerTTL: 10 * time.Millisecond})
		expect := func(when string) {
			t.Helper()
			if code, body := get(t, h, "a.test", "/"); code != http.StatusOK || body != "still here" {
				t.Fatalf("%s: %d %q, want 200 \"still here\"", when, code, body)
			}
		}
		expect("store up")
		waitFor(t, "a failed pointer refresh", func() bool {
			expect("store down")
			return fr.failed() >= 2
		})
		before := fr.failed()
		h.Invalidate("a", site.Production)
		expect("store down, after Invalidate")
		if fr.failed() == before {
			t.Error("Invalidate did not make the handler try the store again")
		}
	})

	t.Run("cold handler answers 503", func(t *testing.T) {
		fr := &flakyReader{Reader: e.pub}
		h := serve.New(serve.Options{Routes: mustRoutes(t, sites), Reader: fr})
		if code, body := get(t, h, "a.test", "/"); code != http.StatusServiceUnavailable {
			t.Errorf("production: %d %q, want 503", code, body)
		}
		if code, body := get(t, h, "pr-1--a."+previewDomain, "/"); code != http.StatusServiceUnavailable {
			t.Errorf("preview: %d %q, want 503", code, body)
		}
		// A permalink needs no pointer.
		if code, body := get(t, h, preview.PermalinkHost(m.ID, "a", previewDomain), "/"); code != http.StatusOK || body != "still here" {
			t.Errorf("permalink: %d %q, want 200", code, body)
		}
	})
}

func BenchmarkServeHTML(b *testing.B) {
	e := newEnv(b, time.Hour, true)
	e.live(b, "a", site.Production, map[string]string{"index.html": "<!doctype html><title>bench</title><p>hello</p>"})
	req := httptest.NewRequest(http.MethodGet, "http://a.test/", nil)
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkServeParallel(b *testing.B) {
	e := newEnv(b, time.Hour, true)
	e.live(b, "a", site.Production, map[string]string{"index.html": "<!doctype html><title>bench</title><p>hello</p>"})
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://a.test/", nil)
		for pb.Next() {
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
	})
}

// gateReader blocks the Pointer call number block until release is closed.
type gateReader struct {
	serve.Reader
	block   int
	blocked chan struct{} // closed when that call starts waiting
	release chan struct{}
	done    chan struct{} // closed when that call returns

	mu    sync.Mutex
	calls int
}

func (r *gateReader) Pointer(ctx context.Context, s site.Name, c site.Channel) (manifest.Pointer, error) {
	r.mu.Lock()
	r.calls++
	n := r.calls
	r.mu.Unlock()
	ptr, err := r.Reader.Pointer(ctx, s, c)
	if n == r.block {
		// Read, then hang: the answer is old by the time it arrives.
		close(r.blocked)
		<-r.release
		defer close(r.done)
	}
	return ptr, err
}

// getUnblocked GETs a.test/ while a store read hangs, and fails with
// hanging if the request waits for that read.
func getUnblocked(t *testing.T, h http.Handler, hanging string) string {
	t.Helper()
	done := make(chan string, 1)
	go func() { _, body := get(t, h, "a.test", "/"); done <- body }()
	select {
	case body := <-done:
		return body
	case <-time.After(30 * time.Second):
		t.Fatal(hanging)
		return ""
	}
}

// TestPointerRefresh: past half the TTL a request is answered from the
// cached pointer while the store is read in the background; a read that was
// in flight when the pointer was invalidated is neither shared with later
// requests nor cached.
func TestPointerRefresh(t *testing.T) {
	e := newEnv(t, time.Hour, false)
	e.live(t, "a", site.Production, map[string]string{"index.html": "v1"})
	gr := &gateReader{Reader: e.pub, block: 2, blocked: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	const ttl = 400 * time.Millisecond
	h := serve.New(serve.Options{Routes: mustRoutes(t, sites), Reader: gr, PointerTTL: ttl})
	if _, body := get(t, h, "a.test", "/"); body != "v1" {
		t.Fatalf("first request: %q", body)
	}
	time.Sleep(ttl / 2)
	// The second read blocks; the request does not wait for it.
	if body := getUnblocked(t, h, "a request past half the TTL waited for the store"); body != "v1" {
		t.Errorf("request during a background refresh: %q, want v1", body)
	}
	<-gr.blocked

	// A new deploy goes live while that read (of the old pointer) hangs.
	e.live(t, "a", site.Production, map[string]string{"index.html": "v2"})
	h.Invalidate("a", site.Production)
	if body := getUnblocked(t, h, "a request after Invalidate joined the read that started before it"); body != "v2" {
		t.Errorf("after Invalidate, with an older read in flight: %q, want v2", body)
	}
	close(gr.release)
	<-gr.done
	// The old read has returned v1 to its flight; it must not be cached.
	for range 20 {
		time.Sleep(5 * time.Millisecond)
		if _, body := get(t, h, "a.test", "/"); body != "v2" {
			t.Fatalf("the old read was cached: %q, want v2", body)
		}
	}
}

// built is the cause of publishing a deploy just built from c.
func built(c site.Commit) publish.Cause { return publish.Cause{Kind: manifest.Built, Commit: c} }
