package publish_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/lease"
	"github.com/sitehost/sitehost/internal/lease/leasetest"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/s3store"
)

// pausing is a's fence as seen by a process stopped right after its check
// succeeded: the check answers what it found, then the world moves on.
type pausing struct {
	publish.Fence
	once  sync.Once
	pause func()
}

func (p *pausing) Owns(s site.Name) (uint64, bool) {
	gen, ok := p.Fence.Owns(s)
	p.once.Do(p.pause)
	return gen, ok
}

// lying is a fence with a wrong clock: it always thinks it holds
// generation gen.
type lying uint64

func (g lying) Owns(site.Name) (uint64, bool) { return uint64(g), true }

// TestFencedAfterLosingLease: builder a publishes under its lease, is
// paused past its expiry between its lease check and its pointer write,
// and b takes the site over and stamps its pointers. a's write fails, and
// so does every later one, even one whose lease check wrongly says yes;
// the live pointer is b's.
func TestFencedAfterLosingLease(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"fs": func(t *testing.T) store.Store { return newStore(t) },
		"minio": func(t *testing.T) store.Store {
			srv := miniotest.Start(t)
			st, err := s3store.New(context.Background(), s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket(t), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			lc := leasetest.NewClock()
			sites := func() []site.Name { return []site.Name{blog} }
			a := lease.New(st, lease.Options{ID: "a", Now: lc.Now, Sites: sites})
			b := lease.New(st, lease.Options{ID: "b", Now: lc.Now, Sites: sites})
			tick := func(m *lease.Manager) {
				t.Helper()
				if _, err := m.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			tick(a)
			tick(b)

			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"index.html": "one"})
			pubA0 := publish.New(st, publish.Options{Fence: a})
			m1, _ := upload(t, pubA0, dir, "one")
			if _, err := pubA0.Activate(ctx, blog, site.Production, m1, publish.Cause{Kind: manifest.Built, Commit: commit1}); err != nil {
				t.Fatalf("a publishing under its lease: %v", err)
			}
			writeTree(t, dir, map[string]string{"index.html": "two"})
			m2, _ := upload(t, pubA0, dir, "two")
			writeTree(t, dir, map[string]string{"index.html": "three"})
			m3, _ := upload(t, pubA0, dir, "three")

			pubB := publish.New(st, publish.Options{Fence: b})
			var bGen uint64
			pause := func() {
				// a is stopped past its lease; b takes over, stamps the
				// pointers, and publishes.
				lc.Add(5 * time.Second)
				tick(b)
				lc.Add(5 * time.Second)
				tick(b)
				lc.Add(6 * time.Second)
				tick(b)
				var ok bool
				if bGen, ok = b.Owns(blog); !ok {
					t.Fatal("b did not take the site over 16s after a's last heartbeat")
				}
				// Stamping alone must fence a: b has not published yet.
				if err := pubB.Stamp(ctx, blog, bGen); err != nil {
					t.Fatalf("b stamping: %v", err)
				}
			}
			pubA := publish.New(st, publish.Options{Fence: &pausing{Fence: a, pause: pause}})
			_, err := pubA.Activate(ctx, blog, site.Production, m2, publish.Cause{Kind: manifest.Built, Commit: commit2})
			if !errors.Is(err, publish.ErrFenced) || fault.KindOf(err) != fault.KindSuperseded {
				t.Fatalf("a publishing after it lost the lease: %v, want ErrFenced (superseded)", err)
			}
			if ptr, err := pubB.Pointer(ctx, blog, site.Production); err != nil || ptr.Deploy != m1.ID {
				t.Fatalf("pointer after a's fenced write: %v %v, want a's first deploy %s still", ptr.Deploy, err, m1.ID)
			}
			if _, err := pubB.Activate(ctx, blog, site.Production, m3, publish.Cause{Kind: manifest.Built, Commit: commit3}); err != nil {
				t.Fatalf("b publishing: %v", err)
			}
			// a resumes ticking: it learns it lost the lease, and cannot
			// publish; nor can it with a fence that wrongly says yes.
			tick(a)
			if _, ok := a.Owns(blog); ok {
				t.Fatal("a owns the site after b took it over")
			}
			if _, err := pubA0.Activate(ctx, blog, site.Production, m2, publish.Cause{Kind: manifest.Built, Commit: commit2}); !errors.Is(err, publish.ErrFenced) {
				t.Fatalf("a publishing after its tick: %v, want ErrFenced", err)
			}
			// Nor may it report live the deploy its new owner published
			// (the same content, the same commit): nothing would be
			// written, but its commit status and notifications would say
			// it published.
			if _, err := pubA0.Activate(ctx, blog, site.Production, m3, publish.Cause{Kind: manifest.Built, Commit: commit3}); !errors.Is(err, publish.ErrFenced) {
				t.Fatalf("a activating what b published: %v, want ErrFenced", err)
			}
			stale := publish.New(st, publish.Options{Fence: lying(bGen - 1)})
			if _, err := stale.Activate(ctx, blog, site.Production, m2, publish.Cause{Kind: manifest.Built, Commit: commit2}); !errors.Is(err, publish.ErrFenced) {
				t.Fatalf("a publishing with an old generation it believes in: %v, want ErrFenced", err)
			}
			if err := stale.Stamp(ctx, blog, bGen-1); !errors.Is(err, publish.ErrFenced) {
				t.Fatalf("stamping an old generation: %v, want ErrFenced", err)
			}

			ptr, err := pubB.Pointer(ctx, blog, site.Production)
			if err != nil {
				t.Fatal(err)
			}
			if ptr.Deploy != m3.ID || ptr.Commit != commit3 || ptr.Generation != bGen {
				t.Fatalf("live pointer %s@%s generation %d, want b's %s@%s generation %d", ptr.Deploy, ptr.Commit.Short(), ptr.Generation, m3.ID, commit3.Short(), bGen)
			}
		})
	}
}
