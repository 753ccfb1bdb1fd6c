package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/config"
)

// TestMain lets the test binary play the build child and the git shim, as
// the real binary does: the builder re-executes os.Executable().
func TestMain(m *testing.M) {
	if code, ok := child(os.Args); ok {
		os.Exit(code)
	}
	// Tests that kill sitehost run the test binary as the real one.
	if os.Getenv("SITEHOST_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testConfig writes a sites.yaml for one site on loopback :0 listeners;
// serverYAML adds lines to the server block. A stopping test server drains
// at once (shutdown_delay 0s): nothing balances load in front of it.
func testConfig(t testing.TB, dataDir, sitesYAML string, serverYAML ...string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	doc := fmt.Sprintf(`server:
  data_dir: %q
  http: "127.0.0.1:0"
  admin: "127.0.0.1:0"
  preview_domain: localhost
  poll_interval: 0s
  api_token_env: TEST_TOKEN
  shutdown_delay: 0s
%ssites:
%s`, dataDir, strings.Join(serverYAML, ""), sitesYAML)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("test config: %v\n%s", err, doc)
	}
	return cfg
}

const testToken = "test-token-0123456789abcdef012345"

// startServer runs a server until the test ends.
func startServer(t testing.TB, cfg *config.Config, env map[string]string) *server {
	t.Helper()
	return startServerWith(t, cfg, env, serverOptions{})
}

// startServerWith is startServer with options.
func startServerWith(t testing.TB, cfg *config.Config, env map[string]string, opts serverOptions) *server {
	t.Helper()
	return startServerUntil(t, cfg, env, opts).server
}

// testServer is a server a test can stop before it ends (a restart).
type testServer struct {
	*server
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
	logs     *syncBuffer // everything the server logged
}

// stop shuts the server down and waits for it.
func (s *testServer) stop(t testing.TB) {
	s.stopOnce.Do(func() {
		s.cancel()
		if err := <-s.done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
}

func startServerUntil(t testing.TB, cfg *config.Config, env map[string]string, opts serverOptions) *testServer {
	t.Helper()
	getenv := func(k string) string {
		if k == "TEST_TOKEN" {
			return testToken
		}
		return env[k]
	}
	opts.Getenv = getenv
	logs := &syncBuffer{}
	// Every line the server logs, at any level, has each key once.
	kc := newKeyChecker(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts.Logger = slog.New(kc)
	t.Cleanup(func() { // after the server's stop, registered below
		for _, line := range kc.repeated() {
			t.Errorf("log line repeats a key: %s", line)
		}
	})
	srv, err := newServer(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{server: srv, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { ts.done <- srv.run(ctx) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type response struct {
	status int
	header http.Header
	body   string
}

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// get requests path from the server's HTTP listener with the given Host.
func get(t testing.TB, srv *server, host, path string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.httpLn.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(body)}
}

// storeContains reports whether any stored object holds needle.
func storeContains(t testing.TB, root, needle string) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), needle) {
			found = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
