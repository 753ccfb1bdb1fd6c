// Package serve is the data plane: host → (site, channel) → pointer →
// manifest → blob → http.ServeContent. It reads deploys and never builds or
// fetches: it does not import the control plane.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/sitehost/sitehost/internal/accesslog"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// Reader is the read side of published deploys: a manifest.Reader, or
// the publisher that embeds one.
type Reader interface {
	Pointer(ctx context.Context, s site.Name, c site.Channel) (manifest.Pointer, error)
	Manifest(ctx context.Context, s site.Name, id site.DeployID) (*manifest.Manifest, error)
	OpenBlob(ctx context.Context, sha string) (store.Object, error)
}

// Blobs opens file bodies: a cache in front of the Reader (blobcache).
type Blobs interface {
	Open(ctx context.Context, sha string, size int64) (store.Object, error)
}

// Site is a served site: its name, production domains (primary first) and
// how its rules apply.
type Site struct {
	Name    site.Name
	Domains []string
	Rules   RuleOptions
	Skew    SkewOptions
}

// RuleOptions are a site's settings for its Netlify rules.
type RuleOptions struct {
	// Proxy lets 200 rules to absolute URLs proxy; without it they are
	// left out, so no site is an open relay.
	Proxy bool
	// ProxyPrivate also allows loopback, private and link-local targets.
	ProxyPrivate  bool
	ProxyTimeout  time.Duration // default 26s
	ProxyMaxBytes int64         // response body limit; default 64 MiB
	// CountryHeader names the trusted request header that carries the
	// client's country, for Country= conditions.
	CountryHeader string
}

// SkewOptions keep the fingerprinted assets of the previous Deploys
// deploys of a channel answering for Grace after each was replaced, so a
// page loaded before a deploy can still load its scripts and styles.
type SkewOptions struct {
	Deploys int
	Grace   time.Duration
}

// Options configure a Handler.
type Options struct {
	// Routes are the sites served until SetRoutes; nil serves none.
	Routes *Routes
	Reader Reader
	// Blobs opens file bodies; nil opens them with Reader.OpenBlob.
	Blobs  Blobs
	Logger *slog.Logger
	// PointerTTL bounds how stale a cached channel pointer may be (default 2s).
	PointerTTL time.Duration
	// Observe, when set, is told about every answer: the access log and
	// the request metrics.
	Observe func(*http.Request, accesslog.Entry)
	// StoreTimeout bounds one read of a pointer or manifest (default 5s):
	// when storage hangs, a request falls back to what is cached or
	// answers 503 instead of waiting for the client to give up.
	StoreTimeout time.Duration
	// Write sizes the write deadline of each file body and proxied answer
	// (the http.Server's WriteTimeout covers the rest); zero sets none.
	Write WriteLimits
}

// Handler serves every site. As an http.Handler it is the whole data
// plane (Observe → Resolve → Serve); a server with more listeners composes
// those three itself.
type Handler struct {
	opts    Options
	routes  atomic.Pointer[Routes] // swapped whole by SetRoutes
	proxies proxies
	whole   http.Handler // Observe → Resolve → Serve

	refresh singleflight.Group // one store read per stale pointer

	mu       sync.Mutex
	pointers map[pointerKey]cachedPointer
	gens     map[pointerKey]uint64 // bumped by Invalidate
	// deploys are manifests read, each compiled for the settings of its
	// site (deploy.site); SetRoutes keeps them.
	deploys map[site.DeployID]*deploy
}

type pointerKey struct {
	site    site.Name
	channel site.Channel
}

type cachedPointer struct {
	ptr     manifest.Pointer
	err     error
	fetched time.Time
}

// maxDeploys bounds the deploy cache; manifests are immutable, so any
// entry may go.
const maxDeploys = 256

// maxPointers bounds the pointer cache. Preview hosts are chosen by whoever
// sends the request (pr-1--, pr-2--, …), and each caches a "not found".
const maxPointers = 4096

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PointerTTL <= 0 {
		opts.PointerTTL = 2 * time.Second
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 5 * time.Second
	}
	if opts.Blobs == nil {
		opts.Blobs = readerBlobs{opts.Reader}
	}
	h := &Handler{
		opts:     opts,
		pointers: make(map[pointerKey]cachedPointer),
		gens:     make(map[pointerKey]uint64),
		deploys:  make(map[site.DeployID]*deploy),
	}
	h.proxies.logger = opts.Logger
	h.proxies.write = opts.Write
	h.routes.Store(opts.Routes)
	h.whole = h.Observe(h.Resolve(h.Serve()))
	return h
}

