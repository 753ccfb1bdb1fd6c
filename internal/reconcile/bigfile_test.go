package reconcile_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/s3store"
)

// bigChildEnv names the repository a child process of
// TestBigFileMemory publishes from.
const bigChildEnv = "SITEHOST_BIGFILE_REPO"

// bigS3Env holds "endpoint bucket access-key secret-key" of the MinIO
// server a child publishes to; unset, it publishes to an fsstore.
const bigS3Env = "SITEHOST_BIGFILE_S3"

// bigSize is the file TestBigFileMemory publishes.
const bigSize = 1 << 30

// TestBigFileMemory publishes a 1 GiB file (build.tool none) and checks
// that the server's peak RSS grows by less than 100 MiB: the file streams
// from git to the store. The publish runs in a child process, so VmHWM
// measures it and nothing else; the file is zeros, which git compresses
// fast.
func TestBigFileMemory(t *testing.T) {
	if url := os.Getenv(bigChildEnv); url != "" {
		bigFileChild(t, url)
		return
	}
	if testing.Short() || raceEnabled {
		t.Skip("publishes 1 GiB; not under -short or -race (CI runs it without)")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status to read peak RSS from")
	}
	r := gittest.New(t, "")
	// Level 1: zeros deflate ~1000:1 at any level, the lowest is fastest.
	r.Git(r.Work, "config", "core.compression", "1")
	r.Git(r.Bare, "config", "core.compression", "1")
	r.Write("index.html", "<h1>big</h1>")
	big := filepath.Join(r.Work, "files", "big.bin")
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(bigSize) // sparse: costs no disk here
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	r.Commit("a big file")

	for _, kind := range []string{"fs", "s3"} {
		t.Run(kind, func(t *testing.T) {
			env := []string{bigChildEnv + "=" + r.URL(), "TMPDIR=" + t.TempDir()}
			if kind == "s3" {
				srv := miniotest.Start(t)
				env = append(env, bigS3Env+"="+strings.Join([]string{srv.Endpoint, srv.Bucket(t), srv.AccessKey, srv.SecretKey}, " "))
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestBigFileMemory$", "-test.v")
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			idle, peak := childFigure(t, out, "idle_kib"), childFigure(t, out, "peak_kib")
			t.Logf("publishing 1 GiB to %s: %d ms (fetch %d ms, upload %d ms); VmHWM %d MiB before, %d MiB after (+%d MiB)",
				kind, childFigure(t, out, "took_ms"), childFigure(t, out, "fetch_ms"), childFigure(t, out, "upload_ms"),
				idle>>10, peak>>10, (peak-idle)>>10)
			if grew := (peak - idle) << 10; grew > 100<<20 {
				t.Errorf("peak RSS grew by %d MiB publishing a 1 GiB file, want < 100 MiB", grew>>20)
			}
		})
	}
}

// bigFileChild publishes url's main and prints VmHWM before and after.
func bigFileChild(t *testing.T, url string) {
	var st store.Store
	if cfg := strings.Fields(os.Getenv(bigS3Env)); len(cfg) == 4 {
		s3, err := s3store.New(t.Context(), s3store.Options{Endpoint: cfg[0], Bucket: cfg[1], AccessKey: cfg[2], SecretKey: cfg[3]})
		if err != nil {
			t.Fatal(err)
		}
		st = s3
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f := newStoreFixture(t, reconcile.Spec{Repo: gitsrc.Options{URL: url}, MaxFile: 2 << 30}, 0, logger, st)
	runtime.GC()
	debug.FreeOSMemory()
	idle := vmHWM(t)
	start := time.Now()
	status := f.sync(t)
	took := time.Since(start)
	peak := vmHWM(t)
	if status.State != site.Synced {
		t.Fatalf("status %+v, want Synced", status)
	}
	m, err := f.pub.Manifest(t.Context(), "s", f.live(t).Deploy)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Files["files/big.bin"]; got.Size != bigSize {
		t.Fatalf("published %+v, want %d bytes", got, bigSize)
	}
	fmt.Printf("BIGFILE idle_kib=%d peak_kib=%d took_ms=%d fetch_ms=%d upload_ms=%d\n",
		idle, peak, took.Milliseconds(), m.Build.Fetch.Milliseconds(), m.Build.Upload.Milliseconds())
}

// vmHWM is this process's peak resident set in KiB.
func vmHWM(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// childFigure reads key=<n> from the child's BIGFILE line.
func childFigure(t *testing.T, out []byte, key string) int64 {
	t.Helper()
	for _, line := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(line, "BIGFILE ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			if v, ok := strings.CutPrefix(kv, key+"="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
	}
	t.Fatalf("child printed no %s:\n%s", key, out)
	return 0
}
