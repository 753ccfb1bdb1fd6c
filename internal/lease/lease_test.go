package lease_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/lease"
	"github.com/sitehost/sitehost/internal/lease/leasetest"
	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
	"github.com/sitehost/sitehost/internal/store/s3store"
)

// backends runs fn on a folder store and on MinIO (skipped locally without
// the minio binary, failed in CI).
func backends(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("fs", func(t *testing.T) {
		st, err := fsstore.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, st)
	})
	t.Run("minio", func(t *testing.T) {
		srv := miniotest.Start(t)
		st, err := s3store.New(context.Background(), s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket(t), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		fn(t, st)
	})
}

func names(n int) []site.Name {
	out := make([]site.Name, n)
	for i := range out {
		out[i] = site.Name(fmt.Sprintf("site-%02d", i))
	}
	return out
}

// fleet is builders on one store and one clock, with what each heard.
type fleet struct {
	t     testing.TB
	st    store.Store
	clock *leasetest.Clock
	sites []site.Name
	mu    sync.Mutex
	heard map[string][]string // builder → "taken site gen" / "lost site"
}

func newFleet(t testing.TB, st store.Store, sites []site.Name) *fleet {
	return &fleet{t: t, st: st, clock: leasetest.NewClock(), sites: sites, heard: map[string][]string{}}
}

func (f *fleet) builder(id string) *lease.Manager {
	return lease.New(f.st, lease.Options{
		ID: id, Now: f.clock.Now, Sites: func() []site.Name { return f.sites },
		OnChange: func(s site.Name, gen uint64, owned bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if owned {
				f.heard[id] = append(f.heard[id], fmt.Sprintf("taken %s %d", s, gen))
			} else {
				f.heard[id] = append(f.heard[id], fmt.Sprintf("lost %s", s))
			}
		},
	})
}

func (f *fleet) tick(ms ...*lease.Manager) {
	f.t.Helper()
	for _, m := range ms {
		if _, err := m.Tick(context.Background()); err != nil {
			f.t.Fatalf("tick of %s: %v", m.ID(), err)
		}
	}
}

// owners maps each site to the builders that say they own it; a site must
// never have two.
func (f *fleet) owners(ms ...*lease.Manager) map[site.Name]string {
	f.t.Helper()
	out := map[site.Name]string{}
	for _, m := range ms {
		for _, s := range m.Owned() {
			if o, ok := out[s]; ok {
				f.t.Fatalf("site %s owned by %s and %s", s, o, m.ID())
			}
			out[s] = m.ID()
		}
	}
	return out
}

func TestAcquireRenewRelease(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st, names(3))
		a := f.builder("a")
		f.tick(a)
		for _, s := range f.sites {
			if gen, ok := a.Owns(s); !ok || gen != 1 {
				t.Fatalf("a owns %s: %d %v, want generation 1", s, gen, ok)
			}
		}
		if _, ok := a.Fleet(); !ok {
			t.Fatal("a alone does not hold the fleet lease")
		}
		before := etags(t, st, "leases/sites/")

		// Renewal is the heartbeat alone: a minute of ticks writes no
		// site lease and keeps every generation.
		for range 12 {
			f.clock.Add(5 * time.Second)
			f.tick(a)
		}
		for _, s := range f.sites {
			if gen, ok := a.Owns(s); !ok || gen != 1 {
				t.Fatalf("after renewals a owns %s: %d %v", s, gen, ok)
			}
		}
		if after := etags(t, st, "leases/sites/"); !slices.Equal(before, after) {
			t.Fatalf("site leases rewritten by renewals: %v → %v", before, after)
		}

		// A graceful release lets another builder take over at once.
		b := f.builder("b")
		f.tick(b)
		if got := b.Owned(); len(got) > 2 {
			t.Fatalf("b took %v from a live a", got)
		}
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := a.Owned(); len(got) != 0 {
			t.Fatalf("a still owns %v after release", got)
		}
		f.tick(b)
		if got := b.Owned(); !slices.Equal(got, f.sites) {
			t.Fatalf("b owns %v after a released, want %v", got, f.sites)
		}
		if _, ok := b.Fleet(); !ok {
			t.Fatal("b did not take the released fleet lease")
		}
	})
}

