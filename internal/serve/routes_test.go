package serve_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/preview"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
)

func TestResolve(t *testing.T) {
	rt := mustRoutes(t, sites)
	const id = site.DeployID("0123456789abcdef")
	for _, tt := range []struct {
		host string
		ok   bool
		want serve.Target
	}{
		{"a.test", true, serve.Target{Host: "a.test", Site: "a", Channel: site.Production}},
		{"b.test", true, serve.Target{Host: "b.test", Site: "b", Channel: site.Production}},
		{"www.a.test", true, serve.Target{Host: "www.a.test", Site: "a", Channel: site.Production, Alias: "a.test"}},
		{"a.example", true, serve.Target{Host: "a.example", Site: "a", Channel: site.Production, Alias: "a.test"}},
		{"pr-7--a." + previewDomain, true, serve.Target{Host: "pr-7--a." + previewDomain, Site: "a", Channel: "pr-7", Preview: true}},
		{"staging--b." + previewDomain, true, serve.Target{Host: "staging--b." + previewDomain, Site: "b", Channel: "branch-staging", Preview: true}},
		{preview.PermalinkHost(id, "a", previewDomain), true, serve.Target{Host: string(id) + "--a." + previewDomain, Site: "a", Deploy: id, Preview: true}},
		{"A.Test", true, serve.Target{Host: "a.test", Site: "a", Channel: site.Production}},
		{"a.test.", true, serve.Target{Host: "a.test", Site: "a", Channel: site.Production}},
		{"a.test:8080", true, serve.Target{Host: "a.test", Site: "a", Channel: site.Production}},
		{"WWW.A.TEST.:443", true, serve.Target{Host: "www.a.test", Site: "a", Channel: site.Production, Alias: "a.test"}},
		{"PR-7--A." + previewDomain + ".:80", true, serve.Target{Host: "pr-7--a." + previewDomain, Site: "a", Channel: "pr-7", Preview: true}},
		{"nobody.test", false, serve.Target{Host: "nobody.test"}},
		{"pr-7--c." + previewDomain, false, serve.Target{Host: "pr-7--c." + previewDomain}}, // no site c
		{"x.pr-7--a." + previewDomain, false, serve.Target{Host: "x.pr-7--a." + previewDomain}},
		{previewDomain, false, serve.Target{Host: previewDomain}},
		{"", false, serve.Target{}},
	} {
		t.Run(tt.host, func(t *testing.T) {
			got, ok := rt.Resolve(tt.host)
			if ok != tt.ok || got.Host != tt.want.Host || got.Site != tt.want.Site || got.Channel != tt.want.Channel ||
				got.Deploy != tt.want.Deploy || got.Alias != tt.want.Alias || got.Preview != tt.want.Preview {
				t.Errorf("Resolve(%q) = %+v, %v; want %+v, %v", tt.host, got, ok, tt.want, tt.ok)
			}
		})
	}
	var none *serve.Routes
	if _, ok := none.Resolve("a.test"); ok {
		t.Error("nil routes resolve a host")
	}
}

// TestNewRoutes: what cannot be routed is refused before anything is
// swapped in.
func TestNewRoutes(t *testing.T) {
	for _, tt := range []struct {
		name  string
		sites []serve.Site
	}{
		{"a domain on two sites", []serve.Site{{Name: "a", Domains: []string{"a.test"}}, {Name: "b", Domains: []string{"b.test", "A.test."}}}},
		{"a site twice", []serve.Site{{Name: "a", Domains: []string{"a.test"}}, {Name: "a", Domains: []string{"b.test"}}}},
		{"a bad name", []serve.Site{{Name: "A!", Domains: []string{"a.test"}}}},
		{"an empty domain", []serve.Site{{Name: "a", Domains: []string{""}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := serve.NewRoutes(tt.sites, previewDomain); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := serve.NewRoutes(nil, ""); err != nil {
		t.Errorf("no sites: %v", err)
	}
}

// TestTargetInContext: the serve handler reads the target Resolve put in
// the request's context; a pipeline without Resolve serves no site.
func TestTargetInContext(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{"index.html": "home"})
	var seen serve.Target
	peek := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen, _ = serve.TargetFrom(r.Context())
			next.ServeHTTP(w, r)
		})
	}
	h := e.h.Resolve(peek(e.h.Serve()))
	if code, body := get(t, h, "A.TEST.", "/"); code != 200 || body != "home" {
		t.Errorf("resolved: %d %q", code, body)
	}
	if seen.Site != "a" || seen.Host != "a.test" || seen.Channel != site.Production {
		t.Errorf("target in context: %+v", seen)
	}
	if code, _ := get(t, e.h.Serve(), "a.test", "/"); code != http.StatusNotFound {
		t.Errorf("serve without Resolve: %d, want 404", code)
	}
	if _, ok := serve.TargetFrom(context.Background()); ok {
		t.Error("a target in an empty context")
	}
}

