package hugorelease_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/hugorelease"
)

const waitingMsg = "waiting for another process fetching hugo"

// onLog is a slog handler calling f with each message.
type onLog func(msg string)

func (f onLog) Enabled(context.Context, slog.Level) bool { return true }
func (f onLog) Handle(_ context.Context, r slog.Record) error {
	f(r.Message)
	return nil
}
func (f onLog) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f onLog) WithGroup(string) slog.Handler      { return f }

// flockFile takes the lock another process fetching version v would hold.
func flockFile(t *testing.T, dir, v string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".lock-"+v), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestWaitsForAnotherProcess: while another process holds a version's
// lock (it is fetching it), a Store asks the mirror nothing; when the
// other finishes, it uses what that one fetched.
func TestWaitsForAnotherProcess(t *testing.T) {
	const v = "0.152.2"
	m, url := newMirror(t, v, release(t, "#!hugo 0.152.2", true), "")
	other := t.TempDir() // what the other process fetches, before it renames it in
	if _, err := store(t, url, other).Hugo(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	m.requests.Store(0)

	dir := t.TempDir()
	lock := flockFile(t, dir, v)
	requested := make(chan string, 8)
	m.setHook(func(p string) { requested <- p })
	waiting := make(chan struct{}, 1)
	s := storeLog(t, url, dir, slog.New(onLog(func(msg string) {
		if msg == waitingMsg {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
	})))
	type result struct {
		b   hugorelease.Binary
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := s.Hugo(context.Background(), v)
		done <- result{b, err}
	}()
	select {
	case <-waiting:
	case p := <-requested:
		t.Fatalf("asked the mirror for %s while another process held the lock", p)
	case r := <-done:
		t.Fatalf("returned while another process held the lock: %+v, %v", r.b, r.err)
	}
	if err := os.Rename(filepath.Join(other, v), filepath.Join(dir, v)); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	r := <-done
	if r.err != nil || r.b.Fetched || r.b.Path != filepath.Join(dir, v, "hugo") {
		t.Errorf("after the other process: %+v, %v; want its release", r.b, r.err)
	}
	if n := m.requests.Load(); n != 0 {
		t.Errorf("%d requests to the mirror, want none", n)
	}
}

// TestFetchAcrossProcesses: three processes (this test binary, run again)
// asking for the same release at once on one Dir fetch it once. The
// mirror holds the tarball back until each process has either asked for
// the checksums file or is waiting for the lock, so without the lock all
// three would fetch.
func TestFetchAcrossProcesses(t *testing.T) {
	if url := os.Getenv("HUGORELEASE_TEST_URL"); url != "" {
		s := storeLog(t, url, os.Getenv("HUGORELEASE_TEST_DIR"), slog.New(slog.NewTextHandler(os.Stderr, nil)))
		b, err := s.Hugo(context.Background(), os.Getenv("HUGORELEASE_TEST_VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("path=%s fetched=%v\n", b.Path, b.Fetched)
		return
	}
	const v, n = "0.152.2", 3
	m, url := newMirror(t, v, release(t, "#!hugo 0.152.2", true), "")
	var (
		started  atomic.Int32 // asked for the checksums file or waiting
		unblock  = make(chan struct{})
		goOnce   sync.Once
		letGo    = func() { goOnce.Do(func() { close(unblock) }) }
		progress = func() {
			if started.Add(1) >= n {
				letGo()
			}
		}
	)
	m.setHook(func(p string) {
		switch {
		case strings.HasSuffix(p, "_checksums.txt"):
			progress()
		case strings.HasSuffix(p, ".tar.gz"):
			<-unblock
		}
	})
	dir := t.TempDir()
	outs := make([]strings.Builder, n)
	errs := make([]strings.Builder, n)
	var wg sync.WaitGroup
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFetchAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HUGORELEASE_TEST_URL="+url, "HUGORELEASE_TEST_DIR="+dir, "HUGORELEASE_TEST_VERSION="+v)
		cmd.Stdout = &outs[i]
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				errs[i].WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), waitingMsg) {
					progress()
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("process %d: %v\n%s\n%s", i, err, &outs[i], &errs[i])
			}
			letGo() // a process that ended early must not hold up the others
		})
	}
	wg.Wait()
	fetched := 0
	for i := range n {
		if !strings.Contains(outs[i].String(), "path="+filepath.Join(dir, v, "hugo")+" ") {
			t.Errorf("process %d: %s", i, &outs[i])
		}
		if strings.Contains(outs[i].String(), "fetched=true") {
			fetched++
		}
	}
	if fetched != 1 || m.requests.Load() != 2 {
		t.Errorf("fetched by %d processes with %d requests, want by one with 2 (checksums, tarball)", fetched, m.requests.Load())
	}
	if data, err := os.ReadFile(filepath.Join(dir, v, "hugo")); err != nil || string(data) != "#!hugo 0.152.2" {
		t.Errorf("binary: %q, %v", data, err)
	}
}

