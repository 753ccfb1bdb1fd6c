package lease_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// counting counts the requests a store would get from S3 clients: a List
// costs one request per 1,000 keys (S3's page).
type counting struct {
	store.Store
	puts, gets, stats, deletes, lists atomic.Int64
}

func (c *counting) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, r, size, opts)
}

func (c *counting) Get(ctx context.Context, key string) (store.Object, store.Info, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *counting) Stat(ctx context.Context, key string) (store.Info, error) {
	c.stats.Add(1)
	return c.Store.Stat(ctx, key)
}

func (c *counting) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, key)
}

func (c *counting) List(ctx context.Context, prefix string) iter.Seq2[store.Info, error] {
	return func(yield func(store.Info, error) bool) {
		n := int64(0)
		defer func() { c.lists.Add(1 + n/1000) }()
		for info, err := range c.Store.List(ctx, prefix) {
			n++
			if !yield(info, err) {
				return
			}
		}
	}
}

func (c *counting) total() int64 {
	return c.puts.Load() + c.gets.Load() + c.stats.Load() + c.deletes.Load() + c.lists.Load()
}

// BenchmarkIdleRequests measures what leases cost an idle fleet: 3
// builders sharing 10,000 sites, after the spread settled, for one minute
// of ticks (the default 15 s lease, a tick every 5 s).
//
//	go test -run XXX -bench IdleRequests -benchtime 1x ./internal/lease
func BenchmarkIdleRequests(b *testing.B) {
	for _, sites := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("%d-sites", sites), func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				fs, err := fsstore.New(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				st := &counting{Store: fs}
				f := newFleet(b, st, names(sites))
				ms := []leaseManager{f.builder("a"), f.builder("b"), f.builder("c")}
				for range 40 { // the spread settles
					for _, m := range ms {
						if _, err := m.Tick(ctx); err != nil {
							b.Fatal(err)
						}
					}
					f.clock.Add(5 * time.Second)
				}
				before := *snapshot(st)
				for range 12 {
					for _, m := range ms {
						if _, err := m.Tick(ctx); err != nil {
							b.Fatal(err)
						}
					}
					f.clock.Add(5 * time.Second)
				}
				after := snapshot(st)
				per := func(a, b int64) float64 { return float64(a-b) / float64(sites) }
				b.ReportMetric(per(after.total, before.total), "req/site/min")
				b.ReportMetric(float64(after.total-before.total), "req/min")
				b.ReportMetric(per(after.puts, before.puts), "put/site/min")
				b.ReportMetric(per(after.lists, before.lists), "list/site/min")
				b.ReportMetric(per(after.gets, before.gets), "get/site/min")
				for _, m := range ms {
					if n := len(m.Owned()); n < sites/3 || n > sites/3+1 {
						b.Fatalf("%s owns %d of %d sites: not settled", m.ID(), n, sites)
					}
				}
			}
		})
	}
}

type leaseManager interface {
	Tick(context.Context) (time.Time, error)
	Owned() []site.Name
	ID() string
}

type counts struct{ total, puts, lists, gets int64 }

func snapshot(c *counting) *counts {
	return &counts{total: c.total(), puts: c.puts.Load(), lists: c.lists.Load(), gets: c.gets.Load()}
}
