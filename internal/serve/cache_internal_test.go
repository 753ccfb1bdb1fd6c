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
	if _, err := pub.Activate(t.Context(), "a", site.Production, m, ""); err != nil {
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
