package serve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/compress"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/rules"
)

// serveDeploy answers a request from deploy d with Netlify's order: a file
// that exists shadows every rule but the forced ones; otherwise the first
// matching rule applies; otherwise the custom 404 page.
func (h *Handler) serveDeploy(w http.ResponseWriter, r *http.Request, st *Site, d *deploy, ptr *manifest.Pointer, host string) {
	res, from := d.resolve(r.URL.Path), d
	if !res.found() && ptr != nil {
		// An asset of a deploy replaced moments ago, asked for by a page
		// loaded before: it exists, as far as this request is concerned.
		if old, f, ok := h.skewed(r.Context(), st, ptr, r.URL.Path); ok {
			res, from = f, old
		}
	}
	if d.redirects != nil {
		if m, ok := d.redirects.Match(h.ruleRequest(r, st, host), res.found()); ok {
			h.applyRule(w, r, st, d, m)
			return
		}
	}
	if !readOnly(w, r) {
		return
	}
	switch {
	case res.name != "":
		h.send(w, r, from, d, res.name, res.file, http.StatusOK)
	case res.slash != "":
		u := res.slash
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		Redirect(w, u, http.StatusMovedPermanently)
	default:
		h.notFound(w, r, d)
	}
}

// readOnly answers 405 to anything but GET and HEAD, which is all a static
// file takes; only proxy rules pass other methods on.
func readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	return false
}

func (h *Handler) ruleRequest(r *http.Request, st *Site, host string) *rules.Request {
	// Matched cleaned, so a splat never carries ".." to a redirect or proxy
	// target outside the prefix the rule gave it.
	p := path.Clean("/" + r.URL.Path)
	if strings.HasSuffix(r.URL.Path, "/") && p != "/" {
		p += "/"
	}
	req := &rules.Request{Host: host, Scheme: "http", Path: p, RawQuery: r.URL.RawQuery, Header: r.Header}
	if r.TLS != nil {
		req.Scheme = "https"
	}
	if st.Rules.CountryHeader != "" {
		req.Country = r.Header.Get(st.Rules.CountryHeader)
	}
	return req
}

// applyRule answers with a matched rule: a redirect, a proxied response, or
// the content of its target with the rule's status (200 rewrite, 404
// custom page, 410, 451).
func (h *Handler) applyRule(w http.ResponseWriter, r *http.Request, st *Site, d *deploy, m rules.Match) {
	rule := m.Rule
	switch {
	case rule.Proxy:
		h.proxies.serve(w, r, st, m)
		return
	case rule.Status >= 300 && rule.Status < 400:
		w.Header().Set("Location", m.To)
		w.WriteHeader(rule.Status)
		return
	}
	if !readOnly(w, r) {
		return
	}
	target := m.To
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if !strings.HasPrefix(target, "/") {
		// An absolute URL with a status that cannot proxy: nothing here.
		h.notFound(w, r, d)
		return
	}
	// Targets come escaped (a splat with a space is %20); files are named
	// as they are.
	if p, err := url.PathUnescape(target); err == nil {
		target = p
	}
	name, f, ok := d.resolveTarget(target)
	if !ok {
		h.notFound(w, r, d)
		return
	}
	if rule.Status == http.StatusOK && isScriptOrStyle(r.URL.Path) && strings.HasPrefix(f.Type, "text/html") {
		// A catch-all SPA rewrite must not answer a missing script or
		// stylesheet with the app's HTML: the browser would run or parse it.
		h.notFound(w, r, d)
		return
	}
	h.send(w, r, d, d, name, f, rule.Status)
}

// isScriptOrStyle reports whether a request path names a script or a
// stylesheet, which a page cannot use HTML in place of.
func isScriptOrStyle(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".js", ".mjs", ".cjs", ".css":
		return true
	}
	return false
}