// TestBrokenCacheFetchedAgain: a cached release whose binary is missing or
// truncated, or whose record is missing or from before sizes were
// recorded, is fetched again rather than returned.
func TestBrokenCacheFetchedAgain(t *testing.T) {
	const v = "0.152.2"
	for _, tt := range []struct {
		name   string
		damage func(dir string) error
	}{
		{"truncated", func(dir string) error { return os.Truncate(filepath.Join(dir, "hugo"), 3) }},
		{"binary missing", func(dir string) error { return os.Remove(filepath.Join(dir, "hugo")) }},
		{"record missing", func(dir string) error { return os.Remove(filepath.Join(dir, "sha256")) }},
		{"record from before sizes", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "sha256"), []byte(strings.Repeat("a", 64)), 0o644)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, url := newMirror(t, v, release(t, "#!hugo 0.152.2", true), "")
			dir := t.TempDir()
			s := store(t, url, dir)
			b, err := s.Hugo(context.Background(), v)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(filepath.Join(dir, v)); err != nil {
				t.Fatal(err)
			}
			b2, err := s.Hugo(context.Background(), v)
			if err != nil || !b2.Fetched || b2.Path != b.Path || b2.SHA256 != b.SHA256 {
				t.Fatalf("after breaking the cache: %+v, %v; want fetched again", b2, err)
			}
			if data, err := os.ReadFile(b2.Path); err != nil || string(data) != "#!hugo 0.152.2" {
				t.Errorf("binary: %q, %v", data, err)
			}
			if n := m.requests.Load(); n != 4 {
				t.Errorf("%d requests, want 4 (two fetches)", n)
			}
			if got := names(t, dir); !slices.Equal(got, []string{v}) {
				t.Errorf("cache holds %v, want only %s", got, v)
			}
		})
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestEvict: the cache keeps the MaxVersions releases used last.
func TestEvict(t *testing.T) {
	var vs []string
	for i := range hugorelease.MaxVersions + 1 {
		vs = append(vs, fmt.Sprintf("0.150.%d", i))
	}
	m, url := newMirror(t, vs[0], release(t, "#!hugo "+vs[0], true), "")
	for _, v := range vs[1:] {
		m.add(v, release(t, "#!hugo "+v, true), "")
	}
	dir := t.TempDir()
	s := store(t, url, dir)
	use := func(v string, fetched bool) {
		t.Helper()
		if b, err := s.Hugo(context.Background(), v); err != nil || b.Fetched != fetched {
			t.Fatalf("v%s: %+v, %v; want fetched=%v", v, b, err, fetched)
		}
	}
	for _, v := range vs[:hugorelease.MaxVersions] {
		use(v, true)
	}
	use(vs[0], false) // now used after vs[1]
	if got := names(t, dir); !slices.Equal(got, vs[:hugorelease.MaxVersions]) {
		t.Fatalf("cache holds %v before the bound is reached", got)
	}
	use(vs[hugorelease.MaxVersions], true)
	want := slices.Concat(vs[:1], vs[2:])
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Errorf("cache holds %v, want %v (v%s, the least recently used, removed)", got, want, vs[1])
	}
	use(vs[1], true) // fetched again when asked for
	use(vs[0], false)
}

// TestSweep: New removes what crashed fetches left, older than an hour,
// but not a fetch still running (its version's lock is held) nor a
// release.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{".fetch-0.150.0-111", ".fetch-0.150.1-old-222", ".fetch-0.150.2-333", ".fetch-0.150.3-444", "0.150.4"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "hugo"), []byte("#!hugo"), 0o755); err != nil {
			t.Fatal(err)
		}
		if name != ".fetch-0.150.2-333" {
			if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	lock := flockFile(t, dir, "0.150.3") // still fetching, slowly
	defer lock.Close()
	if _, err := hugorelease.New(hugorelease.Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	want := []string{".fetch-0.150.2-333", ".fetch-0.150.3-444", ".lock-0.150.3", "0.150.4"}
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Errorf("after New: %v, want %v", got, want)
	}
}

// TestInstalledMeanwhile: where flock does not exclude (some network
// filesystems), another process may install the release while this one
// fetches it. Its whole release is kept, not replaced, and is the answer.
func TestInstalledMeanwhile(t *testing.T) {
	const v = "0.152.2"
	m, url := newMirror(t, v, release(t, "#!hugo 0.152.2", true), "")
	other := t.TempDir()
	if _, err := store(t, url, other).Hugo(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	theirs, err := os.Stat(filepath.Join(other, v, "hugo"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var once sync.Once
	m.setHook(func(p string) {
		if strings.HasSuffix(p, ".tar.gz") {
			once.Do(func() {
				if err := os.Rename(filepath.Join(other, v), filepath.Join(dir, v)); err != nil {
					t.Error(err)
				}
			})
		}
	})
	b, err := store(t, url, dir).Hugo(context.Background(), v)
	if err != nil || b.Fetched {
		t.Fatalf("%+v, %v; want the other process's release", b, err)
	}
	if fi, err := os.Stat(b.Path); err != nil || !os.SameFile(fi, theirs) {
		t.Errorf("%s is not the other process's binary: %v", b.Path, err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{v}) {
		t.Errorf("cache holds %v, want only %s", got, v)
	}
}
