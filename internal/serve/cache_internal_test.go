package serve

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// TestPointerCacheBounded: requests for made-up preview hosts must not grow
// the pointer cache without bound, and must not evict a live channel.
func TestPointerCacheBounded(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := publish.New(st, publish.Options{})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _, err := pub.Upload(t.Context(), publish.Deploy{Site: "a", BuildKey: strings.Repeat("ab", 32), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Activate(t.Context(), "a", site.Production, m, publish.Cause{Kind: manifest.Built}); err != nil {
		t.Fatal(err)
	}
	rt, err := NewRoutes([]Site{{Name: "a", Domains: []string{"a.test"}}}, "preview.test")
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Routes: rt, Reader: pub, PointerTTL: time.Hour})
	status := func(host string) int {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil))
		return rec.Code
	}

	if got := status("a.test"); got != http.StatusOK {
		t.Fatalf("production: %d", got)
	}
	for i := 1; i <= maxPointers+100; i++ {
		if got := status(fmt.Sprintf("pr-%d--a.preview.test", i)); got != http.StatusNotFound {
			t.Fatalf("pr-%d: %d, want 404", i, got)
		}
	}
	h.mu.Lock()
	n := len(h.pointers)
	_, live := h.pointers[pointerKey{"a", site.Production}]
	h.mu.Unlock()
	if n > maxPointers {
		t.Errorf("pointer cache holds %d entries, want at most %d", n, maxPointers)
	}
	if !live {
		t.Error("the live production pointer was evicted for unknown previews")
	}
}

// TestSetRoutesKeepsCompiled: a reload keeps the compiled deploy of a site
// whose settings did not change (the very same rule indexes), keeps a
// changed site's manifest to compile again, and drops what a removed site
// had.
func TestSetRoutesKeepsCompiled(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub := publish.New(st, publish.Options{})
	for _, name := range []site.Name{"a", "b", "c"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("home "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "_redirects"), []byte("/old /new 301\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		m, _, err := pub.Upload(t.Context(), publish.Deploy{Site: name, BuildKey: strings.Repeat(string(name), 64), Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Activate(t.Context(), name, site.Production, m, publish.Cause{Kind: manifest.Built}); err != nil {
			t.Fatal(err)
		}
	}
	routes := func(aProxy bool, names ...site.Name) *Routes {
		var sites []Site
		for _, n := range names {
			s := Site{Name: n, Domains: []string{string(n) + ".test"}}
			if n == "a" {
				s.Rules.Proxy = aProxy
			}
			sites = append(sites, s)
		}
		rt, err := NewRoutes(sites, "preview.test")
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	h := New(Options{Routes: routes(false, "a", "b", "c"), Reader: pub, PointerTTL: time.Hour})
	for _, host := range []string{"a.test", "b.test", "c.test"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", host, rec.Code)
		}
	}
	cached := func(s site.Name) *deploy {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, d := range h.deploys {
			if d.m.Site == s {
				return d
			}
		}
		return nil
	}
	a, b := cached("a"), cached("b")

	h.SetRoutes(routes(true, "a", "b"))
	rt := h.routes.Load()
	if got := cached("b"); got == nil || got.redirects != b.redirects || got.site != rt.sites["b"] {
		t.Errorf("unchanged site b: cached %+v; want the deploy compiled before (rules %p), bound to the new settings", got, b.redirects)
	}
	if got := cached("a"); got == nil || got.m != a.m || got.site == rt.sites["a"] {
		t.Errorf("changed site a: cached %+v; want its manifest kept, compiled for the old settings until asked for", got)
	}
	if cached("c") != nil {
		t.Error("removed site c: its deploy is still cached")
	}
	h.mu.Lock()
	_, ptrC := h.pointers[pointerKey{"c", site.Production}]
	_, ptrA := h.pointers[pointerKey{"a", site.Production}]
	h.mu.Unlock()
	if ptrC || !ptrA {
		t.Errorf("pointers after the reload: c cached %v (want false), a cached %v (want true)", ptrC, ptrA)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://a.test/", nil))
	if got := cached("a"); rec.Code != http.StatusOK || got == nil || got.site != rt.sites["a"] || got.m != a.m {
		t.Errorf("changed site a after a request: %d, cached %+v; want compiled for the new settings from the same manifest", rec.Code, got)
	}
}
