package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
)

// TestSIGTERMDrains stops a real sitehost process with SIGTERM: /readyz
// fails at once while the site still answers 200 through
// server.shutdown_delay, then the process drains and exits 0.
func TestSIGTERMDrains(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "<h1>one</h1>")
	repo.Commit("one")
	httpAddr, adminAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "sites.yaml")
	// The delay is long only so that a slow machine still asks within it.
	doc := fmt.Sprintf(`server:
  data_dir: %q
  http: %q
  admin: %q
  poll_interval: 0s
  api_token_env: TEST_TOKEN
  shutdown_delay: 8s
sites:
  - name: a
    repo: %s
    domains: [a.test]
    build: {tool: none}
`, t.TempDir(), httpAddr, adminAddr, repo.URL())
	if err := os.WriteFile(cfgPath, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, cfgPath, httpAddr, nil)
	readyz := func() int {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, func() bool { code, _ := p.get("a.test", "/"); return code == 200 && readyz() == 200 })
	// The image's HEALTHCHECK.
	if err := cmdHealthcheck(t.Context(), []string{"--addr", adminAddr}, io.Discard); err != nil {
		t.Errorf("healthcheck: %v", err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return readyz() == http.StatusServiceUnavailable })
	if err := cmdHealthcheck(t.Context(), []string{"--addr", adminAddr, "--path", "/readyz"}, io.Discard); err == nil {
		t.Error("healthcheck --path /readyz passed while shutting down")
	}
	for range 3 {
		if code, body := p.get("a.test", "/"); code != 200 || body != "<h1>one</h1>" {
			t.Errorf("during the shutdown delay: %d %q, want 200", code, body)
		}
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v, want 0\n%s", err, p.out)
	}
	if code, _ := p.get("a.test", "/"); code != 0 {
		t.Errorf("still answering after exit: %d", code)
	}
}
