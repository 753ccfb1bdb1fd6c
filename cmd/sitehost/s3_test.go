package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
)

// s3Env is the environment of a sitehost on MinIO.
func s3Env(m *miniotest.Server) map[string]string {
	return map[string]string{"S3_ACCESS_KEY": m.AccessKey, "S3_SECRET_KEY": m.SecretKey}
}

// s3Config is testConfig with the deploys in a bucket at endpoint.
func s3Config(t testing.TB, dataDir, endpoint, bucket, extra, sitesYAML string) *config.Config {
	t.Helper()
	return testConfig(t, dataDir, sitesYAML, fmt.Sprintf(`  storage:
    kind: s3
    s3: {endpoint: %q, bucket: %q}
%s`, endpoint, bucket, extra))
}

// toolNoneSite is a site published as it is: no Hugo, so these tests are
// about storage, and fast.
func toolNoneSite(repo string) string {
	return `  - name: blog
    repo: ` + repo + `
    domains: [blog.test]
    build: {tool: none}
`
}

// plainRepo makes a repository of n small HTML pages plus an index, each
// saying version v.
func plainRepo(t testing.TB, n int, v string) *gittest.Repo {
	t.Helper()
	dir := t.TempDir()
	writePages(t, dir, n, v)
	return gittest.New(t, dir)
}

