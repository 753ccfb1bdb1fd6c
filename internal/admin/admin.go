// Package admin is the admin listener's API (DESIGN §10): JSON over HTTP
// behind a bearer token, plus health endpoints and the webhook intake.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
)

// Loop is what the API needs of the control loop.
type Loop interface {
	Status() []reconcile.Status
	SiteStatus(name site.Name) (reconcile.Status, bool)
	Trigger(name site.Name) error
	Sync(ctx context.Context, name site.Name) (reconcile.Status, error)
}

// Deploys reads deploys for the API.
type Deploys interface {
	Manifest(ctx context.Context, s site.Name, id site.DeployID) (*publish.Manifest, error)
	Log(ctx context.Context, s site.Name, id site.DeployID) ([]byte, error)
}

// SiteInfo is the static part of a site the API reports.
type SiteInfo struct {
	Name    site.Name
	Repo    string
	Ref     string
	Domains []string
	URL     string // production URL
}

// Options configure the handler.
type Options struct {
	Token string
	Sites []SiteInfo
	// SiteInfo, when set, replaces Sites: it follows a reloaded config.
	SiteInfo      func(site.Name) (SiteInfo, bool)
	PreviewDomain string
	Loop          Loop
	Deploys       Deploys
	Hooks         map[string]http.Handler // "generic" → handler, mounted at /hooks/{name}
	// Certificate reports a domain's TLS certificate (nil without HTTPS).
	Certificate func(domain string) any
	Logger      *slog.Logger
}

// New returns the admin handler.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{opts: opts, sites: map[site.Name]SiteInfo{}}
	for _, s := range opts.Sites {
		a.sites[s.Name] = s
	}
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for name, h := range opts.Hooks {
		r.Handle("/hooks/"+name, h)
	}
	// API routes sit on the root router, each behind auth: a PathPrefix
	// subrouter in gorilla/mux v1.8.1 answers a wrong method with 404
	// instead of 405 (gorilla/mux#739).
	v1 := func(method, path string, h http.HandlerFunc) {
		r.Handle("/api/v1"+path, a.auth(h)).Methods(method)
	}
	v1(http.MethodGet, "/sites", a.listSites)
	v1(http.MethodGet, "/sites/{site}", a.getSite)
	v1(http.MethodPost, "/sites/{site}/sync", a.sync)
	v1(http.MethodGet, "/sites/{site}/deploys/{id}", a.getDeploy)
	v1(http.MethodGet, "/sites/{site}/deploys/{id}/log", a.getLog)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed on "+r.URL.Path)
	})
	return r
}

type api struct {
	opts  Options
	sites map[site.Name]SiteInfo
}

func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hooks.BearerOK(r, a.opts.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sitehost"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// siteJSON is one site in API answers.
type siteJSON struct {
	Name    site.Name        `json:"name"`
	Repo    string           `json:"repo"`
	Ref     string           `json:"ref"`
	Domains []string         `json:"domains"`
	URL     string           `json:"url"`
	Status  reconcile.Status `json:"status"`
	// Certificates of the site's domains, when sitehost serves HTTPS.
	Certificates []any `json:"certificates,omitempty"`
}

func (a *api) siteJSON(st reconcile.Status) siteJSON {
	info := a.sites[st.Site]
	if a.opts.SiteInfo != nil {
		info, _ = a.opts.SiteInfo(st.Site)
	}
	domains := info.Domains
	if domains == nil {
		domains = []string{}
	}
	out := siteJSON{Name: st.Site, Repo: info.Repo, Ref: info.Ref, Domains: domains, URL: info.URL, Status: st}
	if a.opts.Certificate != nil {
		for _, d := range domains {
			out.Certificates = append(out.Certificates, a.opts.Certificate(d))
		}
	}
	return out
}

func (a *api) listSites(w http.ResponseWriter, _ *http.Request) {
	out := []siteJSON{}
	for _, st := range a.opts.Loop.Status() {
		out = append(out, a.siteJSON(st))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": out})
}

func (a *api) getSite(w http.ResponseWriter, r *http.Request) {
	st, ok := a.opts.Loop.SiteStatus(site.Name(mux.Vars(r)["site"]))
	if !ok {
		writeError(w, http.StatusNotFound, "no site named "+mux.Vars(r)["site"])
		return
	}
	writeJSON(w, http.StatusOK, a.siteJSON(st))
}

// sync requests a reconcile; with ?wait=true it answers when it is done.
func (a *api) sync(w http.ResponseWriter, r *http.Request) {
	name := site.Name(mux.Vars(r)["site"])
	if r.URL.Query().Get("wait") == "true" {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Minute)
		defer cancel()
		st, err := a.opts.Loop.Sync(ctx, name)
		if errors.Is(err, reconcile.ErrUnknownSite) {
			writeError(w, http.StatusNotFound, "no site named "+string(name))
			return
		}
		if err != nil {
			writeError(w, http.StatusGatewayTimeout, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, a.siteJSON(st))
		return
	}
	if err := a.opts.Loop.Trigger(name); err != nil {
		writeError(w, http.StatusNotFound, "no site named "+string(name))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"message": "sync of " + string(name) + " requested"})
}

func (a *api) getDeploy(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	m, err := a.opts.Deploys.Manifest(r.Context(), site.Name(v["site"]), site.DeployID(v["id"]))
	if err != nil {
		a.deployError(w, err, v["site"], v["id"])
		return
	}
	// The summary, without the file list and the rules, which can be huge
	// (m may be shared): rules are counted, their errors listed in full.
	sum := *m
	sum.Files = nil
	sum.Rules.Redirects, sum.Rules.Headers = nil, nil
	if sum.Rules.Errors == nil {
		sum.Rules.Errors = []rules.Error{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"deploy": &sum, "files": len(m.Files),
		"rules": map[string]any{"redirects": len(m.Rules.Redirects), "headers": len(m.Rules.Headers), "errors": sum.Rules.Errors},
	})
}

func (a *api) getLog(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	log, err := a.opts.Deploys.Log(r.Context(), site.Name(v["site"]), site.DeployID(v["id"]))
	if err != nil {
		a.deployError(w, err, v["site"], v["id"])
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(log) //nolint:errcheck // client gone
}

func (a *api) deployError(w http.ResponseWriter, err error, s, id string) {
	if errors.Is(err, publish.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no deploy "+id+" of site "+s)
		return
	}
	a.opts.Logger.Error("reading deploy", "site", s, "deploy", id, "err", err)
	writeError(w, http.StatusServiceUnavailable, "storage unavailable")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // client gone
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
