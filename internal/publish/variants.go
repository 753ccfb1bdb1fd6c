package publish

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/compress"
	"github.com/sitehost/sitehost/internal/manifest"
)

// maxCompressSize bounds the files that get precompressed variants; larger
// ones are served as they are rather than holding up a publish.
const maxCompressSize = 32 << 20

// defaultBestBudget is how many bytes of content one deploy compresses at
// the best level (brotli 11 runs at ~0.5 MB/s: about 2 s of CPU); the rest
// get the fast level. A deploy that changes a few pages gets the best for
// them; one that changes every page is not held up for minutes.
const defaultBestBudget = 1 << 20

// makeVariants gives every file worth compressing its gzip and brotli forms.
// A file whose content a live manifest already has with variants takes
// them from there: a deploy that changes one page compresses one page. New
// variants are written to files under dir and added to paths (sha → file),
// so they upload like any other blob.
func (p *Publisher) makeVariants(ctx context.Context, dir string, files map[string]manifest.File, paths map[string]string, known map[string]manifest.File, stats *UploadStats) error {
	type job struct {
		sha, src, typ string
		size          int64
		level         compress.Level
	}
	var jobs []job
	queued := make(map[string]bool)
	for _, f := range files {
		if !compress.Worth(f.Type, f.Size) || f.Size > maxCompressSize || queued[f.SHA256] {
			continue
		}
		queued[f.SHA256] = true
		if k, ok := known[f.SHA256]; ok && (k.Gzip != nil || k.Brotli != nil) {
			continue
		}
		jobs = append(jobs, job{sha: f.SHA256, src: paths[f.SHA256], typ: f.Type, size: f.Size})
	}
	// Smallest first, so the budget covers as many files as it can, in an
	// order that does not depend on map iteration.
	slices.SortFunc(jobs, func(a, b job) int { return cmp.Or(cmp.Compare(a.size, b.size), strings.Compare(a.sha, b.sha)) })
	budget := p.opts.BestBudget
	for i := range jobs {
		if jobs[i].size <= budget {
			budget -= jobs[i].size
		} else {
			jobs[i].level, budget = compress.Fast, 0
		}
	}
	// Budget left over upgrades live files whose variants were made fast
	// by an earlier, bigger deploy: a site converges on the best level
	// over a few deploys without ever holding one up.
	var upgrades []job
	for sha := range queued {
		if k, ok := known[sha]; ok && fastVariants(k) {
			upgrades = append(upgrades, job{sha: sha, src: paths[sha], typ: k.Type, size: k.Size})
		}
	}
	slices.SortFunc(upgrades, func(a, b job) int { return cmp.Or(cmp.Compare(a.size, b.size), strings.Compare(a.sha, b.sha)) })
	for _, u := range upgrades {
		if u.size > budget {
			break
		}
		budget -= u.size
		jobs = append(jobs, u)
	}
	made := make(map[string]manifest.File, len(jobs)) // body sha → variants
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for _, j := range jobs {
		g.Go(func() error {
			var v manifest.File
			for _, enc := range []compress.Encoding{compress.Brotli, compress.Gzip} {
				out, err := p.encode(ctx, dir, j.src, j.size, enc, j.level)
				if err != nil {
					return fmt.Errorf("compressing %s: %w", j.src, err)
				}
				if out.Size == 0 {
					continue // not worth it
				}
				mu.Lock()
				paths[out.SHA256] = filepath.Join(dir, out.SHA256)
				stats.Variants++
				mu.Unlock()
				out.Fast = j.level == compress.Fast
				if enc == compress.Brotli {
					v.Brotli = &out
				} else {
					v.Gzip = &out
				}
			}
			mu.Lock()
			made[j.sha] = v
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for rel, f := range files {
		if !queued[f.SHA256] {
			continue
		}
		v, k := made[f.SHA256], known[f.SHA256]
		f.Gzip, f.Brotli = cmp.Or(v.Gzip, k.Gzip), cmp.Or(v.Brotli, k.Brotli)
		files[rel] = f
	}
	return nil
}

// encode compresses the file src into dir, named by its sha256. A variant
// larger than compress.KeepRatio of the original is removed and reported
// with size 0.
func (p *Publisher) encode(ctx context.Context, dir, src string, size int64, enc compress.Encoding, level compress.Level) (manifest.Variant, error) {
	in, err := os.Open(src)
	if err != nil {
		return manifest.Variant{}, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(dir, "enc-")
	if err != nil {
		return manifest.Variant{}, err
	}
	defer os.Remove(tmp.Name()) // renamed away on success
	defer tmp.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	if err := compress.Encode(ctx, enc, level, cw, in, size); err != nil {
		return manifest.Variant{}, err
	}
	if float64(cw.n) > compress.KeepRatio*float64(size) {
		return manifest.Variant{}, nil
	}
	if err := tmp.Close(); err != nil {
		return manifest.Variant{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(dir, sum)); err != nil {
		return manifest.Variant{}, err
	}
	return manifest.Variant{SHA256: sum, Size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
