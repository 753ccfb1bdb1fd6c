package publish

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// GCOptions configure a collection.
type GCOptions struct {
	// Retention is how many production deploys each site keeps, the live
	// one included (default 20). Deploys any channel points at are kept
	// whatever their age.
	Retention int
	// SkewDeploys and SkewGrace keep, on every channel, the deploys that
	// skew protection may still serve assets from: the first SkewDeploys
	// replaced less than SkewGrace ago (the largest settings of any site).
	SkewDeploys int
	SkewGrace   time.Duration
}

// GCStats says what a collection did.
type GCStats struct {
	Sites          int
	DeploysKept    int
	DeploysDeleted int
	BlobsKept      int
	BlobsDeleted   int
	BytesFreed     int64
}

// GC deletes what no one needs any more: deploys that are neither among the
// last Retention production deploys nor named by any channel, their logs
// and build-key records, and then every blob no remaining manifest names.
//
// It is safe against publishes running at the same time, in this process
// or another one on the same bucket, by time rather than locks: nothing
// younger than Options.Grace is deleted, measured from the start of the
// collection, and an upload never relies on a blob it found in the store
// that is older than Grace/2 nor runs longer than that (see Upload). Two
// collections may run at once: deletes are idempotent.
func (p *Publisher) GC(ctx context.Context, opts GCOptions) (GCStats, error) {
	if opts.Retention <= 0 {
		opts.Retention = 20
	}
	var stats GCStats
	// The cut-off is taken before anything is read: an object written after
	// it is young by definition, and is never collected in this run.
	cutoff := time.Now().Add(-p.opts.Grace)

	sites, err := p.inventory(ctx)
	if err != nil {
		return stats, err
	}
	stats.Sites = len(sites)
	var kept []deployRef
	for name, inv := range sites {
		k, deleted, err := p.collectSite(ctx, name, inv, opts, cutoff)
		if err != nil {
			return stats, fmt.Errorf("collecting %s: %w", name, err)
		}
		kept = append(kept, k...)
		stats.DeploysKept += len(k)
		stats.DeploysDeleted += deleted
	}
	marked, err := p.markBlobs(ctx, kept)
	if err != nil {
		return stats, err
	}
	if err := p.sweepBlobs(ctx, marked, cutoff, &stats); err != nil {
		return stats, err
	}
	p.opts.Logger.Info("garbage collected", "sites", stats.Sites, "deploys_kept", stats.DeploysKept,
		"deploys_deleted", stats.DeploysDeleted, "blobs_kept", stats.BlobsKept,
		"blobs_deleted", stats.BlobsDeleted, "bytes_freed", stats.BytesFreed)
	return stats, nil
}

type deployRef struct {
	site site.Name
	id   site.DeployID
}

// siteInventory is what the store holds for one site.
type siteInventory struct {
	deploys  map[site.DeployID]store.Info
	logs     map[site.DeployID]store.Info
	builds   map[string]store.Info // by build key
	channels []site.Channel
}

// inventory lists everything under sites/, by site. A site removed from the
// configuration keeps its deploys: its pointers still name them, and a
// mistaken edit of sites.yaml must not cost anyone their site.
func (p *Publisher) inventory(ctx context.Context) (map[site.Name]*siteInventory, error) {
	sites := make(map[site.Name]*siteInventory)
	get := func(n site.Name) *siteInventory {
		inv := sites[n]
		if inv == nil {
			inv = &siteInventory{deploys: map[site.DeployID]store.Info{}, logs: map[site.DeployID]store.Info{}, builds: map[string]store.Info{}}
			sites[n] = inv
		}
		return inv
	}
	for info, err := range p.st.List(ctx, "sites/") {
		if err != nil {
			return nil, fmt.Errorf("listing sites: %w", err)
		}
		// sites/<site>/<kind>/<name>
		parts := strings.Split(info.Key, "/")
		if len(parts) != 4 {
			continue
		}
		n, kind, name := site.Name(parts[1]), parts[2], parts[3]
		switch kind {
		case "deploys":
			if id, ok := strings.CutSuffix(name, ".json"); ok && site.DeployID(id).Valid() {
				get(n).deploys[site.DeployID(id)] = info
			}
		case "logs":
			if id, ok := strings.CutSuffix(name, ".log"); ok && site.DeployID(id).Valid() {
				get(n).logs[site.DeployID(id)] = info
			}
		case "builds":
			if len(name) >= site.DeployIDLen && site.DeployID(name).Valid() {
				get(n).builds[name] = info
			}
		case "channels":
			if c, ok := strings.CutSuffix(name, ".json"); ok && site.Channel(c).Valid() {
				get(n).channels = append(get(n).channels, site.Channel(c))
			}
		}
	}
	return sites, nil
}

// referenced reads a site's pointers: the deploys they name, and the first
// retention entries of production's history.
func (p *Publisher) referenced(ctx context.Context, s site.Name, channels []site.Channel, opts GCOptions) (map[site.DeployID]bool, error) {
	refs := make(map[site.DeployID]bool)
	now := time.Now()
	for _, c := range channels {
		ptr, err := p.Pointer(ctx, s, c)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		refs[ptr.Deploy] = true
		for i, old := range ptr.Replaced() {
			if i >= opts.SkewDeploys || now.Sub(old.At) >= opts.SkewGrace {
				break
			}
			refs[old.Deploy] = true
		}
		if c != site.Production {
			continue
		}
		// The previous deploy stays even at retention 1: a publish that
		// started before this pointer moved may still rely on its blobs.
		if ptr.Previous != "" {
			refs[ptr.Previous] = true
		}
		for i, id := range ptr.History {
			if i >= opts.Retention {
				break
			}
			refs[id] = true
		}
	}
	return refs, nil
}

