package reconcile

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/backoff"
	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// retries records the retries a loop schedules.
type retries struct {
	mu                 sync.Mutex
	scheduled, stopped int
	overlapping        int // retries scheduled while another was pending
}

func (r *retries) AfterFunc(time.Duration, func()) backoff.Timer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scheduled != r.stopped {
		r.overlapping++
	}
	r.scheduled++
	return &retryTimer{r: r}
}

type retryTimer struct {
	r       *retries
	stopped bool
}

func (t *retryTimer) Stop() bool {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	if t.stopped {
		return false
	}
	t.stopped = true
	t.r.stopped++
	return true
}

// TestOneRetryPending: a site that keeps failing (every poll, webhook or
// retry fails again) has one retry scheduled at a time, not one more per
// failure, and none once the loop stops.
func TestOneRetryPending(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "s", Ref: "main", Path: ".", Build: build.Settings{Tool: build.ToolNone},
		Repo: gitsrc.Options{URL: "file://" + filepath.Join(t.TempDir(), "missing.git")}}
	rec := &retries{}
	l, err := New(Options{Sites: []Spec{spec}, DataDir: t.TempDir(), Publisher: publish.New(st, publish.Options{}), RetryClock: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }() //nolint:errcheck // Run returns nil
	for range 5 {
		if _, err := l.Sync(ctx, "s"); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.scheduled < 5 {
		t.Fatalf("%d retries scheduled for 5 failed syncs, want one after each", rec.scheduled)
	}
	if rec.overlapping != 0 {
		t.Errorf("%d retries scheduled while another was pending, want 0", rec.overlapping)
	}
	if rec.stopped != rec.scheduled {
		t.Errorf("%d of %d retries still pending after the loop stopped", rec.scheduled-rec.stopped, rec.scheduled)
	}
}
