// Package miniotest runs a real MinIO server for tests: one process per
// Start, on a free loopback port, with its own data folder and credentials.
// Stop and Restart simulate an outage that ends with the data intact.
// Tests only.
//
// The server binary is not a Go dependency of this module; install it with
//
//	go install github.com/minio/minio@latest
//
// or point $SITEHOST_MINIO at a binary. Without one, Start skips the test,
// except in CI (CI=true), where a skipped test would prove nothing.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// readyTimeout bounds how long a start may take; a cold start on a slow
	// CI machine takes a few seconds, so this only catches a hung server.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds the wait for a killed server's port to close.
	stopTimeout = 10 * time.Second
	// bindAttempts: a free port found by listening on :0 can be taken by
	// someone else before MinIO binds it, so Start retries with a new one.
	bindAttempts = 3
	// logTail is how much server output is kept for failure messages.
	logTail = 32 << 10

	installHint = "install it with `go install github.com/minio/minio@latest`, or set SITEHOST_MINIO to its path"
)

// Binary finds the minio server: $SITEHOST_MINIO if set, else minio on PATH,
// else minio in $GOPATH/bin (default ~/go/bin), where go install puts it.
// It returns "" if there is none.
func Binary() string {
	if p := os.Getenv("SITEHOST_MINIO"); p != "" {
		return p
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	var dirs []string
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		dirs = filepath.SplitList(gopath)
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = []string{filepath.Join(home, "go")}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "bin", "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Server is a MinIO server on a free loopback port with its own data folder.
type Server struct {
	Endpoint  string // "127.0.0.1:PORT"
	AccessKey string
	SecretKey string

	bin   string
	data  string // object data; kept across Restart
	certs string // empty certs folder, so ~/.minio/certs never turns on TLS
	port  int
	logs  *tailBuffer

	mu   sync.Mutex
	proc *process // nil while stopped

	buckets atomic.Int64

	clientOnce sync.Once
	client     *minio.Client
	clientErr  error
}

// process is one run of the server binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// Start starts a server and registers its shutdown with t.Cleanup. Without a
// server binary it skips the test, or fails it when CI is "true".
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("miniotest: the minio server is required in CI: " + installHint)
		}
		t.Skip("miniotest: no minio server binary: " + installHint)
	}
	base := t.TempDir()
	s := &Server{
		AccessKey: "sitehost-" + randomHex(t, 4),
		SecretKey: randomHex(t, 16),
		bin:       bin,
		data:      filepath.Join(base, "data"),
		certs:     filepath.Join(base, "certs"),
		logs:      &tailBuffer{max: logTail},
	}
	for _, dir := range []string{s.data, s.certs} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatalf("miniotest: creating %s: %v", dir, err)
		}
	}
	// Registered after TempDir, so it runs first: the server is dead before
	// its folder is removed.
	t.Cleanup(s.kill)

	var lastErr error
	for range bindAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("miniotest: finding a free port: %v", err)
		}
		s.port = port
		s.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		lastErr = s.run(t.Context())
		if lastErr == nil {
			return s
		}
		s.kill()
		if !strings.Contains(s.logs.String(), "already in use") {
			break
		}
	}
	t.Fatalf("miniotest: starting %s: %v\n--- server log tail ---\n%s", s.bin, lastErr, s.logs.String())
	return nil
}

// Stop kills the server, as an outage would (SIGKILL, no clean shutdown),
// and waits until it has exited and its port refuses connections.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
	deadline := time.Now().Add(stopTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.Endpoint, time.Second)
		if err != nil {
			return
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("miniotest: %s still accepts connections %v after the server was killed", s.Endpoint, stopTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts the server again on the same port with the same data, as
// when an outage ends, and waits until it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		t.Fatal("miniotest: Restart of a running server; call Stop first")
	}
	if err := s.run(t.Context()); err != nil {
		s.kill()
		t.Fatalf("miniotest: restarting on %s: %v\n--- server log tail ---\n%s", s.Endpoint, err, s.logs.String())
	}
}

// Bucket creates a bucket with a new name and returns the name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	// A counter keeps names unique within the server; the random part
	// makes a name from another test run stand out in logs.
	name := fmt.Sprintf("t-%d-%s", s.buckets.Add(1), randomHex(t, 4))
	if err := s.Client(t).MakeBucket(t.Context(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("miniotest: creating bucket %s: %v", name, err)
	}
	return name
}

// Client returns a minio-go client for the server. It is shared by all
// callers of this Server.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	s.clientOnce.Do(func() {
		s.client, s.clientErr = minio.New(s.Endpoint, &minio.Options{
			Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
			// A fixed region saves the bucket-location request before
			// the first call on each bucket.
			Region: "us-east-1",
		})
	})
	if s.clientErr != nil {
		t.Fatalf("miniotest: creating client: %v", s.clientErr)
	}
	return s.client
}

// run starts the binary on s.port and waits until it serves requests.
func (s *Server) run(ctx context.Context) error {
	consolePort, err := freePort()
	if err != nil {
		return fmt.Errorf("finding a free console port: %w", err)
	}
	cmd := exec.Command(s.bin, "server", s.data,
		"--address", s.Endpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)),
		"--certs-dir", s.certs,
		"--quiet",
	)
	cmd.Env = append(environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		// CI/CD mode lets the data folder live on the root drive, which
		// MinIO refuses otherwise.
		"MINIO_CI_CD=1",
	)
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	setDeathSignal(cmd)
	fmt.Fprintf(s.logs, "--- miniotest: starting on %s ---\n", s.Endpoint)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return s.waitReady(ctx, p)
}

// waitReady polls the liveness endpoint until the server answers 200 with
// its object layer up: MinIO answers before that, flagged "offline", and
// S3 calls would get 503 meanwhile.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + s.Endpoint + "/minio/health/live"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("checking health: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("server exited before it was ready: %w", p.err)
		case <-ctx.Done():
			return fmt.Errorf("server not ready after %v: %w", readyTimeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill ends the running process, if any, and waits for it to exit.
func (s *Server) kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// environ is the parent's environment without MINIO_ variables, which could
// change how the server runs (volumes, credentials, TLS).
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort asks the kernel for a free loopback port. The port is released
// before use, so another process may take it first; callers retry.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("miniotest: reading random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last max bytes written to it (roughly: it trims in
// batches), so a chatty server cannot fill memory.
type tailBuffer struct {
	max int
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > b.max {
		return "…" + string(b.buf[len(b.buf)-b.max:])
	}
	return string(b.buf)
}
