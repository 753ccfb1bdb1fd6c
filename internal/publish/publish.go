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
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/backoff"
	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
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
}

// Publisher writes and reads deploys.
type Publisher struct {
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
	return &Publisher{st: st, opts: opts}
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
	Info     CommitInfo
	Build    BuildSummary
	Log      []byte
	// Repair rewrites every blob and the manifest instead of trusting what
	// the store has: self-heal found the deploy's objects missing or
	// corrupt.
	Repair bool
	// NetlifyTOML is the site's netlify.toml, nil if it has none: its
	// [[redirects]] and [[headers]] join the rules of Dir's _redirects and
	// _headers.
	NetlifyTOML []byte
}

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
func (p *Publisher) Upload(ctx context.Context, d Deploy) (*Manifest, UploadStats, error) {
	var stats UploadStats
	began := time.Now()
	// The deploy ID is the key's prefix and the key is a storage key
	// element: anything but 16–64 lowercase hex would store a deploy that
	// Manifest and Reuse can never find.
	if len(d.BuildKey) < site.DeployIDLen || !site.DeployID(d.BuildKey).Valid() {
		return nil, stats, fmt.Errorf("uploading %s: build key %q is not %d to 64 lowercase hex characters", d.Site, d.BuildKey, site.DeployIDLen)
	}
	files, paths, err := p.hashDir(ctx, d.Dir)
	if err != nil {
		return nil, stats, fmt.Errorf("hashing %s output: %w", d.Site, err)
	}
	m := &Manifest{
		ID: DeployIDFor(d.BuildKey), Site: d.Site, Commit: d.Commit, Tree: d.Tree,
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
		if _, err := p.st.Put(ctx, logKey(d.Site, m.ID), bytes.NewReader(log), int64(len(log)), store.PutOptions{ContentType: "text/plain; charset=utf-8"}); err != nil {
			return nil, stats, fmt.Errorf("writing %s build log: %w", d.Site, err)
		}
	}
	m.Build.Upload = time.Since(began)
	// Manifests are immutable: if one exists for this key (an upload that
	// died before recording the key, or a race), it stands.
	err = p.putJSON(ctx, manifestKey(d.Site, m.ID), m, store.PutOptions{IfNoneMatch: !d.Repair})
	if errors.Is(err, store.ErrPrecondition) {
		m, err = p.Manifest(ctx, d.Site, m.ID)
	}
	if err != nil {
		return nil, stats, fmt.Errorf("writing %s manifest %s: %w", d.Site, DeployIDFor(d.BuildKey), err)
	}
	if _, err := p.st.Put(ctx, buildKeyKey(d.Site, d.BuildKey), bytes.NewReader([]byte(m.ID)), int64(len(m.ID)), store.PutOptions{}); err != nil {
		return nil, stats, fmt.Errorf("recording %s build key: %w", d.Site, err)
	}
	return m, stats, nil
}

