package publish_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/s3store"
)

// countStore counts the requests a publish makes.
type countStore struct {
	store.Store
	puts, putBytes, stats, gets atomic.Int64
}

func (s *countStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	s.puts.Add(1)
	s.putBytes.Add(size)
	return s.Store.Put(ctx, key, r, size, opts)
}

func (s *countStore) Stat(ctx context.Context, key string) (store.Info, error) {
	s.stats.Add(1)
	return s.Store.Stat(ctx, key)
}

func (s *countStore) Get(ctx context.Context, key string) (store.Object, store.Info, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countStore) reset() { s.puts.Store(0); s.putBytes.Store(0); s.stats.Store(0); s.gets.Store(0) }

// BenchmarkPublish10kS3 publishes a generated site of 10,000 files of 1 KiB
// to a real MinIO and makes it live: "first" into an empty bucket, "one
// file changed" on top of the live deploy. It reports the objects written
// (blobs and metadata), the bytes written, and the existence checks made.
//
//	go test -run XXX -bench Publish10kS3 -benchtime 5x ./internal/publish
func BenchmarkPublish10kS3(b *testing.B) {
	srv := miniotest.Start(b)
	dir, body := write10k(b)
	ctx := context.Background()
	newStore := func() *countStore {
		st, err := s3store.New(ctx, s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket(b), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			b.Fatal(err)
		}
		return &countStore{Store: st}
	}
	publishOnce := func(b *testing.B, p *publish.Publisher, key string) publish.UploadStats {
		m, stats, err := p.Upload(ctx, publish.Deploy{Site: blog, Channel: site.Production, Commit: commit1, BuildKey: key, Dir: dir, Log: []byte("build log")})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Activate(ctx, blog, site.Production, m, built(commit1)); err != nil {
			b.Fatal(err)
		}
		return stats
	}
	report := func(b *testing.B, cs *countStore, blobs, iters int) {
		b.ReportMetric(float64(blobs)/float64(iters), "blobs/op")
		b.ReportMetric(float64(cs.puts.Load())/float64(iters), "objects/op")
		b.ReportMetric(float64(cs.putBytes.Load())/float64(iters), "bytes-up/op")
		b.ReportMetric(float64(cs.stats.Load())/float64(iters), "checks/op")
	}

	b.Run("first", func(b *testing.B) {
		var total atomic.Int64
		iters := 0
		var last *countStore
		for b.Loop() {
			b.StopTimer()
			cs := newStore()
			b.StartTimer()
			stats := publishOnce(b, publish.New(cs, publish.Options{Concurrency: 16}), buildKey("first"))
			total.Add(int64(stats.BlobsUploaded))
			iters++
			last = cs
		}
		report(b, last, int(total.Load())/iters, 1)
	})
	b.Run("one file changed", func(b *testing.B) {
		cs := newStore()
		p := publish.New(cs, publish.Options{Concurrency: 16})
		publishOnce(b, p, buildKey("base"))
		cs.reset()
		name := filepath.Join(dir, "d000", "page-00000.html")
		blobs, iters := 0, 0
		for b.Loop() {
			copy(body, fmt.Sprintf("changed %d\n", iters))
			if err := os.WriteFile(name, body, 0o644); err != nil {
				b.Fatal(err)
			}
			stats := publishOnce(b, p, buildKey(fmt.Sprint("changed ", iters)))
			blobs += stats.BlobsUploaded
			iters++
		}
		report(b, cs, blobs, iters)
	})
}