func writePages(t testing.TB, dir string, n int, v string) {
	t.Helper()
	files := map[string]string{
		"index.html":       "<h1>home " + v + "</h1>",
		"about/index.html": "<h1>about " + v + "</h1>",
	}
	for i := range n {
		files[fmt.Sprintf("p/%04d.html", i)] = fmt.Sprintf("<p>page %d of %s</p>", i, v)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func blobExists(t *testing.T, c *minio.Client, bucket, body string) bool {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	_, err := c.StatObject(t.Context(), bucket, manifest.BlobKey(hex.EncodeToString(sum[:])), minio.StatObjectOptions{})
	return err == nil
}

func readPointer(t *testing.T, c *minio.Client, bucket string) manifest.Pointer {
	t.Helper()
	obj, err := c.GetObject(t.Context(), bucket, "sites/blog/channels/production.json", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	var p manifest.Pointer
	if err := json.NewDecoder(obj).Decode(&p); err != nil {
		t.Fatalf("reading the production pointer: %v", err)
	}
	return p
}

// TestS3 publishes to a real MinIO and serves from it: a second sitehost
// with an empty data_dir on the same bucket serves at once without
// building (disaster recovery), follows a new deploy by itself within the
// pointer TTL, and retention collects old deploys.
func TestS3(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	repo := plainRepo(t, 20, "v1")
	a := startServer(t, s3Config(t, t.TempDir(), m.Endpoint, bucket, "  retention: 1\n", toolNoneSite(repo.URL())), s3Env(m))
	syncSite(t, a, "blog")
	if got := get(t, a, "blog.test", "/about/"); got.status != 200 || got.body != "<h1>about v1</h1>" {
		t.Fatalf("A serves /about/: %d %q\n%s", got.status, got.body, status(t, a, "blog"))
	}

	// A second process, empty data_dir, same bucket.
	bData := t.TempDir()
	b := startServer(t, s3Config(t, bData, m.Endpoint, bucket, "", toolNoneSite(repo.URL())), s3Env(m))
	if got := get(t, b, "blog.test", "/p/0003.html"); got.status != 200 || got.body != "<p>page 3 of v1</p>" {
		t.Fatalf("B serves v1 at once: %d %q", got.status, got.body)
	}
	syncSite(t, b, "blog")
	if n := b.loop.Builds(); n != 0 {
		t.Errorf("B built %d times; the bucket's pointer already names the desired commit", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(bData, "cache", "blobs")); len(entries) == 0 {
		t.Errorf("B's disk cache is empty after serving")
	}

	// A publishes v2; B is not told, and serves it within its pointer TTL.
	writePages(t, repo.Work, 20, "v2")
	repo.Commit("v2")
	syncSite(t, a, "blog")
	start := time.Now()
	waitFor(t, func() bool { return get(t, b, "blog.test", "/").body == "<h1>home v2</h1>" })
	t.Logf("B served the new deploy %s after A published it", time.Since(start).Round(time.Millisecond))

	// v3, then retention 1 keeps v3 and its previous deploy (v2); v1 goes.
	v1 := readPointer(t, m.Client(t), bucket).History[1]
	writePages(t, repo.Work, 20, "v3")
	repo.Commit("v3")
	syncSite(t, a, "blog")
	ptr := readPointer(t, m.Client(t), bucket)
	if len(ptr.History) != 3 || ptr.History[2] != v1 {
		t.Fatalf("history = %v, want 3 deploys ending with v1 %s", ptr.History, v1)
	}
	st, err := openStore(t.Context(), a.cfg, func(k string) string { return s3Env(m)[k] }, a.log)
	if err != nil {
		t.Fatal(err)
	}
	gc := publish.New(st, publish.Options{Grace: time.Millisecond})
	time.Sleep(10 * time.Millisecond)
	stats, err := gc.GC(t.Context(), publish.GCOptions{Retention: 1})
	if err != nil {
		t.Fatal(err)
	}
	if stats.DeploysDeleted != 1 || stats.DeploysKept != 2 {
		t.Errorf("GC = %+v; want v1 deleted, v2 and v3 kept", stats)
	}
	client := m.Client(t)
	if blobExists(t, client, bucket, "<h1>home v1</h1>") || !blobExists(t, client, bucket, "<h1>home v2</h1>") {
		t.Errorf("after GC: v1's blobs must be gone and v2's kept")
	}
	waitFor(t, func() bool { return get(t, b, "blog.test", "/").body == "<h1>home v3</h1>" })
	if got := get(t, a, string(v1)+"--blog.localhost", "/"); got.status != 404 {
		t.Errorf("permalink of the collected deploy: %d, want 404", got.status)
	}
	if got := get(t, a, string(ptr.History[1])+"--blog.localhost", "/"); got.status != 200 || got.body != "<h1>home v2</h1>" {
		t.Errorf("permalink of the previous deploy: %d %q", got.status, got.body)
	}
}

// TestS3Outage stops MinIO under a serving sitehost: cached files keep
// serving, uncached ones answer 503, a publish fails as transient with the
// live deploy untouched, and succeeds by itself once MinIO is back.
func TestS3Outage(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	repo := plainRepo(t, 5, "v1")
	srv := startServer(t, s3Config(t, t.TempDir(), m.Endpoint, bucket, "", toolNoneSite(repo.URL())), s3Env(m))
	syncSite(t, srv, "blog")
	for _, p := range []string{"/", "/p/0001.html"} {
		if got := get(t, srv, "blog.test", p); got.status != 200 {
			t.Fatalf("%s before the outage: %d", p, got.status)
		}
	}

	m.Stop(t)
	time.Sleep(2500 * time.Millisecond) // past the pointer TTL: the next request asks the store
	for _, p := range []string{"/", "/p/0001.html"} {
		if got := get(t, srv, "blog.test", p); got.status != 200 || !strings.Contains(got.body, "v1") {
			t.Errorf("cached %s during the outage: %d %q, want 200", p, got.status, got.body)
		}
	}
	if got := get(t, srv, "blog.test", "/p/0002.html"); got.status != 503 {
		t.Errorf("uncached file during the outage: %d %q, want 503", got.status, got.body)
	}

	writePages(t, repo.Work, 5, "v2")
	c2 := repo.Commit("v2")
	if err := srv.loop.Trigger("blog"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		st, _ := srv.loop.SiteStatus("blog")
		return st.Error != ""
	})
	st, _ := srv.loop.SiteStatus("blog")
	t.Logf("status during the outage: %+v", st)
	if st.FailedAt != "" {
		t.Errorf("an outage is transient, yet the commit was marked failed: %+v", st)
	}
	if got := get(t, srv, "blog.test", "/"); got.body != "<h1>home v1</h1>" {
		t.Errorf("live deploy during a failed publish: %q", got.body)
	}

	m.Restart(t)
	waitFor(t, func() bool { return get(t, srv, "blog.test", "/").body == "<h1>home v2</h1>" })
	st, _ = srv.loop.SiteStatus("blog")
	if st.State != site.Synced || st.LiveCommit != site.Commit(c2) || st.Error != "" {
		t.Errorf("status after the outage: %+v, want Synced at %s", st, c2)
	}
	if got := get(t, srv, "blog.test", "/p/0002.html"); got.status != 200 || got.body != "<p>page 2 of v2</p>" {
		t.Errorf("after the outage: %d %q", got.status, got.body)
	}
}

// TestS3OutageReload: with MinIO down, config reloads that change one
// site — its build env, then its rule settings — keep every cached page of
// both sites answering 200. The data plane keeps what it has read
// (pointers, manifests, the compiled deploys of sites whose serving
// settings are the same) and compiles the changed site's deploy again from
// its cached manifest, so nothing needs the store.
func TestS3OutageReload(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	a, b := plainRepo(t, 3, "a1"), plainRepo(t, 3, "b1")
	// A rule that only matches once a country header is configured.
	a.Write("_redirects", "/de  /p/0001.html  200!  Country=de\n")
	a.Commit("a country rule")
	sitesYAML := func(aEnv, aRules string) string {
		return "  - name: a\n    repo: " + a.URL() + "\n    domains: [a.test]\n    build: {tool: none, env: {X: " + aEnv + "}}\n" + aRules +
			"  - name: b\n    repo: " + b.URL() + "\n    domains: [b.test]\n    build: {tool: none}\n"
	}
	cfg := s3Config(t, t.TempDir(), m.Endpoint, bucket, "", sitesYAML("one", ""))
	doc, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerUntil(t, cfg, s3Env(m), serverOptions{ConfigData: doc, ConfigPoll: time.Hour})
	srv := ts.server
	syncSite(t, srv, "a")
	syncSite(t, srv, "b")
	cached := map[string]string{ // host and path → what it says
		"a.test/": "home a1", "a.test/p/0001.html": "page 1 of a1",
		"b.test/": "home b1", "b.test/p/0001.html": "page 1 of b1",
	}
	expectCached := func(when string) {
		t.Helper()
		for hp, want := range cached {
			host, path, _ := strings.Cut(hp, "/")
			if got := get(t, srv, host, "/"+path); got.status != 200 || !strings.Contains(got.body, want) {
				t.Errorf("%s: %s: %d %q, want 200 %q", when, hp, got.status, got.body, want)
			}
		}
	}
	expectCached("before the outage")
	if got := get(t, srv, "a.test", "/de", "X-Country", "de"); got.status != 404 {
		t.Fatalf("country rule without a country header configured: %d, want 404", got.status)
	}

	m.Stop(t)
	reload := func(next string) {
		t.Helper()
		tmp := cfg.File + ".swp" // an editor's rename-save
		if err := os.WriteFile(tmp, []byte(next), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg.File); err != nil {
			t.Fatal(err)
		}
		want := fileVersion(cfg.File, []byte(next)).id
		waitFor(t, func() bool {
			c := srv.configState.get()
			if c.Refused != nil && c.Refused.Version == want {
				t.Fatalf("reload refused during the outage: %+v", c.Refused)
			}
			return c.Version == want
		})
	}

	// Site a's build env changes: its serving settings do not.
	reload(replaceSites(t, cfg.File, sitesYAML("two", "")))
	if !strings.Contains(ts.logs.String(), "config applied") {
		t.Error("the reload was not logged as applied")
	}
	expectCached("after a reload changing a's build env, MinIO down")

	// Site a's rule settings change: its deploy is compiled again, from the
	// manifest the data plane has, with the new settings.
	reload(replaceSites(t, cfg.File, sitesYAML("two", "    rules: {country_header: X-Country}\n")))
	expectCached("after a reload changing a's rules, MinIO down")
	if got := get(t, srv, "a.test", "/de", "X-Country", "de"); got.status != 200 || got.body != "<p>page 1 of a1</p>" {
		t.Errorf("country rule with the header configured, MinIO down: %d %q, want page 1", got.status, got.body)
	}
	if got := get(t, srv, "b.test", "/p/0002.html"); got.status != 503 {
		t.Errorf("uncached file during the outage: %d %q, want 503", got.status, got.body)
	}
}

// slowProxy forwards TCP connections to target, optionally sleeping before
// each chunk the client sends: a slow link to the object store.
type slowProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds
	wg     sync.WaitGroup
}

func newSlowProxy(t *testing.T, target string) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *slowProxy) Addr() string { return p.ln.Addr().String() }

func (p *slowProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer up.Close()
			go func() { io.Copy(c, up); c.Close() }() //nolint:errcheck // a proxy
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					time.Sleep(time.Duration(p.delay.Load()))
					if _, werr := up.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// triggerSync asks a server's admin API to sync, and returns at once.
func triggerSync(t *testing.T, admin string) {
	t.Helper()
	if code := postJSON(t, "http://"+admin+"/api/v1/sites/blog/sync", testToken, `{}`); code != 202 && code != 200 {
		t.Fatalf("sync: %d", code)
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
