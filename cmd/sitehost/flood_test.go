package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/gittest"
)

// TestWebhookFlood: 1,000 signed push deliveries for one site in a few
// seconds — a forge redelivering, a busy monorepo, an attacker with a
// leaked secret — cause at most two builds, with goroutines and memory
// bounded, and the site ends on the pushed commit.
func TestWebhookFlood(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "<h1>one</h1>")
	repo.Commit("one")
	cfg := testConfig(t, t.TempDir(), `  - name: blog
    repo: `+repo.URL()+`
    domains: [blog.test]
    build: {tool: none}
    webhook: { secret_env: TEST_HOOK_SECRET }
`)
	srv := startServer(t, cfg, map[string]string{"TEST_HOOK_SECRET": testHookSecret})
	syncSite(t, srv, "blog")

	repo.Write("index.html", "<h1>two</h1>")
	head := repo.Commit("two")
	body, err := os.ReadFile("../../testdata/webhooks/github/push.branch-updated.woodpecker.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{"https://github.com/woodpecker-ci/woodpecker.git", "https://github.com/woodpecker-ci/woodpecker"} {
		body = bytes.ReplaceAll(body, []byte(old), []byte(repo.URL()))
	}
	body = bytes.ReplaceAll(body, []byte("366701fde727cb7a9e7f21eb88264f59f6f9b89c"), []byte(head))
	mac := hmac.New(sha256.New, []byte(testHookSecret))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))

	builds := srv.loop.Builds()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()
	var maxG atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			maxG.Store(max(maxG.Load(), int64(runtime.NumGoroutine())))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	const n, senders = 1000, 32
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}, Timeout: 30 * time.Second}
	url := "http://" + srv.adminLn.Addr().String() + "/hooks/github"
	var next atomic.Int64
	var accepted, other atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("flood-%d", i)) // all distinct: no dedup
				req.Header.Set("X-Hub-Signature-256", sig)
				resp, err := client.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					accepted.Add(1)
				} else {
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	st, err := srv.loop.Settle(t.Context(), "blog")
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)

	t.Logf("%d deliveries in %s (%d accepted, %d other); builds %d; goroutines %d → max %d; heap %d → %d KiB",
		n, took.Round(time.Millisecond), accepted.Load(), other.Load(), srv.loop.Builds()-builds,
		baseline, maxG.Load(), before.HeapAlloc>>10, after.HeapAlloc>>10)
	if accepted.Load() != n {
		t.Errorf("%d of %d deliveries accepted", accepted.Load(), n)
	}
	if b := srv.loop.Builds() - builds; b < 1 || b > 2 {
		t.Errorf("%d builds for one pushed commit, want 1 or 2", b)
	}
	if string(st.LiveCommit) != head {
		t.Errorf("live %s, want the pushed %s", st.LiveCommit, head[:7])
	}
	// Goroutines: the test's senders and their connections (a client
	// connection is two goroutines, a server one more), and a worker per
	// site — not one per delivery.
	if g := maxG.Load() - int64(baseline); g > 8*senders+50 {
		t.Errorf("goroutines grew by %d during the flood", g)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Errorf("heap grew by %d MiB", grew>>20)
	}
	if r := get(t, srv, "blog.test", "/"); !strings.Contains(r.body, "two") {
		t.Errorf("served %q", r.body)
	}
}
