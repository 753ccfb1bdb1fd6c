package watch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// waitFor bounds every wait for something that should happen; it is
	// long because a loaded 2-core CI machine running -race is slow, and
	// it only costs time when a test fails.
	waitFor = 5 * time.Second
	// testDebounce is short to keep tests quick where they don't count
	// calls across a multi-step write.
	testDebounce = 50 * time.Millisecond
)

// syncBuffer is a log sink Run's goroutine writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) count(substr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), substr)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runner is one Run on its own goroutine.
type runner struct {
	changes chan []byte
	logs    *syncBuffer
	cancel  context.CancelFunc
	done    chan error

	stopOnce sync.Once
	err      error
}

// start runs Run and returns once its watch is in place; Run is stopped
// and must have returned nil by the end of the test.
func start(t *testing.T, opts Options, initial []byte) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{
		changes: make(chan []byte, 64),
		logs:    &syncBuffer{},
		cancel:  cancel,
		done:    make(chan error, 1),
	}
	opts.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ready := make(chan struct{})
	opts.ready = func() { close(ready) }
	go func() {
		r.done <- Run(ctx, opts, initial, func(b []byte) { r.changes <- b })
	}()
	t.Cleanup(func() {
		if err := r.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("watch log:\n%s", r.logs)
		}
	})
	select {
	case <-ready:
	case err := <-r.done:
		r.done <- err // for stop
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(waitFor):
		t.Fatal("Run not ready")
	}
	return r
}

// stop cancels Run and returns its error.
func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(waitFor):
			r.err = errors.New("Run did not return after cancel")
		}
	})
	return r.err
}

// expect waits for the next onChange and checks its bytes.
func (r *runner) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-r.changes:
		if string(got) != want {
			t.Fatalf("onChange(%q), want onChange(%q)", got, want)
		}
	case <-time.After(waitFor):
		t.Fatalf("no onChange(%q) within %v", want, waitFor)
	}
}

// nothingBefore writes content with save and checks it is the next
// onChange: any onChange still due for earlier writes would come first,
// since onChange calls are made one at a time, in order. The caller
// makes sure earlier writes were read (expect, waitLog) so that they
// cannot merge with this one.
func (r *runner) nothingBefore(t *testing.T, save func(t *testing.T, path, content string), path, content string) {
	t.Helper()
	save(t, path, content)
	r.expect(t, content)
}

// waitLog waits until the log holds more than n lines containing substr.
func (r *runner) waitLog(t *testing.T, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for r.logs.count(substr) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q within %v", substr, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveInPlace is os.WriteFile: truncate, then write, in the same inode.
func saveInPlace(t *testing.T, path, content string) {
	t.Helper()
	writeFile(t, path, content)
}

// saveRename is vim's and most editors' atomic save: write a temporary
// file next to the target, rename it over.
func saveRename(t *testing.T, path, content string) {
	t.Helper()
	writeFile(t, path+".tmp", content)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// saveBackup is the backup-and-replace dance: move the file to a "~"
// backup, write a new file, drop the backup.
func saveBackup(t *testing.T, path, content string) {
	t.Helper()
	if err := os.Rename(path, path+"~"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, content)
	if err := os.Remove(path + "~"); err != nil {
		t.Fatal(err)
	}
}

var saves = []struct {
	name string
	save func(t *testing.T, path, content string)
}{
	{"in place", saveInPlace},
	{"rename over", saveRename},
	{"backup and replace", saveBackup},
}

func TestSaveReportsOnceAndKeepsWorking(t *testing.T) {
	t.Parallel()
	for _, tc := range saves {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sites.yaml")
			writeFile(t, path, "v1")
			// The default debounce: this test counts calls across
			// multi-step writes, and a 2-core machine under load can
			// pause between truncate and write.
			r := start(t, Options{Path: path, Poll: -1}, []byte("v1"))

			tc.save(t, path, "v2")
			r.expect(t, "v2")
			// A rename leaves the directory watch intact, so later
			// saves, of either kind, are seen too.
			tc.save(t, path, "v3")
			r.expect(t, "v3")
			saveInPlace(t, path, "v4")
			r.expect(t, "v4")
			saveRename(t, path, "v5")
			r.expect(t, "v5")
			r.nothingBefore(t, saveInPlace, path, "v6")
		})
	}
}

