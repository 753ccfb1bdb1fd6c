package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// TestRequestMarkers: markers another replica left in the bucket lead the
// loop to build, coalesce like local requests, and are deleted; a marker
// for a site this loop does not build stays for its builder, and bad ones
// are dropped.
func TestRequestMarkers(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.builder.delay = 100 * time.Millisecond
	f.sync(t)
	before := f.builder.n.Load()
	st, err := fsstore.New(f.store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.repo.Write("index.html", "<h1>two</h1>")
	two := f.repo.Commit("two")

	push := reconcile.EventRequest(site.Event{Forge: "github", Kind: site.EventPush, Ref: "refs/heads/main", Commit: site.Commit(two)}, time.Now())
	pushKey, err := reconcile.PutRequest(ctx, st, "s", push)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := reconcile.PutRequest(ctx, st, "s", reconcile.Request{Sync: true, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	otherKey, err := reconcile.PutRequest(ctx, st, "other", reconcile.Request{Sync: true, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string]string{
		reconcile.RequestPrefix + "s/big":    strings.Repeat("x", reconcile.MaxRequestSize+1),
		reconcile.RequestPrefix + "s/broken": "{",
	} {
		if _, err := st.Put(ctx, key, strings.NewReader(body), int64(len(body)), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reconcile.PutRequest(ctx, st, "s", reconcile.Request{Ref: strings.Repeat("r", reconcile.MaxRequestSize)}); !errors.Is(err, reconcile.ErrRequestTooLarge) {
		t.Errorf("an oversized marker: %v, want ErrRequestTooLarge", err)
	}

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.loop.WatchRequests(wctx, st, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the marked push to go live", func() bool { return f.live(t).Commit == site.Commit(two) })
	waitFor(t, "every marker of s to be taken", func() bool {
		for _, err := range st.List(ctx, reconcile.RequestPrefix+"s/") {
			if err != nil {
				t.Fatal(err)
			}
			return false // a key left: not yet
		}
		return true
	})
	if taken, err := reconcile.RequestTaken(ctx, st, pushKey); err != nil || !taken {
		t.Errorf("push marker taken = %v, %v", taken, err)
	}
	if taken, err := reconcile.RequestTaken(ctx, st, otherKey); err != nil || taken {
		t.Errorf("marker of a site this loop does not build: taken = %v, %v; want it left", taken, err)
	}
	if _, err := f.loop.Settle(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if n := f.builder.n.Load() - before; n < 1 || n > 2 {
		t.Errorf("6 markers caused %d builds, want 1 or 2", n)
	}
}
