package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/miniotest"
)

// sitehostProcess is sitehost running as its own process (the test binary
// in SITEHOST_TEST_MAIN mode), so a test can SIGKILL it.
type sitehostProcess struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	http string
}

func startProcess(t *testing.T, cfgPath, httpAddr string, env map[string]string) *sitehostProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "-c", cfgPath)
	cmd.Env = append(os.Environ(), "SITEHOST_TEST_MAIN=1", "TEST_TOKEN="+testToken)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sitehostProcess{cmd: cmd, out: out, http: httpAddr}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *sitehostProcess) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill() //nolint:errcheck // already gone is fine
		p.cmd.Wait()         //nolint:errcheck // killed
	}
}

// get fetches path on host from the process; status 0 when it is not up.
func (p *sitehostProcess) get(host, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.http+path, nil)
	req.Host = host
	resp, err := noRedirects.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body) //nolint:errcheck // compared by the caller
	return resp.StatusCode, b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestS3KillDuringUpload kills sitehost with SIGKILL halfway through
// uploading a deploy: the live deploy stays intact and serving, and after a
// restart sitehost converges on the new commit.
func TestS3KillDuringUpload(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	proxy := newSlowProxy(t, m.Endpoint)
	const pages = 300
	repo := plainRepo(t, pages, "v1")

	httpAddr, adminAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "sites.yaml")
	doc := fmt.Sprintf(`server:
  data_dir: %q
  http: %q
  admin: %q
  poll_interval: 0s
  api_token_env: TEST_TOKEN
  storage:
    kind: s3
    s3: {endpoint: %q, bucket: %q}
sites:
%s`, t.TempDir(), httpAddr, adminAddr, proxy.Addr(), bucket, toolNoneSite(repo.URL()))
	if err := os.WriteFile(cfgPath, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, cfgPath, httpAddr, s3Env(m))
	waitFor(t, func() bool { code, body := p.get("blog.test", "/"); return code == 200 && body == "<h1>home v1</h1>" })
	client := m.Client(t)
	live := readPointer(t, client, bucket)

	// v2 changes every page; the link to MinIO turns slow, so the upload
	// takes seconds, and sitehost dies once part of it is stored.
	writePages(t, repo.Work, pages, "v2")
	repo.Commit("v2")
	proxy.delay.Store(int64(20 * time.Millisecond))
	triggerSync(t, adminAddr)
	waitFor(t, func() bool {
		return blobExists(t, client, bucket, "<p>page 0 of v2</p>") || blobExists(t, client, bucket, fmt.Sprintf("<p>page %d of v2</p>", pages-1))
	})
	p.kill()
	uploaded := 0
	for i := range pages {
		if blobExists(t, client, bucket, fmt.Sprintf("<p>page %d of v2</p>", i)) {
			uploaded++
		}
	}
	t.Logf("killed with %d of %d new blobs uploaded", uploaded, pages)
	if uploaded == pages {
		t.Fatalf("the upload finished before the kill; the test proves nothing\n%s", p.out)
	}

	// Nothing half-published is live: the pointer, its manifest and every
	// blob it names are as before.
	if got := readPointer(t, client, bucket); got.Deploy != live.Deploy {
		t.Fatalf("pointer moved to %s during a killed upload (was %s)", got.Deploy, live.Deploy)
	}
	obj, err := client.GetObject(t.Context(), bucket, "sites/blog/deploys/"+string(live.Deploy)+".json", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var man manifest.Manifest
	if err := jsonDecode(obj, &man); err != nil {
		t.Fatalf("live manifest: %v", err)
	}
	for name, f := range man.Files {
		if _, err := client.StatObject(t.Context(), bucket, manifest.BlobKey(f.SHA256), minio.StatObjectOptions{}); err != nil {
			t.Errorf("live file %s: blob missing: %v", name, err)
		}
	}

	// Restart: the live deploy serves at once, then the new commit lands.
	proxy.delay.Store(0)
	p = startProcess(t, cfgPath, httpAddr, s3Env(m))
	waitFor(t, func() bool { code, _ := p.get("blog.test", "/"); return code == 200 })
	waitFor(t, func() bool { _, body := p.get("blog.test", "/"); return body == "<h1>home v2</h1>" })
	for _, i := range []int{0, pages / 2, pages - 1} {
		if code, body := p.get("blog.test", fmt.Sprintf("/p/%04d.html", i)); code != 200 || !strings.Contains(body, "of v2") {
			t.Errorf("page %d after restart: %d %q", i, code, body)
		}
	}
}