func TestIdenticalRewriteIsNotAChange(t *testing.T) {
	t.Parallel()
	for _, tc := range saves {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sites.yaml")
			writeFile(t, path, "v1")
			r := start(t, Options{Path: path, Debounce: testDebounce, Poll: -1}, []byte("v1"))

			// The "unchanged" log line shows the rewrite was read, so
			// the next onChange must be for the real change.
			n := r.logs.count("config file unchanged")
			tc.save(t, path, "v1")
			r.waitLog(t, "config file unchanged", n)
			tc.save(t, path, "v2")
			r.expect(t, "v2")
			n = r.logs.count("config file unchanged")
			tc.save(t, path, "v2")
			r.waitLog(t, "config file unchanged", n)
			r.nothingBefore(t, saveInPlace, path, "v3")
		})
	}
}

func TestNoCallAtStart(t *testing.T) {
	t.Parallel()
	t.Run("no read", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "sites.yaml")
		writeFile(t, path, "on disk")
		// Even when the disk already differs from what the caller loaded,
		// Run doesn't read at start: the caller has just read the file
		// itself. A read at start would report "on disk" first.
		r := start(t, Options{Path: path, Debounce: testDebounce, Poll: -1}, []byte("loaded earlier"))
		r.nothingBefore(t, saveInPlace, path, "v2")
	})
	t.Run("measured against initial", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "sites.yaml")
		writeFile(t, path, "on disk")
		// The first event measures against initial, so the disk content
		// is new.
		r := start(t, Options{Path: path, Debounce: testDebounce, Poll: -1}, []byte("loaded earlier"))
		saveInPlace(t, path, "on disk")
		r.expect(t, "on disk")
	})
}

// TestConfigMapSwap replays the kubelet's update of a ConfigMap volume:
// the file is a symlink through "..data" into a timestamped directory, and
// an update only swaps "..data", so no event ever names the file.
func TestConfigMapSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustSymlink := func(target, link string) {
		t.Helper()
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	old := "..2024_01_01_00_00_00.123"
	if err := os.Mkdir(filepath.Join(dir, old), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, old, "sites.yaml"), "v1")
	mustSymlink(old, filepath.Join(dir, "..data"))
	mustSymlink(filepath.Join("..data", "sites.yaml"), filepath.Join(dir, "sites.yaml"))

	update := func(stamp, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, stamp), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, stamp, "sites.yaml"), content)
		mustSymlink(stamp, filepath.Join(dir, "..data_tmp"))
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
		old = stamp
	}

	r := start(t, Options{Path: filepath.Join(dir, "sites.yaml"), Debounce: testDebounce, Poll: -1}, []byte("v1"))
	update("..2024_01_01_00_01_00.456", "v2")
	r.expect(t, "v2")
	update("..2024_01_01_00_02_00.789", "v3")
	r.expect(t, "v3")
	// A swap to the same content (a resync) reads the file but reports nothing.
	n := r.logs.count("config file unchanged")
	update("..2024_01_01_00_03_00.000", "v3")
	r.waitLog(t, "config file unchanged", n)
	update("..2024_01_01_00_04_00.000", "v4")
	r.expect(t, "v4")
}

func TestDeleteThenRecreate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	writeFile(t, path, "v1")
	r := start(t, Options{Path: path, Debounce: testDebounce, Poll: -1}, []byte("v1"))

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// The deletion is logged, and no onChange: the last good content
	// stays, so the recreated file's is the next one.
	r.waitLog(t, "config file is missing", 0)
	r.nothingBefore(t, writeFile, path, "v2")
	r.waitLog(t, "config file readable again", 0)
	// The recreated file (a new inode) is still followed.
	saveInPlace(t, path, "v3")
	r.expect(t, "v3")
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	writeFile(t, path, "v1")
	readErrs := make(chan error, 4)
	r := start(t, Options{Path: path, Debounce: testDebounce, Poll: -1, MaxSize: 16, OnError: func(err error) { readErrs <- err }}, []byte("v1"))

	saveInPlace(t, path, strings.Repeat("x", 17))
	r.waitLog(t, "larger than MaxSize", 0)
	// OnError heard of it, once (it is told before the log line is written).
	if err := <-readErrs; !strings.Contains(err.Error(), "larger than MaxSize") {
		t.Errorf("OnError got %v, want the size error", err)
	}
	// Back to the last good content: readable again, but nothing changed
	// from the caller's point of view.
	saveInPlace(t, path, "v1")
	r.waitLog(t, "config file readable again", 0)
	// Exactly MaxSize is fine, and the first onChange: neither read
	// above reported anything.
	r.nothingBefore(t, saveInPlace, path, strings.Repeat("y", 16))
	if len(readErrs) != 0 {
		t.Errorf("OnError called %d more times, want once per new read error", len(readErrs))
	}
}

