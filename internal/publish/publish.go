package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/backoff"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/units"
)

// Options configure a Publisher.
type Options struct {
	Logger *slog.Logger
	// Concurrency bounds parallel hashing and uploads (default 8).
	Concurrency int
	// MaxFiles and MaxBytes bound one deploy (defaults 100,000 and 4 GiB).
	MaxFiles int
	MaxBytes int64
	// OnChanged is called after a channel pointer was written or deleted,
	// so the data plane can drop its cache at once instead of waiting for
	// its TTL.
	OnChanged func(site.Name, site.Channel)
	// Grace protects young objects from GC: nothing written less than
	// Grace ago is collected, and an upload trusts a blob it finds in the
	// store only if it is younger than Grace/2, re-writing an older one, so
	// a collection running at the same time cannot delete a blob the new
	// manifest relies on (default 1h).
	Grace time.Duration
	// TempDir holds precompressed variants while they upload (default
	// os.TempDir()).
	TempDir string
	// BestBudget is how many bytes of content one deploy compresses at the
	// best level; the rest get the fast one (default 1 MiB).
	BestBudget int64
	// Now is the clock of timestamps written into manifests and pointers
	// (tests). Ages of stored objects are always measured with time.Now,
	// as the store's clock is a real one.
	Now func() time.Time
	// Fence, when set, guards every pointer change: only the holder of the
	// site's lease writes, and never over a pointer stamped with a newer
	// lease generation (nil: every write is allowed, one process).
	Fence Fence
}

// Fence says whether this process holds a site's lease now, and with
// which generation (lease.Manager).
type Fence interface {
	Owns(site.Name) (gen uint64, ok bool)
}

// Publisher writes deploys, and reads them back with its embedded Reader.
type Publisher struct {
	*manifest.Reader
	st   store.Store
	opts Options
}

// New returns a Publisher on st.
func New(st store.Store, opts Options) *Publisher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = 100_000
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 4 << 30
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Grace <= 0 {
		opts.Grace = time.Hour
	}
	if opts.BestBudget <= 0 {
		opts.BestBudget = defaultBestBudget
	}
	return &Publisher{Reader: manifest.NewReader(st), st: st, opts: opts}
}

// Deploy is a built directory ready to upload.
type Deploy struct {
	Site site.Name
	// Channel is where the deploy is headed. Blobs of the deploy live there
	// now (and in production) are known to be stored, and not asked for.
	Channel  site.Channel
	Commit   site.Commit
	Tree     string
	BuildKey string
	Dir      string // the files to publish
	Info     manifest.CommitInfo
	Build    manifest.BuildSummary
	Log      []byte
	// Repair rewrites every blob and the manifest instead of trusting what
	// the store has: self-heal found the deploy's objects missing or
	// corrupt.
	Repair bool
	// NetlifyTOML is the site's netlify.toml, nil if it has none: its
	// [[redirects]] and [[headers]] join the rules of Dir's _redirects and
	// _headers.
	NetlifyTOML []byte
	// MaxFile is the largest file the deploy may hold (the site's
	// build.max_file); default DefaultMaxFile.
	MaxFile int64
}

// DefaultMaxFile is Deploy.MaxFile's default.
const DefaultMaxFile = 100 << 20

// UploadStats says what an upload did.
type UploadStats struct {
	Files         int
	Bytes         int64
	BlobsUploaded int
	BytesUploaded int64
	// BlobsKnown were skipped without a request: a live manifest has them.
	// BlobsChecked were asked for (one Stat each).
	BlobsKnown   int
	BlobsChecked int
	// Variants is how many precompressed forms were made (not taken from a
	// live deploy).
	Variants int
}