// SetRoutes serves rt from now on (a reloaded config), in one store: new
// hosts answer, removed ones 404, changed settings apply to the next
// request. What is cached survives, so a reload never makes the data
// plane read the store again: pointers and manifests of every site still
// routed, and the compiled deploys of sites whose settings did not change.
// A changed site's deploys are compiled again from their cached
// manifests when next asked for; a removed site's are dropped.
func (h *Handler) SetRoutes(rt *Routes) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Under h.mu, so a deploy compiled meanwhile is kept only if its
	// settings are still current (keep).
	h.routes.Store(rt)
	for id, d := range h.deploys {
		switch st := rt.site(d.m.Site); {
		case st == nil:
			delete(h.deploys, id)
		case d.site != st && sameSettings(d.site, st):
			h.deploys[id] = d.rebind(st)
		}
	}
	for k := range h.pointers {
		if rt.site(k.site) == nil {
			delete(h.pointers, k)
		}
	}
}

// Warm reads every served site's production pointer into the cache, so
// the first requests do not wait for the store. It fails when the store
// cannot be read; a site with nothing published yet is fine.
func (h *Handler) Warm(ctx context.Context) error {
	rt := h.routes.Load()
	if rt == nil {
		return nil
	}
	for name := range rt.sites {
		if _, err := h.pointer(ctx, name, site.Production); err != nil && !errors.Is(err, manifest.ErrNotFound) {
			return fmt.Errorf("reading the live pointer of %s: %w", name, err)
		}
	}
	return nil
}

// Invalidate marks a cached pointer stale, so a new deploy serves at once.
// The stale copy is kept: if the store cannot be read, it is still served.
func (h *Handler) Invalidate(s site.Name, c site.Channel) {
	k := pointerKey{s, c}
	h.mu.Lock()
	if cp, ok := h.pointers[k]; ok {
		cp.fetched = time.Time{}
		h.pointers[k] = cp
	}
	// A read that started before this moment may return the old pointer:
	// it must neither be cached nor shared with reads that start after.
	h.gens[k]++
	h.mu.Unlock()
}

// ServeHTTP is the whole data plane: Observe → Resolve → Serve.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.whole.ServeHTTP(w, r)
}