// switchReader fails pointer and manifest reads while down is set; blobs
// keep opening, as from a warm blob cache.
type switchReader struct {
	serve.Reader
	down      atomic.Bool
	manifests atomic.Int64
	pointers  atomic.Int64
}

func (r *switchReader) Pointer(ctx context.Context, s site.Name, c site.Channel) (manifest.Pointer, error) {
	r.pointers.Add(1)
	if r.down.Load() {
		return manifest.Pointer{}, errStoreDown
	}
	return r.Reader.Pointer(ctx, s, c)
}

func (r *switchReader) Manifest(ctx context.Context, s site.Name, id site.DeployID) (*manifest.Manifest, error) {
	r.manifests.Add(1)
	if r.down.Load() {
		return nil, errStoreDown
	}
	return r.Reader.Manifest(ctx, s, id)
}

// TestSetRoutesStoreDown: with the store down, a reload that changes one
// site's settings keeps every cached page answering: the unchanged site
// from its compiled deploy, the changed one compiled again from its cached
// manifest, with the new settings; a removed site is gone.
func TestSetRoutesStoreDown(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{
		"index.html": "a home", "_redirects": "/api/* https://api.example.invalid/:splat 200\n/* /index.html 200\n",
	})
	mb := e.live(t, "b", site.Production, map[string]string{"index.html": "b home"})
	r := &switchReader{Reader: e.pub}
	three := append(sites[:2:2], serve.Site{Name: "c", Domains: []string{"c.test"}})
	h := serve.New(serve.Options{Routes: mustRoutes(t, three), Reader: r, PointerTTL: time.Hour})
	for host, want := range map[string]string{"a.test/api/x": "a home", "b.test/": "b home"} {
		host, path, _ := strings.Cut(host, "/")
		if code, body := get(t, h, host, "/"+path); code != 200 || body != want {
			t.Fatalf("%s/%s before: %d %q (proxying off)", host, path, code, body)
		}
	}
	permalink := preview.PermalinkHost(mb.ID, "b", previewDomain)
	if code, _ := get(t, h, permalink, "/"); code != 200 {
		t.Fatalf("permalink before: %d", code)
	}
	manifests := r.manifests.Load()

	r.down.Store(true)
	changed := []serve.Site{
		{Name: "a", Domains: sites[0].Domains, Rules: serve.RuleOptions{Proxy: true, ProxyTimeout: time.Second}},
		sites[1],
	}
	h.SetRoutes(mustRoutes(t, changed))
	h.Invalidate("b", site.Production) // the next request asks the store, which fails: the cached pointer serves
	for _, tt := range []struct {
		host, path string
		status     int
		body       string
	}{
		{"b.test", "/", 200, "b home"},
		{permalink, "/", 200, "b home"},
		{"a.test", "/", 200, "a home"},
		{"www.a.test", "/", 301, ""},
		{"a.test", "/api/x", 502, ""}, // proxying on now: api.example.invalid does not resolve
		{"c.test", "/", 404, ""},
	} {
		if code, body := get(t, h, tt.host, tt.path); code != tt.status || tt.body != "" && body != tt.body {
			t.Errorf("%s%s with the store down, after the reload: %d %q, want %d %q", tt.host, tt.path, code, body, tt.status, tt.body)
		}
	}
	if got := r.manifests.Load() - manifests; got != 0 {
		t.Errorf("the reload made the handler read %d manifests again", got)
	}
	if r.pointers.Load() == 0 {
		t.Error("the invalidated pointer was not asked for")
	}
}