// Upload stores d as an immutable deploy (blobs, log, manifest, build-key
// record) without making it live. Uploading the same build key twice is
// harmless: the second finds everything in place.
func (p *Publisher) Upload(ctx context.Context, d Deploy) (*manifest.Manifest, UploadStats, error) {
	var stats UploadStats
	began := time.Now()
	// The deploy ID is the key's prefix and the key is a storage key
	// element: anything but 16–64 lowercase hex would store a deploy that
	// Manifest and Reuse can never find.
	if len(d.BuildKey) < site.DeployIDLen || !site.DeployID(d.BuildKey).Valid() {
		return nil, stats, fmt.Errorf("uploading %s: build key %q is not %d to 64 lowercase hex characters", d.Site, d.BuildKey, site.DeployIDLen)
	}
	if d.MaxFile <= 0 {
		d.MaxFile = DefaultMaxFile
	}
	files, paths, err := p.hashDir(ctx, d.Dir, d.MaxFile)
	if err != nil {
		return nil, stats, fmt.Errorf("hashing %s output: %w", d.Site, err)
	}
	m := &manifest.Manifest{
		ID: manifest.DeployIDFor(d.BuildKey), Site: d.Site, Commit: d.Commit, Tree: d.Tree,
		BuildKey: d.BuildKey, Created: p.opts.Now().UTC(), Info: d.Info, Build: d.Build,
		Files: files, Rules: parseRules(d.Dir, d.NetlifyTOML),
	}
	for _, f := range files {
		m.Bytes += f.Size
	}
	stats.Files, stats.Bytes = len(files), m.Bytes
	log := d.Log
	for _, e := range m.Rules.Errors {
		log = fmt.Appendf(log, "rules: %s\n", e)
	}

	known, knownBlobs := p.knownFiles(ctx, d.Site, d.Channel)
	if d.Repair {
		known, knownBlobs = nil, nil // the live deploy is what is broken
	}
	tmp, err := os.MkdirTemp(p.opts.TempDir, "variants-")
	if err != nil {
		return nil, stats, fmt.Errorf("compressing %s output: %w", d.Site, err)
	}
	defer os.RemoveAll(tmp)
	if err := p.makeVariants(ctx, tmp, files, paths, known, &stats); err != nil {
		return nil, stats, fmt.Errorf("compressing %s output: %w", d.Site, err)
	}

	start := time.Now()
	if err := p.uploadBlobs(ctx, files, paths, knownBlobs, d.Repair, &stats); err != nil {
		return nil, stats, fmt.Errorf("uploading %s blobs: %w", d.Site, err)
	}
	// Blobs found in the store were trusted for Grace/2; past that, a
	// concurrent GC could have taken one, so this upload must start over.
	if took := time.Since(start); took > p.opts.Grace/2 {
		return nil, stats, fmt.Errorf("uploading %s blobs took %s, more than half the GC grace period %s: %w", d.Site, took.Round(time.Second), p.opts.Grace, ErrSlowUpload)
	}
	if len(log) > 0 {
		if _, err := p.st.Put(ctx, manifest.LogKey(d.Site, m.ID), bytes.NewReader(log), int64(len(log)), store.PutOptions{ContentType: "text/plain; charset=utf-8"}); err != nil {
			return nil, stats, fmt.Errorf("writing %s build log: %w", d.Site, err)
		}
	}
	m.Build.Upload = time.Since(began)
	// Manifests are immutable: if one exists for this key (an upload that
	// died before recording the key, or a race), it stands.
	err = p.putJSON(ctx, manifest.ManifestKey(d.Site, m.ID), m, store.PutOptions{IfNoneMatch: !d.Repair})
	if errors.Is(err, store.ErrPrecondition) {
		m, err = p.Manifest(ctx, d.Site, m.ID)
	}
	if err != nil {
		return nil, stats, fmt.Errorf("writing %s manifest %s: %w", d.Site, manifest.DeployIDFor(d.BuildKey), err)
	}
	if _, err := p.st.Put(ctx, manifest.BuildKeyKey(d.Site, d.BuildKey), bytes.NewReader([]byte(m.ID)), int64(len(m.ID)), store.PutOptions{}); err != nil {
		return nil, stats, fmt.Errorf("recording %s build key: %w", d.Site, err)
	}
	return m, stats, nil
}