// notFound answers 404 with the deploy's 404.html when it has one.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, d *deploy) {
	if f, ok := d.m.Lookup("404.html"); ok {
		h.send(w, r, d, d, "404.html", f, http.StatusNotFound)
		return
	}
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// skewed looks for an asset the live deploy lacks in the deploys the
// channel served before it, within the site's skew settings. Only
// fingerprinted assets qualify: their names promise their content, and HTML
// always comes from the live deploy.
func (h *Handler) skewed(ctx context.Context, st *Site, ptr *manifest.Pointer, urlPath string) (*deploy, resolved, bool) {
	if st.Skew.Deploys <= 0 || strings.HasSuffix(urlPath, "/") || !fingerprinted(path.Base(urlPath)) {
		return nil, resolved{}, false
	}
	ext := strings.ToLower(path.Ext(urlPath))
	if ext == ".html" || ext == ".htm" {
		return nil, resolved{}, false
	}
	rel := strings.TrimPrefix(path.Clean("/"+urlPath), "/")
	now := time.Now()
	for i, old := range ptr.Replaced() {
		if i >= st.Skew.Deploys || now.Sub(old.At) >= st.Skew.Grace {
			break // newest first: the rest were replaced even earlier
		}
		d, err := h.loadDeploy(ctx, st, old.Deploy)
		if err != nil {
			continue // collected, or storage down: the asset is just missing
		}
		if f, ok := d.m.Lookup(rel); ok {
			return d, resolved{name: rel, file: f}, true
		}
	}
	return nil, resolved{}, false
}

// send writes file name of deploy from, in the encoding the client prefers
// among those published, with the headers live's _headers give the request
// path.
func (h *Handler) send(w http.ResponseWriter, r *http.Request, from, live *deploy, name string, f manifest.File, status int) {
	enc := compress.Negotiate(r.Header.Get("Accept-Encoding"), f.Brotli != nil, f.Gzip != nil)
	sha, size := f.SHA256, f.Size
	switch enc {
	case compress.Brotli:
		sha, size = f.Brotli.SHA256, f.Brotli.Size
	case compress.Gzip:
		sha, size = f.Gzip.SHA256, f.Gzip.Size
	}
	obj, err := h.opts.Blobs.Open(r.Context(), sha, size)
	if err != nil {
		if errors.Is(err, manifest.ErrNotFound) && h.deployGone(r.Context(), from.m) {
			// Retention removed the deploy after its manifest was cached
			// (an old permalink): it is gone, not broken.
			http.Error(w, "404 not found: this deploy no longer exists", http.StatusNotFound)
			return
		}
		h.opts.Logger.Error("opening blob", "site", from.m.Site, "deploy", from.m.ID, "file", name, "sha256", sha, "err", err)
		http.Error(w, "503 service unavailable", http.StatusServiceUnavailable)
		return
	}
	defer obj.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", f.Type)
	hdr.Set("Cache-Control", cacheControl(name, f.Type))
	if f.Gzip != nil || f.Brotli != nil {
		hdr.Add("Vary", "Accept-Encoding")
	}
	if enc != compress.Identity {
		hdr.Set("Content-Encoding", string(enc))
	}
	if live.headers != nil {
		live.headers.Apply(hdr, r.URL.Path)
	}
	// The body may take as long as its size needs at the slowest rate
	// allowed, and no longer.
	h.opts.Write.extend(w, size)
	if status != http.StatusOK {
		// A custom 404 page or a rewrite with a status: no ranges or
		// conditionals, just the body.
		hdr.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			io.Copy(w, obj) //nolint:errcheck // the client went away
		}
		return
	}
	// The ETag is the hash of the bytes sent, so each encoding has its own.
	hdr.Set("ETag", `"`+sha+`"`)
	if enc != compress.Identity {
		// ServeContent leaves Content-Length out when Content-Encoding is
		// set, and its ranges would count the compressed bytes: send the
		// whole variant, with its length (a server may ignore Range).
		hdr.Set("Content-Length", strconv.FormatInt(size, 10))
		r.Header.Del("Range")
	} else if rg := r.Header.Get("Range"); rg != "" && !rangesAllowed(rg, size) {
		r.Header.Del("Range")
	}
	// ServeContent does Range, If-None-Match and HEAD; no modtime, because
	// the ETag is the content hash.
	http.ServeContent(w, r, name, time.Time{}, obj)
}