// hashDir walks dir and hashes every regular file, concurrently.
func (p *Publisher) hashDir(ctx context.Context, dir string) (map[string]File, map[string]string, error) {
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
	files := make(map[string]File, len(jobs))
	results := make([]File, len(jobs))
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

func hashFile(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	return File{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// knownFiles returns the files of the deploys live on production and on
// channel c by content hash, and every blob they name: their manifests
// exist, so their blobs do, and GC keeps them while the pointers (or the
// production history) name them. Any error just means more blobs are
// checked one by one and more variants made.
func (p *Publisher) knownFiles(ctx context.Context, s site.Name, c site.Channel) (map[string]File, map[string]bool) {
	files, blobs := make(map[string]File), make(map[string]bool)
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
			f.blobs(func(sha string) { blobs[sha] = true })
		}
	}
	return files, blobs
}

// uploadBlobs uploads the blobs the store does not have yet: those in known
// are skipped, the others are asked for and written when missing, or when
// too old to be safe from a concurrent GC (see Options.Grace).
func (p *Publisher) uploadBlobs(ctx context.Context, files map[string]File, paths map[string]string, known map[string]bool, rewrite bool, stats *UploadStats) error {
	type up struct {
		f    File
		path string
	}
	seen := make(map[string]bool, len(paths))
	var todo []up
	add := func(b File) {
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
		add(File{SHA256: f.SHA256, Size: f.Size, Type: f.Type})
		if v := f.Gzip; v != nil {
			add(File{SHA256: v.SHA256, Size: v.Size, Type: "application/gzip"})
		}
		if v := f.Brotli; v != nil {
			add(File{SHA256: v.SHA256, Size: v.Size, Type: "application/x-brotli"})
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
func (p *Publisher) uploadBlob(ctx context.Context, f File, name string, trustAfter time.Time, rewrite bool) (bool, error) {
	key := BlobKey(f.SHA256)
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
func (p *Publisher) Reuse(ctx context.Context, s site.Name, buildKey string) (*Manifest, error) {
	obj, _, err := p.st.Get(ctx, buildKeyKey(s, buildKey))
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

// Activate points channel c of site s at deploy m: the atomic commit point.
// The write is conditional on the pointer it replaces, so two writers never
// lose each other's update; on a lost race it rereads and tries again.
func (p *Publisher) Activate(ctx context.Context, s site.Name, c site.Channel, m *Manifest, commit site.Commit) (Pointer, error) {
	key := pointerKey(s, c)
	for attempt := 0; ; attempt++ {
		cur, etag, err := p.pointer(ctx, s, c)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Pointer{}, fmt.Errorf("activating %s/%s: %w", s, c, err)
		}
		if err == nil && cur.Deploy == m.ID && cur.Commit == commit {
			return cur, nil
		}
		now := p.opts.Now().UTC()
		next := Pointer{Deploy: m.ID, Commit: commit, PublishedAt: now}
		next.History, next.Since = pushHistory(cur, m.ID, now)
		opts := store.PutOptions{IfNoneMatch: true}
		if etag != "" {
			opts = store.PutOptions{IfMatch: etag}
			next.Previous = cur.Deploy
			if cur.Deploy == m.ID {
				next.Previous = cur.Previous
			}
		}
		err = p.putJSON(ctx, key, next, opts)
		if errors.Is(err, store.ErrPrecondition) && attempt < 5 {
			continue
		}
		if err != nil {
			return Pointer{}, fmt.Errorf("activating %s/%s: %w", s, c, err)
		}
		p.changed(s, c)
		return next, nil
	}
}

// maxHistory bounds Pointer.History, and so server.retention.
const maxHistory = 100

// pushHistory returns the history of a pointer that replaces cur with id,
// published at now: id first, each deploy once, with when each went live
// (zero where a pointer written before Since does not say).
func pushHistory(cur Pointer, id site.DeployID, now time.Time) ([]site.DeployID, []time.Time) {
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
	if err := p.st.Delete(ctx, pointerKey(s, c)); err != nil {
		return fmt.Errorf("deleting %s/%s: %w", s, c, err)
	}
	p.changed(s, c)
	return nil
}

// Channels lists a site's channels and their pointers.
func (p *Publisher) Channels(ctx context.Context, s site.Name) (map[site.Channel]Pointer, error) {
	prefix := path.Join("sites", string(s), "channels") + "/"
	out := make(map[site.Channel]Pointer)
	for info, err := range p.st.List(ctx, prefix) {
		if err != nil {
			return nil, fmt.Errorf("listing channels of %s: %w", s, err)
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(info.Key, prefix), ".json")
		c := site.Channel(name)
		if !ok || !c.Valid() {
			continue
		}
		ptr, err := p.Pointer(ctx, s, c)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while we listed
		}
		if err != nil {
			return nil, err
		}
		out[c] = ptr
	}
	return out, nil
}

// Pointer reads a channel's pointer; ErrNotFound if the channel does not exist.
func (p *Publisher) Pointer(ctx context.Context, s site.Name, c site.Channel) (Pointer, error) {
	ptr, _, err := p.pointer(ctx, s, c)
	return ptr, err
}

func (p *Publisher) pointer(ctx context.Context, s site.Name, c site.Channel) (Pointer, string, error) {
	var ptr Pointer
	info, err := p.getJSON(ctx, pointerKey(s, c), &ptr)
	return ptr, info.ETag, err
}

// Manifest reads a deploy's manifest; ErrNotFound if there is none.
func (p *Publisher) Manifest(ctx context.Context, s site.Name, id site.DeployID) (*Manifest, error) {
	if !id.Valid() {
		return nil, ErrNotFound
	}
	var m Manifest
	if _, err := p.getJSON(ctx, manifestKey(s, id), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Log returns a deploy's build log.
func (p *Publisher) Log(ctx context.Context, s site.Name, id site.DeployID) ([]byte, error) {
	obj, _, err := p.st.Get(ctx, logKey(s, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(io.LimitReader(obj, 16<<20))
}

// OpenBlob opens a file body by its sha256.
func (p *Publisher) OpenBlob(ctx context.Context, sha string) (store.Object, error) {
	if !validSHA256(sha) {
		return nil, fmt.Errorf("blob %q: %w", sha, ErrNotFound)
	}
	obj, _, err := p.st.Get(ctx, BlobKey(sha))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("blob %s: %w", sha, ErrNotFound)
	}
	return obj, err
}

func (p *Publisher) getJSON(ctx context.Context, key string, v any) (store.Info, error) {
	obj, info, err := p.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return info, ErrNotFound
	}
	if err != nil {
		return info, fmt.Errorf("reading %s: %w", key, err)
	}
	defer obj.Close()
	// Manifests of very large sites run to tens of MB; the cap stops a
	// corrupt object from exhausting memory.
	if err := json.NewDecoder(io.LimitReader(obj, 256<<20)).Decode(v); err != nil {
		return info, fmt.Errorf("decoding %s: %w: %w", key, ErrCorrupt, err)
	}
	return info, nil
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