// hashDir walks dir and hashes every regular file, concurrently. A file
// over maxFile fails it before anything is read or uploaded.
func (p *Publisher) hashDir(ctx context.Context, dir string, maxFile int64) (map[string]manifest.File, map[string]string, error) {
	type job struct{ rel, abs string }
	var jobs []job
	var total int64
	err := filepath.WalkDir(dir, func(abs string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !e.Type().IsRegular() {
			return nil // symlinks and devices are never published
		}
		rel, err := filepath.Rel(dir, abs)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !cleanRel(rel) || rel == rules.RedirectsFile || rel == rules.HeadersFile {
			return nil // rules files configure the deploy; Netlify does not serve them either
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Size() > maxFile {
			return fmt.Errorf("%w: %s is %s (%d bytes), over the limit of %s (%d bytes) per file (build.max_file)",
				ErrFileTooLarge, rel, units.Bytes(info.Size()), info.Size(), units.Bytes(maxFile), maxFile)
		}
		total += info.Size()
		jobs = append(jobs, job{rel, abs})
		if len(jobs) > p.opts.MaxFiles || total > p.opts.MaxBytes {
			return fmt.Errorf("%w: more than %d files or %d bytes", ErrTooLarge, p.opts.MaxFiles, p.opts.MaxBytes)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	files := make(map[string]manifest.File, len(jobs))
	results := make([]manifest.File, len(jobs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for i, j := range jobs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			f, err := hashFile(j.abs)
			if err != nil {
				return fmt.Errorf("hashing %s: %w", j.rel, err)
			}
			f.Type = contentType(j.rel, j.abs)
			results[i] = f
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	paths := make(map[string]string, len(jobs)) // sha → a file with that content
	for i, j := range jobs {
		files[j.rel] = results[i]
		paths[results[i].SHA256] = j.abs
	}
	return files, paths, nil
}

func hashFile(name string) (manifest.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return manifest.File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return manifest.File{}, err
	}
	return manifest.File{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// knownFiles returns the files of the deploys live on production and on
// channel c by content hash, and every blob they name: their manifests
// exist, so their blobs do, and GC keeps them while the pointers (or the
// production history) name them. Any error just means more blobs are
// checked one by one and more variants made.
func (p *Publisher) knownFiles(ctx context.Context, s site.Name, c site.Channel) (map[string]manifest.File, map[string]bool) {
	files, blobs := make(map[string]manifest.File), make(map[string]bool)
	channels := []site.Channel{site.Production}
	if c != "" && c != site.Production {
		channels = append(channels, c)
	}
	for _, ch := range channels {
		ptr, err := p.Pointer(ctx, s, ch)
		if err != nil {
			continue
		}
		m, err := p.Manifest(ctx, s, ptr.Deploy)
		if err != nil {
			p.opts.Logger.Warn("reading the live manifest to skip known blobs", "site", s, "channel", ch, "err", err)
			continue
		}
		for _, f := range m.Files {
			files[f.SHA256] = f
			f.Blobs(func(sha string) { blobs[sha] = true })
		}
	}
	return files, blobs
}

// uploadBlobs uploads the blobs the store does not have yet: those in known
// are skipped, the others are asked for and written when missing, or when
// too old to be safe from a concurrent GC (see Options.Grace).
func (p *Publisher) uploadBlobs(ctx context.Context, files map[string]manifest.File, paths map[string]string, known map[string]bool, rewrite bool, stats *UploadStats) error {
	type up struct {
		f    manifest.File
		path string
	}
	seen := make(map[string]bool, len(paths))
	var todo []up
	add := func(b manifest.File) {
		if seen[b.SHA256] {
			return
		}
		seen[b.SHA256] = true
		if known[b.SHA256] {
			stats.BlobsKnown++
			return
		}
		todo = append(todo, up{b, paths[b.SHA256]})
	}
	for _, f := range files {
		add(manifest.File{SHA256: f.SHA256, Size: f.Size, Type: f.Type})
		if v := f.Gzip; v != nil {
			add(manifest.File{SHA256: v.SHA256, Size: v.Size, Type: "application/gzip"})
		}
		if v := f.Brotli; v != nil {
			add(manifest.File{SHA256: v.SHA256, Size: v.Size, Type: "application/x-brotli"})
		}
	}
	stats.BlobsChecked = len(todo)
	trustAfter := time.Now().Add(-p.opts.Grace / 2)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	uploaded := make([]bool, len(todo))
	for i, u := range todo {
		g.Go(func() error {
			up, err := retry(ctx, func() (bool, error) { return p.uploadBlob(ctx, u.f, u.path, trustAfter, rewrite) })
			uploaded[i] = up
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, ok := range uploaded {
		if ok {
			stats.BlobsUploaded++
			stats.BytesUploaded += todo[i].f.Size
		}
	}
	return nil
}

// uploadBlob stores one blob unless the store has a young enough copy, and
// reports whether it wrote it.
func (p *Publisher) uploadBlob(ctx context.Context, f manifest.File, name string, trustAfter time.Time, rewrite bool) (bool, error) {
	key := manifest.BlobKey(f.SHA256)
	opts := store.PutOptions{IfNoneMatch: true, ContentType: f.Type}
	if rewrite {
		opts.IfNoneMatch = false // what is there may be corrupt
	} else if info, err := p.st.Stat(ctx, key); err == nil {
		if info.ModTime.After(trustAfter) {
			return false, nil
		}
		// An old blob no live manifest names may be GC's next victim:
		// writing it again makes it young.
		opts.IfNoneMatch = false
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("checking %s: %w", key, err)
	}
	fh, err := os.Open(name)
	if err != nil {
		return false, permanent{err}
	}
	defer fh.Close()
	_, err = p.st.Put(ctx, key, fh, f.Size, opts)
	if errors.Is(err, store.ErrPrecondition) {
		return false, nil // another publish (or our own lost reply) stored it just now
	}
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", key, err)
	}
	return true, nil
}

// permanent marks an error a retry cannot fix.
type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

// retry runs fn up to 4 times with jittered exponential backoff (0.2s,
// 0.4s, 0.8s), for the transient errors object storage answers now and
// then; a whole deploy is not redone for one failed request. Every blob
// write is idempotent, so a retry after a write that landed is harmless.
func retry[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	delay := backoff.Exponential{Base: 200 * time.Millisecond, Jitter: backoff.Jitter{Below: 0.5, Above: 0.5}}
	for attempt := 1; ; attempt++ {
		v, err := fn()
		var perm permanent
		if err == nil || attempt == 4 || ctx.Err() != nil || errors.As(err, &perm) {
			return v, err
		}
		t := time.NewTimer(delay.Delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
	}
}

func (p *Publisher) putJSON(ctx context.Context, key string, v any, opts store.PutOptions) error {
	// Compact: a 10,000-file manifest is rewritten for every deploy.
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	opts.ContentType = "application/json"
	_, err = p.st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), opts)
	return err
}

// Reuse returns the deploy built before with this build key, or ErrNotFound.
// This is what makes a revert instant.
func (p *Publisher) Reuse(ctx context.Context, s site.Name, buildKey string) (*manifest.Manifest, error) {
	obj, _, err := p.st.Get(ctx, manifest.BuildKeyKey(s, buildKey))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading build key of %s: %w", s, err)
	}
	id, err := io.ReadAll(io.LimitReader(obj, 128))
	obj.Close()
	if err != nil {
		return nil, fmt.Errorf("reading build key of %s: %w", s, err)
	}
	return p.Manifest(ctx, s, site.DeployID(bytes.TrimSpace(id)))
}

// Cause says why a channel is made to serve a deploy: what happened, and
// the commit that made it happen.
type Cause struct {
	Kind   manifest.EventKind
	Commit site.Commit
	// Info describes Commit; when empty and Commit is the one the deploy
	// was built from, the manifest's description is taken.
	Info manifest.CommitInfo
}

// Activate points channel c of site s at deploy m for cause: the atomic
// commit point. The pointer records the change as an event in the same
// write. The write is conditional on the pointer it replaces, so two
// writers never lose each other's update; on a lost race it rereads and
// tries again.
func (p *Publisher) Activate(ctx context.Context, s site.Name, c site.Channel, m *manifest.Manifest, cause Cause) (manifest.Pointer, error) {
	switch cause.Kind {
	case manifest.Built, manifest.Reused, manifest.RolledBack, manifest.Repaired:
	default:
		return manifest.Pointer{}, fmt.Errorf("activating %s/%s: unknown event kind %q", s, c, cause.Kind)
	}
	if cause.Info == (manifest.CommitInfo{}) && cause.Commit == m.Commit {
		cause.Info = m.Info
	}
	cause.Info.Subject = truncate(cause.Info.Subject, maxSubject)
	key := manifest.PointerKey(s, c)
	for attempt := 0; ; attempt++ {
		cur, etag, err := p.PointerVersion(ctx, s, c)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return manifest.Pointer{}, fmt.Errorf("activating %s/%s: %w", s, c, err)
		}
		now := p.opts.Now().UTC()
		ev := manifest.Event{Kind: cause.Kind, Commit: cause.Commit, Info: cause.Info, Deploy: m.ID, At: now}
		if cur.Deploy != m.ID {
			ev.Previous = cur.Deploy
		}
		var next manifest.Pointer
		switch {
		case err == nil && cur.Deploy == m.ID && cur.Commit == cause.Commit && cause.Kind != manifest.Repaired:
			// A retry of a publish that landed: nothing changes. Only the
			// lease holder may say so: an old owner resumed after its new
			// one published the same deploy must not report it live (its
			// commit status, its notifications).
			if err := p.fence(s, cur, &manifest.Pointer{}); err != nil {
				return manifest.Pointer{}, fmt.Errorf("activating %s/%s: %w", s, c, err)
			}
			return cur, nil
		case err == nil && cur.Deploy == m.ID && cur.Commit == cause.Commit:
			// A repair wrote the same deploy again: the channel serves what
			// it did, whole again, which the history should tell.
			next = cur
		default:
			next = manifest.Pointer{Deploy: m.ID, Commit: cause.Commit, PublishedAt: now}
			next.History, next.Since = pushHistory(cur, m.ID, now)
			if etag != "" {
				next.Previous = cur.Deploy
				if cur.Deploy == m.ID {
					next.Previous = cur.Previous
				}
			}
		}
		next.Events = pushEvent(cur.Events, ev)
		if err := p.fence(s, cur, &next); err != nil {
			return manifest.Pointer{}, fmt.Errorf("activating %s/%s: %w", s, c, err)
		}
		opts := store.PutOptions{IfNoneMatch: true}
		if etag != "" {
			opts = store.PutOptions{IfMatch: etag}
		}
		err = p.putJSON(ctx, key, next, opts)
		if errors.Is(err, store.ErrPrecondition) && attempt < 5 {
			continue
		}
		if err != nil {
			return manifest.Pointer{}, fmt.Errorf("activating %s/%s: %w", s, c, err)
		}
		p.changed(s, c)
		return next, nil
	}
}

// fence stamps next with this builder's lease generation, or refuses the
// write: the lease is not ours now, or cur was written under a newer one.
// The check is not atomic with the write; the write being conditional on
// cur is what makes it hold: a new owner stamps cur first (Stamp), so a
// builder paused between this check and its write loses the condition.
func (p *Publisher) fence(s site.Name, cur manifest.Pointer, next *manifest.Pointer) error {
	if p.opts.Fence == nil {
		return nil
	}
	gen, ok := p.opts.Fence.Owns(s)
	if !ok {
		return fmt.Errorf("%w: not held by this builder", ErrFenced)
	}
	if cur.Generation > gen {
		return fmt.Errorf("%w: the pointer has generation %d, this builder %d", ErrFenced, cur.Generation, gen)
	}
	next.Generation = gen
	return nil
}

// Stamp writes generation gen into every channel pointer of s that has an
// older one, each conditionally on the version read. A builder calls it on
// taking a site's lease, before it publishes: from then on, an old owner's
// pointer write fails (its condition, or its generation, is stale).
func (p *Publisher) Stamp(ctx context.Context, s site.Name, gen uint64) error {
	chans, err := p.Channels(ctx, s)
	if err != nil {
		return fmt.Errorf("stamping %s: %w", s, err)
	}
	for c := range chans {
		for attempt := 0; ; attempt++ {
			cur, etag, err := p.PointerVersion(ctx, s, c)
			if errors.Is(err, ErrNotFound) {
				break // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("stamping %s/%s: %w", s, c, err)
			}
			if cur.Generation > gen {
				return fmt.Errorf("stamping %s/%s: %w: the pointer has generation %d, this builder %d", s, c, ErrFenced, cur.Generation, gen)
			}
			if cur.Generation == gen {
				break
			}
			cur.Generation = gen
			err = p.putJSON(ctx, manifest.PointerKey(s, c), cur, store.PutOptions{IfMatch: etag})
			if errors.Is(err, store.ErrPrecondition) && attempt < 5 {
				continue
			}
			if err != nil {
				return fmt.Errorf("stamping %s/%s: %w", s, c, err)
			}
			break
		}
	}
	return nil
}

// pushEvent returns events with ev first and the oldest dropped past
// manifest.MaxEvents.
func pushEvent(events []manifest.Event, ev manifest.Event) []manifest.Event {
	out := make([]manifest.Event, 0, min(len(events)+1, manifest.MaxEvents))
	out = append(out, ev)
	return append(out, events[:min(len(events), manifest.MaxEvents-1)]...)
}

// maxSubject bounds the commit subject an event keeps: a pointer is read
// often, and 50 events of it should stay small.
const maxSubject = 200

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// maxHistory bounds Pointer.History, and so server.retention.
const maxHistory = 100

// pushHistory returns the history of a pointer that replaces cur with id,
// published at now: id first, each deploy once, with when each went live
// (zero where a pointer written before Since does not say).
func pushHistory(cur manifest.Pointer, id site.DeployID, now time.Time) ([]site.DeployID, []time.Time) {
	old := cur.History
	if len(old) == 0 && cur.Deploy != "" {
		old = []site.DeployID{cur.Deploy} // a pointer written before histories
	}
	since := func(i int) time.Time {
		switch {
		case len(cur.Since) == len(cur.History) && i < len(cur.Since):
			return cur.Since[i]
		case i == 0 && old[0] == cur.Deploy:
			return cur.PublishedAt
		}
		return time.Time{}
	}
	h := make([]site.DeployID, 0, min(len(old)+1, maxHistory))
	at := make([]time.Time, 0, cap(h))
	h, at = append(h, id), append(at, now)
	for i, d := range old {
		if d != id && len(h) < maxHistory {
			h, at = append(h, d), append(at, since(i))
		}
	}
	return h, at
}

func (p *Publisher) changed(s site.Name, c site.Channel) {
	if p.opts.OnChanged != nil {
		p.opts.OnChanged(s, c)
	}
}

// DeleteChannel removes a channel (a closed pull request's preview): its
// host answers 404 from then on. The deploy itself stays, for permalinks,
// until retention removes it.
func (p *Publisher) DeleteChannel(ctx context.Context, s site.Name, c site.Channel) error {
	if c == site.Production {
		return fmt.Errorf("deleting %s/%s: production is never deleted", s, c)
	}
	// The store has no conditional delete: this check is all that fences
	// a delete, and the new owner recreates a channel it still wants.
	if p.opts.Fence != nil {
		if _, ok := p.opts.Fence.Owns(s); !ok {
			return fmt.Errorf("deleting %s/%s: %w", s, c, ErrFenced)
		}
	}
	if err := p.st.Delete(ctx, manifest.PointerKey(s, c)); err != nil {
		return fmt.Errorf("deleting %s/%s: %w", s, c, err)
	}
	p.changed(s, c)
	return nil
}