// collectSite deletes a site's unneeded deploys and returns those kept.
func (p *Publisher) collectSite(ctx context.Context, s site.Name, inv *siteInventory, opts GCOptions, cutoff time.Time) ([]deployRef, int, error) {
	refs, err := p.referenced(ctx, s, inv.channels, opts)
	if err != nil {
		return nil, 0, err
	}
	var kept []deployRef
	doomed := make(map[site.DeployID]bool)
	for id, info := range inv.deploys {
		if refs[id] || info.ModTime.After(cutoff) {
			kept = append(kept, deployRef{s, id})
			continue
		}
		doomed[id] = true
	}
	if len(doomed) == 0 {
		return kept, 0, p.deleteOrphans(ctx, s, inv, cutoff)
	}
	// Build-key records go first, so no new revert can find a doomed
	// deploy; then the pointers are read again, and a deploy a revert made
	// live meanwhile is spared.
	for key := range inv.builds {
		if doomed[manifest.DeployIDFor(key)] {
			if err := p.st.Delete(ctx, manifest.BuildKeyKey(s, key)); err != nil {
				return nil, 0, fmt.Errorf("deleting build record %s: %w", key, err)
			}
			delete(inv.builds, key)
		}
	}
	refs, err = p.referenced(ctx, s, inv.channels, opts)
	if err != nil {
		return nil, 0, err
	}
	deleted := 0
	for id := range doomed {
		if refs[id] {
			kept = append(kept, deployRef{s, id})
			continue
		}
		if err := p.st.Delete(ctx, manifest.ManifestKey(s, id)); err != nil {
			return nil, 0, fmt.Errorf("deleting deploy %s: %w", id, err)
		}
		if _, ok := inv.logs[id]; ok {
			if err := p.st.Delete(ctx, manifest.LogKey(s, id)); err != nil {
				return nil, 0, fmt.Errorf("deleting log of %s: %w", id, err)
			}
			delete(inv.logs, id)
		}
		delete(inv.deploys, id)
		deleted++
		p.opts.Logger.Info("deleted deploy", "site", s, "deploy", id)
	}
	return kept, deleted, p.deleteOrphans(ctx, s, inv, cutoff)
}

// deleteOrphans removes old logs and build records whose deploy does not
// exist: leftovers of uploads that died before writing their manifest.
func (p *Publisher) deleteOrphans(ctx context.Context, s site.Name, inv *siteInventory, cutoff time.Time) error {
	for id, info := range inv.logs {
		if _, ok := inv.deploys[id]; !ok && info.ModTime.Before(cutoff) {
			if err := p.st.Delete(ctx, manifest.LogKey(s, id)); err != nil {
				return fmt.Errorf("deleting orphaned log %s: %w", id, err)
			}
		}
	}
	for key, info := range inv.builds {
		if _, ok := inv.deploys[manifest.DeployIDFor(key)]; !ok && info.ModTime.Before(cutoff) {
			if err := p.st.Delete(ctx, manifest.BuildKeyKey(s, key)); err != nil {
				return fmt.Errorf("deleting orphaned build record %s: %w", key, err)
			}
		}
	}
	return nil
}

// markBlobs reads every kept manifest and returns the blobs they name. A
// manifest that cannot be read stops the collection: what it names is
// unknown, so no blob may go.
func (p *Publisher) markBlobs(ctx context.Context, kept []deployRef) (map[string]bool, error) {
	var mu sync.Mutex
	marked := make(map[string]bool)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for _, d := range kept {
		g.Go(func() error {
			m, err := p.Manifest(gctx, d.site, d.id)
			if errors.Is(err, ErrNotFound) {
				return nil // collected by a concurrent GC
			}
			if err != nil {
				return fmt.Errorf("reading %s deploy %s: %w", d.site, d.id, err)
			}
			mu.Lock()
			for _, f := range m.Files {
				f.Blobs(func(sha string) { marked[sha] = true })
			}
			mu.Unlock()
			return nil
		})
	}
	return marked, g.Wait()
}

// sweepBlobs deletes old blobs no kept manifest names.
func (p *Publisher) sweepBlobs(ctx context.Context, marked map[string]bool, cutoff time.Time, stats *GCStats) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	var mu sync.Mutex
	for info, err := range p.st.List(ctx, "blobs/") {
		if err != nil {
			g.Wait() //nolint:errcheck // the listing error is the one to report
			return fmt.Errorf("listing blobs: %w", err)
		}
		sha := path.Base(info.Key)
		if !manifest.ValidSHA256(sha) || info.Key != manifest.BlobKey(sha) {
			continue // not ours: leave it
		}
		if marked[sha] || !info.ModTime.Before(cutoff) {
			stats.BlobsKept++
			continue
		}
		g.Go(func() error {
			if err := p.st.Delete(gctx, info.Key); err != nil {
				return fmt.Errorf("deleting %s: %w", info.Key, err)
			}
			mu.Lock()
			stats.BlobsDeleted++
			stats.BytesFreed += info.Size
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}