func TestExpiryTakeover(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st, names(4))
		a, b := f.builder("a"), f.builder("b")
		f.tick(a)
		f.clock.Add(time.Second)
		f.tick(b)
		if got := b.Owned(); len(got) != 0 {
			t.Fatalf("b took %v while a lives", got)
		}
		// a dies (no more ticks). Before the lease time is up, b waits.
		for range 2 {
			f.clock.Add(5 * time.Second)
			f.tick(b)
			f.owners(a, b)
		}
		// By a's own clock it gives its leases up before they expire for b.
		f.clock.Add(2 * time.Second)
		f.tick(b)
		if got := a.Owned(); len(got) != 0 {
			t.Fatalf("a still thinks it owns %v 13s after its heartbeat", got)
		}
		if got := b.Owned(); len(got) != 0 {
			t.Fatalf("b took %v 13s after a's last heartbeat", got)
		}
		f.clock.Add(3 * time.Second)
		f.tick(b)
		for _, s := range f.sites {
			if gen, ok := b.Owns(s); !ok || gen != 2 {
				t.Fatalf("b owns %s: %d %v, want generation 2 after the takeover", s, gen, ok)
			}
		}
		if _, ok := b.Fleet(); !ok {
			t.Fatal("b did not take the fleet lease over")
		}

		// a resumes (a pause past the lease time): it owns nothing, says
		// so, and does not take b's sites.
		f.tick(a)
		f.owners(a, b)
		if got := a.Owned(); len(got) != 0 {
			t.Fatalf("a resumed owning %v", got)
		}
		f.mu.Lock()
		heard := slices.Clone(f.heard["a"])
		f.mu.Unlock()
		lost := 0
		for _, h := range heard {
			if len(h) > 5 && h[:5] == "lost " {
				lost++
			}
		}
		if lost != len(f.sites) {
			t.Fatalf("a heard %v, want %d losses", heard, len(f.sites))
		}
		for _, s := range f.sites {
			if gen, ok := b.Owns(s); !ok || gen != 2 {
				t.Fatalf("after a resumed b owns %s: %d %v", s, gen, ok)
			}
		}
	})
}

func TestSpreadAndJoin(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st, names(12))
		ms := []*lease.Manager{f.builder("a"), f.builder("b"), f.builder("c")}
		// The first builder takes all; the surplus goes one per tick.
		for range 10 {
			f.tick(ms...)
			f.owners(ms...)
			f.clock.Add(5 * time.Second)
		}
		own := f.owners(ms...)
		if len(own) != 12 {
			t.Fatalf("%d of 12 sites owned: %v", len(own), own)
		}
		for _, m := range ms {
			if n := len(m.Owned()); n != 4 {
				t.Fatalf("%s owns %d sites, want 4 of 12 among 3", m.ID(), n)
			}
		}

		// A fourth builder takes sites over gradually: nobody hands back
		// more than one per tick, and every site stays owned throughout
		// but for the one being handed over.
		d := f.builder("d")
		ms = append(ms, d)
		for round := range 5 {
			prev := map[string]int{}
			for _, m := range ms {
				prev[m.ID()] = len(m.Owned())
			}
			f.tick(ms...)
			own := f.owners(ms...)
			for _, m := range ms[:3] {
				if n := len(m.Owned()); n < prev[m.ID()]-1 {
					t.Fatalf("round %d: %s went from %d to %d sites", round, m.ID(), prev[m.ID()], n)
				}
			}
			if len(own) < 12-3 {
				t.Fatalf("round %d: only %d sites owned", round, len(own))
			}
			f.clock.Add(5 * time.Second)
		}
		for _, m := range ms {
			if n := len(m.Owned()); n != 3 {
				t.Fatalf("%s owns %d sites, want 3 of 12 among 4", m.ID(), n)
			}
		}
		fleetHolders := 0
		for _, m := range ms {
			if _, ok := m.Fleet(); ok {
				fleetHolders++
			}
		}
		if fleetHolders != 1 {
			t.Fatalf("%d builders hold the fleet lease", fleetHolders)
		}
	})
}

func TestOwnsLapsesWithoutTick(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(t, st, names(1))
	a := f.builder("a")
	f.tick(a)
	if _, ok := a.Owns(f.sites[0]); !ok {
		t.Fatal("a does not own its only site")
	}
	// No tick, as in a process stopped right after this check: the next
	// check, on a clock past the lease (less the margin), says no.
	f.clock.Add(12 * time.Second)
	if _, ok := a.Owns(f.sites[0]); ok {
		t.Fatal("a owns its site 12s after its last heartbeat")
	}
}

func TestDeadHeartbeatsCollected(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(t, st, names(2))
	a, b := f.builder("a"), f.builder("b")
	f.tick(a, b)
	// a dies; b, holding the fleet lease after the takeover, deletes a's
	// heartbeat once it has been dead for 20 lease times, not before.
	for range 58 {
		f.clock.Add(5 * time.Second)
		f.tick(b)
	}
	if got := etags(t, st, "leases/builders/"); len(got) != 2 {
		t.Fatalf("heartbeats after 290s: %v, want both", got)
	}
	for range 4 {
		f.clock.Add(5 * time.Second)
		f.tick(b)
	}
	got := etags(t, st, "leases/builders/")
	if len(got) != 1 || !strings.HasPrefix(got[0], "leases/builders/b.json@") {
		t.Fatalf("heartbeats after 310s: %v, want b's alone", got)
	}
}

func etags(t *testing.T, st store.Store, prefix string) []string {
	t.Helper()
	var out []string
	for info, err := range st.List(context.Background(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, info.Key+"@"+info.ETag)
	}
	return out
}
