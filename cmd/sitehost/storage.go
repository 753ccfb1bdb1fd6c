package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/sitehost/sitehost/internal/blobcache"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
	"github.com/sitehost/sitehost/internal/store/s3store"
)

// openStore opens the object store of server.storage.
func openStore(ctx context.Context, cfg *config.Config, getenv func(string) string, logger *slog.Logger) (store.Store, error) {
	sc := cfg.Server.Storage
	switch sc.Kind {
	case "s3":
		ak, sk := getenv(sc.S3.AccessKeyEnv), getenv(sc.S3.SecretKeyEnv)
		for name, v := range map[string]string{sc.S3.AccessKeyEnv: ak, sc.S3.SecretKeyEnv: sk} {
			if v == "" {
				return nil, fmt.Errorf("opening s3 store: environment variable %s (server.storage.s3) is not set", name)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := s3store.New(ctx, s3store.Options{
			Endpoint: sc.S3.Endpoint, Bucket: sc.S3.Bucket, Region: sc.S3.Region,
			AccessKey: ak, SecretKey: sk, TLS: sc.S3.TLS, Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("opening s3 store: %w", err)
		}
		return st, nil
	default:
		st, err := fsstore.New(sc.Path)
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		return st, nil
	}
}

// newBlobCache puts the data plane's cache in front of the store: memory
// for small hot blobs, and for s3 a disk tier under data_dir, so sites keep
// serving while the bucket is unreachable. An fs store is a local disk
// already.
func newBlobCache(cfg *config.Config, src blobcache.Source, logger *slog.Logger) (*blobcache.Cache, error) {
	c := cfg.Server.Cache
	opts := blobcache.Options{Source: src, MemoryBytes: int64(c.Memory), Logger: logger}
	if c.Memory == 0 {
		opts.MemoryBytes = -1
	}
	if cfg.Server.Storage.Kind == "s3" && c.Disk > 0 {
		opts.Dir = filepath.Join(cfg.Server.DataDir, "cache", "blobs")
		opts.DiskBytes = int64(c.Disk)
	}
	bc, err := blobcache.New(opts)
	if err != nil {
		return nil, fmt.Errorf("opening blob cache: %w", err)
	}
	return bc, nil
}

// gcLoop collects garbage every interval, starting a little after start-up
// so a restart loop does not hammer the store. Several replicas on one
// bucket may all run it: collections are safe against each other.
func (s *server) gcLoop(ctx context.Context) {
	first := time.Duration(rand.Int64N(int64(min(s.gcEvery, 5*time.Minute)))) + time.Second
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// With leases, the fleet lease's holder alone collects.
		if !s.fleetJob() {
			t.Reset(s.gcEvery)
			continue
		}
		opts := publish.GCOptions{Retention: s.cfg.Server.Retention}
		for _, sc := range s.rt.Load().cfg.Sites {
			opts.SkewDeploys = max(opts.SkewDeploys, sc.Skew.Deploys)
			opts.SkewGrace = max(opts.SkewGrace, sc.Skew.Grace)
		}
		if _, err := s.publisher.GC(ctx, opts); err != nil && ctx.Err() == nil {
			s.log.Error("garbage collection failed; retrying at the next interval", "err", err)
		}
		// Jitter spreads the replicas' collections apart.
		t.Reset(s.gcEvery + time.Duration(rand.Int64N(int64(s.gcEvery/10)+1)))
	}
}