// Observe tells Options.Observe about every answer of next, with the site
// Resolve found inside it (next without Options.Observe).
func (h *Handler) Observe(next http.Handler) http.Handler {
	if h.opts.Observe == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &accesslog.Recorder{ResponseWriter: w}
		r, sl := withSlot(r)
		// Deferred: a proxied answer cut off midway ends in a panic
		// (http.ErrAbortHandler), and it must be counted too.
		defer func() {
			v := recover()
			e := rec.Entry("", r, start)
			if v != nil && rec.Status == 0 {
				e.Status = http.StatusBadGateway
			}
			e.Host = sl.t.Host
			if sl.ok {
				e.Site = string(sl.t.Site)
			} else if e.Host == "" {
				e.Host = NormalizeHost(r.Host) // next answered before Resolve
			}
			h.opts.Observe(r, e)
			if v != nil {
				panic(v)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// Resolve finds the target of the request's host in the routes live now
// and passes it to next in the request's context (TargetFrom); a host no
// site is served at gets 404.
func (h *Handler) Resolve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := h.routes.Load().Resolve(r.Host)
		sl, observed := r.Context().Value(slotKey{}).(*slot)
		if !observed {
			r, sl = withSlot(r)
		}
		sl.t, sl.ok = t, ok
		if !ok {
			// Fixed text: the Host header is the client's, and may be 64 KiB.
			http.Error(w, NoSiteBody, http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Serve answers a request from the deploy its target names; Resolve must
// have run before it.
func (h *Handler) Serve() http.Handler { return http.HandlerFunc(h.serve) }

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	t, ok := TargetFrom(r.Context())
	if !ok {
		// Not resolved: a pipeline without Resolve serves no site.
		http.Error(w, NoSiteBody, http.StatusNotFound)
		return
	}
	if t.Alias != "" {
		h.serveAlias(w, r, t)
		return
	}
	if t.Preview {
		w.Header().Set("X-Robots-Tag", "noindex")
	}
	d, ptr, err := h.deploy(r.Context(), t.site, t.Channel, t.Deploy)
	switch {
	case errors.Is(err, manifest.ErrNotFound):
		http.Error(w, "404 not found: nothing is published here yet", http.StatusNotFound)
		return
	case err != nil:
		h.opts.Logger.Error("resolving deploy", "site", t.Site, "channel", t.Channel, "deploy", t.Deploy, "err", err)
		http.Error(w, "503 service unavailable", http.StatusServiceUnavailable)
		return
	}
	h.serveDeploy(w, r, t.site, d, ptr, t.Host)
}

// serveAlias answers an alias domain: its domain-level rules first
// ("https://old.example.com/* https://new.example.com/:splat 301!"), then
// 301 to the primary, same path, query and port.
func (h *Handler) serveAlias(w http.ResponseWriter, r *http.Request, t Target) {
	if d, _, err := h.deploy(r.Context(), t.site, site.Production, ""); err == nil && d.hostRules != nil {
		if m, ok := d.hostRules.Match(h.ruleRequest(r, t.site, t.Host), false); ok {
			h.applyRule(w, r, t.site, d, m)
			return
		}
	}
	h.redirectAlias(w, r, t.Alias)
}

// redirectAlias answers an alias domain with 301 to the primary, same path,
// query and port.
func (h *Handler) redirectAlias(w http.ResponseWriter, r *http.Request, primary string) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	target := primary
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" {
		target = net.JoinHostPort(primary, port)
	}
	u := scheme + "://" + target + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	Redirect(w, u, http.StatusMovedPermanently)
}

// NoSiteBody answers a host no site is served at. Error bodies never
// repeat what the request said (its host, path or headers): the log has
// those.
const NoSiteBody = "404 not found: no site is served at this host"

// Redirect answers code with Location u and no body: http.Redirect's
// body repeats the URL, which comes from the request.
func Redirect(w http.ResponseWriter, u string, code int) {
	w.Header().Set("Location", u)
	w.WriteHeader(code)
}

// deploy returns the deploy of site st to serve: deploy id, or the one
// channel c points at (with its pointer, for skew protection).
func (h *Handler) deploy(ctx context.Context, st *Site, c site.Channel, id site.DeployID) (*deploy, *manifest.Pointer, error) {
	var ptr *manifest.Pointer
	if id == "" {
		p, err := h.pointer(ctx, st.Name, c)
		if err != nil {
			return nil, nil, err
		}
		ptr, id = &p, p.Deploy
	}
	d, err := h.loadDeploy(ctx, st, id)
	return d, ptr, err
}

// loadDeploy returns deploy id of site st compiled for st's settings:
// from the cache, compiled again from a cached manifest when the settings
// changed, or read and compiled; concurrent requests share one read.
func (h *Handler) loadDeploy(ctx context.Context, st *Site, id site.DeployID) (*deploy, error) {
	h.mu.Lock()
	d, ok := h.deploys[id]
	h.mu.Unlock()
	if ok && d.site == st {
		return d, nil
	}
	// Keyed by the settings too: requests of two configs do not share.
	res, err, _ := h.refresh.Do(fmt.Sprintf("deploy %s/%s@%p", st.Name, id, st), func() (any, error) {
		h.mu.Lock()
		d, ok := h.deploys[id]
		h.mu.Unlock()
		var m *manifest.Manifest
		if ok && d.m.Site == st.Name {
			m = d.m // cached, compiled for other settings
		} else {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.StoreTimeout)
			defer cancel()
			var err error
			if m, err = h.opts.Reader.Manifest(ctx, st.Name, id); err != nil {
				return nil, err
			}
		}
		d = compile(m, st)
		h.keep(d)
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*deploy), nil
}

// keep caches d, unless its site is no longer routed, or d was compiled
// for settings no longer routed (a request of the config before a reload)
// and the cache has the manifest already.
func (h *Handler) keep(d *deploy) {
	h.mu.Lock()
	defer h.mu.Unlock()
	current := h.routes.Load().site(d.m.Site)
	if current == nil {
		return
	}
	if d.site != current && sameSettings(d.site, current) {
		d = d.rebind(current)
	}
	_, cached := h.deploys[d.m.ID]
	if cached && d.site != current {
		return
	}
	if !cached && len(h.deploys) >= maxDeploys {
		for k := range h.deploys {
			delete(h.deploys, k)
			break
		}
	}
	h.deploys[d.m.ID] = d
}

// deployGone drops a cached deploy and reports whether the store no
// longer has it.
func (h *Handler) deployGone(ctx context.Context, m *manifest.Manifest) bool {
	h.mu.Lock()
	delete(h.deploys, m.ID)
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.opts.StoreTimeout)
	defer cancel()
	_, err := h.opts.Reader.Manifest(ctx, m.Site, m.ID)
	return errors.Is(err, manifest.ErrNotFound)
}

func (h *Handler) pointer(ctx context.Context, s site.Name, c site.Channel) (manifest.Pointer, error) {
	k := pointerKey{s, c}
	h.mu.Lock()
	cp, ok := h.pointers[k]
	gen := h.gens[k]
	h.mu.Unlock()
	flight := fmt.Sprintf("%s@%d", k, gen)
	// Past half the TTL a busy site refreshes in the background, so its
	// requests never wait for the store; only a pointer older than the TTL
	// (an idle site, or one just invalidated) is read before answering.
	age := time.Since(cp.fetched)
	if ok && age < h.opts.PointerTTL {
		if age >= h.opts.PointerTTL/2 {
			h.refresh.DoChan(flight, func() (any, error) { return h.refreshPointer(ctx, k, gen), nil })
		}
		return cp.ptr, cp.err
	}
	// Concurrent requests share one read.
	res, _, _ := h.refresh.Do(flight, func() (any, error) { return h.refreshPointer(ctx, k, gen), nil })
	return res.(cachedPointer).ptr, res.(cachedPointer).err
}

func (k pointerKey) String() string { return string(k.site) + "/" + string(k.channel) }

// refreshPointer reads a pointer from the store into the cache. It runs on
// its own context, so one client going away does not fail the others.
func (h *Handler) refreshPointer(ctx context.Context, k pointerKey, gen uint64) cachedPointer {
	start := time.Now() // what is read is at least this fresh
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.StoreTimeout)
	defer cancel()
	ptr, err := h.opts.Reader.Pointer(ctx, k.site, k.channel)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gens[k] != gen {
		return cachedPointer{ptr: ptr, err: err} // invalidated meanwhile: not cached
	}
	if err != nil && !errors.Is(err, manifest.ErrNotFound) {
		if cp, ok := h.pointers[k]; ok && cp.err == nil {
			// The store is unreachable: keep serving what we knew, and do
			// not ask again before the next TTL, so an outage does not make
			// every request wait for the store to time out.
			h.opts.Logger.Warn("refreshing pointer failed; serving cached", "site", k.site, "channel", k.channel, "err", err)
			cp.fetched = time.Now()
			h.pointers[k] = cp
			return cp
		}
		return cachedPointer{ptr: ptr, err: err}
	}
	if _, ok := h.pointers[k]; !ok && len(h.pointers) >= maxPointers {
		h.evictPointers()
	}
	cp := cachedPointer{ptr: ptr, err: err, fetched: start}
	h.pointers[k] = cp
	return cp
}