// TestPoll: the poll catches what events miss.
func TestPoll(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	writeFile(t, path, "v1")
	r := start(t, Options{Path: path, Debounce: testDebounce, Poll: 100 * time.Millisecond, noEvents: true}, []byte("v1"))
	// No directory watch, so what follows is the poll's doing alone.
	if !strings.Contains(r.logs.String(), "events=false") {
		t.Fatalf("noEvents left a directory watch in place; log:\n%s", r.logs)
	}
	saveInPlace(t, path, "v2")
	r.expect(t, "v2")
	// Later polls re-read v2 and report nothing until it changes.
	n := r.logs.count("config file unchanged")
	r.waitLog(t, "config file unchanged", n)
	r.nothingBefore(t, saveInPlace, path, "v3")
}

// TestDirectoryRecreated removes the watched directory, which drops its
// inotify watch, and recreates it: the poll sets the watch up again.
func TestDirectoryRecreated(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sites.yaml")
	writeFile(t, path, "v1")
	r := start(t, Options{Path: path, Debounce: testDebounce, Poll: 100 * time.Millisecond}, []byte("v1"))

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r.waitLog(t, "config file is missing", 0)
	r.waitLog(t, "relying on polling", 0)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.waitLog(t, "watching config directory again", 0)
	writeFile(t, path, "v2")
	r.expect(t, "v2")
}

func TestMissingDirectoryAtStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		poll    time.Duration
		wantErr bool
	}{
		{"poll off: an error", -1, true},
		{"poll on: waits for it", 100 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "conf")
			path := filepath.Join(dir, "sites.yaml")
			opts := Options{Path: path, Debounce: testDebounce, Poll: tc.poll}
			if tc.wantErr {
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				defer cancel()
				if err := Run(ctx, opts, nil, func([]byte) {}); err == nil {
					t.Fatal("Run = nil, want an error")
				}
				return
			}
			r := start(t, opts, nil)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, "v1")
			r.expect(t, "v1")
		})
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		opts     Options
		onChange func([]byte)
	}{
		{"no path", Options{}, func([]byte) {}},
		{"no callback", Options{Path: "sites.yaml"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := Run(context.Background(), tc.opts, nil, tc.onChange); err == nil {
				t.Fatal("Run = nil, want an error")
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   Options
		want Options
	}{
		{"zero", Options{}, Options{Debounce: defaultDebounce, Poll: defaultPoll, MaxSize: defaultMaxSize}},
		{"poll off stays off", Options{Poll: -1}, Options{Debounce: defaultDebounce, Poll: -1, MaxSize: defaultMaxSize}},
		{"set values kept", Options{Debounce: time.Second, Poll: time.Minute, MaxSize: 10}, Options{Debounce: time.Second, Poll: time.Minute, MaxSize: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.in.withDefaults()
			if got.Logger == nil {
				t.Error("Logger is nil")
			}
			got.Logger = nil
			if got.Debounce != tc.want.Debounce || got.Poll != tc.want.Poll || got.MaxSize != tc.want.MaxSize {
				t.Errorf("withDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "small"), "hello")
	writeFile(t, filepath.Join(dir, "exact"), "12345678")
	writeFile(t, filepath.Join(dir, "big"), "123456789")
	if err := os.Symlink("small", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		file    string
		want    string
		wantErr string
	}{
		{"small file", "small", "hello", ""},
		{"exactly MaxSize", "exact", "12345678", ""},
		{"symlink followed", "link", "hello", ""},
		{"over MaxSize", "big", "", "larger than MaxSize"},
		{"missing", "nope", "", "no such file"},
		{"directory", ".", "", "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readFile(filepath.Join(dir, tc.file), 8)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readFile() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("readFile() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

// TestCancel checks Run returns promptly when ctx ends, even with a read
// pending, and leaves no goroutine behind (fsnotify's reader exits only
// when its watcher is closed). Not parallel: it counts goroutines.
func TestCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	writeFile(t, path, "v1")
	r := start(t, Options{Path: path, Debounce: time.Hour, Poll: time.Hour}, []byte("v1"))
	saveInPlace(t, path, "v2") // leaves a debounce pending
	r.waitLog(t, "config event", 0)

	// stop fails if Run, with an hour-long debounce pending, does not
	// return on cancel.
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Run, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