// readerBlobs opens blobs straight from the Reader, uncached.
type readerBlobs struct{ r Reader }

func (b readerBlobs) Open(ctx context.Context, sha string, _ int64) (store.Object, error) {
	return b.r.OpenBlob(ctx, sha)
}

// evictPointers makes room in the full pointer cache: first every cached
// "not found", and if that frees nothing, one entry at random. The caller
// holds h.mu.
func (h *Handler) evictPointers() {
	for k, cp := range h.pointers {
		if cp.err != nil {
			delete(h.pointers, k)
		}
	}
	if len(h.pointers) < maxPointers {
		return
	}
	for k := range h.pointers {
		delete(h.pointers, k)
		return
	}
}

// fingerprint matches asset names that carry a content hash (Hugo's
// resources.Fingerprint, bundlers' name.[hash].ext): safe to cache forever.
var fingerprint = regexp.MustCompile(`[.-]([0-9a-f]{8,})\.[a-z0-9]+$`)

// fingerprinted reports whether name carries a content hash. A run of digits
// only is a date or a version ("photo-20240115.jpg"), whose file may change
// under the same name, so the hash must contain a letter; the few real
// hashes without one are merely revalidated.
func fingerprinted(name string) bool {
	m := fingerprint.FindStringSubmatch(name)
	return m != nil && strings.ContainsAny(m[1], "abcdef")
}

func cacheControl(name, typ string) string {
	if !strings.HasPrefix(typ, "text/html") && fingerprinted(name) {
		return "public, max-age=31536000, immutable"
	}
	return "public, max-age=0, must-revalidate"
}
