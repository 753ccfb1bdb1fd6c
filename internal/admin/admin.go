// Package admin is the admin listener (DESIGN §10): the JSON API behind a
// bearer token, build logs streamed as Server-Sent Events, the dashboard,
// health and readiness, metrics, and the webhook intake.
package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/dashboard"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// Loop is what the API needs of the control loop.
type Loop interface {
	Status() []reconcile.Status
	SiteStatus(name site.Name) (reconcile.Status, bool)
	Trigger(name site.Name) error
	Sync(ctx context.Context, name site.Name) (reconcile.Status, error)
}

// Deploys reads deploys for the API (a manifest.Reader).
type Deploys interface {
	Manifest(ctx context.Context, s site.Name, id site.DeployID) (*manifest.Manifest, error)
	Log(ctx context.Context, s site.Name, id site.DeployID) ([]byte, error)
	Pointer(ctx context.Context, s site.Name, c site.Channel) (manifest.Pointer, error)
	Channels(ctx context.Context, s site.Name) (map[site.Channel]manifest.Pointer, error)
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
	// Guard checks the token wherever it is given, and slows down wrong
	// ones per client (nil: one for Token with the default limits). Give
	// the generic webhook the same one, so all share one count.
	Guard *bearer.Guard
	Sites []SiteInfo
	// SiteInfo, when set, replaces Sites: it follows a reloaded config.
	SiteInfo func(site.Name) (SiteInfo, bool)
	// List, when set, is every configured site in order, from one config:
	// GET /api/v1/sites lists these rather than the loop's sites.
	List    func() []SiteInfo
	Loop    Loop
	Deploys Deploys
	// Journal holds this server's deploy attempts and their live logs.
	Journal *journal.Journal
	// Permalink is a deploy's immutable URL (nil: none given).
	Permalink func(site.Name, site.DeployID) string
	Hooks     map[string]http.Handler // "generic" → handler, mounted at /hooks/{name}
	// Certificate reports a domain's TLS certificate (nil without HTTPS).
	Certificate func(domain string) any
	// Ready says why the server cannot serve yet (nil error: ready); nil
	// means always ready. /readyz answers anyone with the error's text, so
	// it must be a fixed public message.
	Ready func() error
	// Config says which config is live (nil: not reported).
	Config func() api.Config
	// Metrics serves /metrics (nil: not offered).
	Metrics http.Handler
	// Logger gets the API's lines, tagged component=admin, and the
	// dashboard's, tagged component=dashboard.
	Logger *slog.Logger
	Now    func() time.Time
}

// Handler is the admin listener's handler.
type Handler struct {
	root   http.Handler
	router *mux.Router
	model  *model
	dash   *dashboard.Handler
	opts   Options
}

// New returns the admin handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// The dashboard adds its own component key; one per line.
	dashLog := opts.Logger
	opts.Logger = opts.Logger.With("component", "admin")
	if opts.Journal == nil {
		opts.Journal = journal.New(journal.Options{})
	}
	if opts.Guard == nil {
		opts.Guard = bearer.New(bearer.Options{Token: opts.Token, Now: opts.Now})
	}
	m := newModel(opts)
	a := &Handler{model: m, opts: opts}
	a.dash = dashboard.New(dashboard.Options{Source: m, Token: opts.Token, Guard: opts.Guard, Logger: dashLog, Now: opts.Now})

	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.HandleFunc("/readyz", a.readyz)
	if opts.Metrics != nil {
		r.Handle("/metrics", opts.Metrics)
	}
	for name, h := range opts.Hooks {
		r.Handle("/hooks/"+name, h)
	}
	// API routes sit on the root router, each behind auth: a PathPrefix
	// subrouter in gorilla/mux v1.8.1 answers a wrong method with 404
	// instead of 405 (gorilla/mux#739).
	v1 := func(method, path string, h http.HandlerFunc) {
		r.Handle(api.Prefix+path, a.auth(h)).Methods(method)
	}
	v1(http.MethodGet, "/sites", a.listSites)
	if opts.Config != nil {
		v1(http.MethodGet, "/config", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, opts.Config()) })
	}
	v1(http.MethodGet, "/sites/{site}", a.getSite)
	v1(http.MethodPost, "/sites/{site}/sync", a.sync)
	v1(http.MethodGet, "/sites/{site}/deploys", a.listDeploys)
	v1(http.MethodGet, "/sites/{site}/deploys/{id}", a.getDeploy)
	v1(http.MethodGet, "/sites/{site}/deploys/{id}/log", a.getLog)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed on "+r.URL.Path)
	})
	// Everything else is the dashboard; unknown API and webhook paths get
	// JSON. (A catch-all route would hide wrong methods: mux prefers any
	// full match over a method mismatch.)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, api.Prefix+"/"):
			writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		case strings.HasPrefix(r.URL.Path, "/hooks/"):
			writeError(w, http.StatusNotFound, "no such webhook endpoint: "+r.URL.Path+" (use /hooks/github, gitlab, gitea, forgejo, bitbucket or generic)")
		default:
			a.dash.ServeHTTP(w, r)
		}
	})
	// Browsers send Sec-Fetch-Site/Origin: a cross-site POST (a form on
	// another site aimed at the dashboard) is refused. Forges and the CLI
	// send neither and pass.
	a.router = r
	a.root = http.NewCrossOriginProtection().Handler(r)
	return a
}

// Access is what a route asks of a client.
type Access string

const (
	// Open routes answer anyone: probes, metrics, the login form.
	Open Access = "open"
	// Token routes need the API token (reads also a dashboard session).
	Token Access = "token"
	// Webhook routes check the forge's signature or secret (the generic
	// one, the API token).
	Webhook Access = "webhook"
)

// Route is a method and path the admin listener answers.
type Route struct {
	Method string // "" for any
	Path   string // a pattern: /api/v1/sites/{site}
	Access Access
}

// Routes lists what the listener answers, read from its router and the
// dashboard's, so a warning about exposing it names every path there is.
func (a *Handler) Routes() []Route {
	var out []Route
	a.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error { //nolint:errcheck // the walk function returns nil
		path, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		// Every API route is registered behind auth (v1 in New).
		access := Open
		switch {
		case strings.HasPrefix(path, api.Prefix+"/"):
			access = Token
		case strings.HasPrefix(path, "/hooks/"):
			access = Webhook
		}
		methods, _ := route.GetMethods() //nolint:errcheck // none set: any method
		if len(methods) == 0 {
			methods = []string{""}
		}
		for _, m := range methods {
			out = append(out, Route{Method: m, Path: path, Access: access})
		}
		return nil
	})
	for _, d := range a.dash.Routes() {
		method, path, ok := strings.Cut(d.Pattern, " ")
		if !ok {
			method, path = "", d.Pattern
		}
		path = strings.TrimSuffix(path, "{$}")
		access := Token
		if d.Open {
			access = Open
		}
		out = append(out, Route{Method: method, Path: path, Access: access})
	}
	slices.SortStableFunc(out, func(x, y Route) int {
		return cmp.Or(strings.Compare(x.Path, y.Path), strings.Compare(x.Method, y.Method))
	})
	return out
}

// String is "GET /path", or the path alone for any method.
func (r Route) String() string {
	if r.Method == "" {
		return r.Path
	}
	return r.Method + " " + r.Path
}

func (a *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.root.ServeHTTP(w, r) }

// auth lets a request through with the bearer token, or, for reads, with
// the dashboard's session cookie: the dashboard's scripts stream logs
// with EventSource, which cannot send headers.
func (a *Handler) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && a.dash.SessionOK(r) {
			next.ServeHTTP(w, r)
			return
		}
		v, retry, sent := a.opts.Guard.Header(r)
		switch {
		case sent && v == bearer.Right:
			next.ServeHTTP(w, r)
			return
		case sent && v == bearer.Limited:
			bearer.SetRetryAfter(w.Header(), retry)
			writeError(w, http.StatusTooManyRequests, "too many wrong tokens from this address; try again after Retry-After seconds")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="sitehost"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
	})
}

func (a *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if a.opts.Ready != nil {
		if err := a.opts.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *Handler) listSites(w http.ResponseWriter, r *http.Request) {
	sites, err := a.model.Sites(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	list := api.SiteList{Sites: sites}
	if a.opts.Config != nil {
		c := a.opts.Config()
		list.Config = &c
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *Handler) getSite(w http.ResponseWriter, r *http.Request) {
	s, err := a.model.Site(r.Context(), site.Name(mux.Vars(r)["site"]))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// sync requests a reconcile; with ?wait=true it answers when it is done.
func (a *Handler) sync(w http.ResponseWriter, r *http.Request) {
	name := site.Name(mux.Vars(r)["site"])
	if r.URL.Query().Get("wait") == "true" {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Minute)
		defer cancel()
		// A long build outlives the admin server's write timeout.
		http.NewResponseController(w).SetWriteDeadline(time.Time{}) //nolint:errcheck // not every writer has deadlines
		st, err := a.opts.Loop.Sync(ctx, name)
		if errors.Is(err, reconcile.ErrUnknownSite) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no site named %q", name))
			return
		}
		if err != nil {
			// It ended with the request or after half an hour; the
			// error's text is for the log.
			a.opts.Logger.Info("sync not waited for to the end", "site", name, "err", err)
			writeError(w, http.StatusGatewayTimeout, "sync of "+string(name)+" did not finish while this request waited; it goes on: see the site's status")
			return
		}
		writeJSON(w, http.StatusOK, a.model.site(r.Context(), st))
		return
	}
	if err := a.model.Trigger(name); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, api.SyncAccepted{Message: "sync of " + string(name) + " requested"})
}

func (a *Handler) listDeploys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistory {
			writeError(w, http.StatusBadRequest, "limit must be a number from 1 to "+strconv.Itoa(maxHistory))
			return
		}
		limit = n
	}
	channel := site.Channel(q.Get("channel"))
	if channel != "" && !channel.Valid() {
		writeError(w, http.StatusBadRequest, "channel must be production, pr-<N> or branch-<name>")
		return
	}
	list, err := a.model.Deploys(r.Context(), site.Name(mux.Vars(r)["site"]), channel, limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.DeployList{Deploys: list})
}

func (a *Handler) getDeploy(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	d, err := a.model.Deploy(r.Context(), site.Name(v["site"]), site.DeployID(v["id"]))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// fail answers an error from the model: 404 for what does not exist, 503
// for storage trouble (logged, not shown: it may name internals).
func (a *Handler) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, api.ErrNotFound) {
		writeError(w, http.StatusNotFound, notFoundMessage(err))
		return
	}
	a.opts.Logger.Error("admin API", "err", err)
	writeError(w, http.StatusServiceUnavailable, "storage unavailable; try again")
}

// notFoundMessage is err's text without the sentinel's ": not found".
func notFoundMessage(err error) string {
	msg := err.Error()
	if suffix := ": " + api.ErrNotFound.Error(); len(msg) > len(suffix) && msg[len(msg)-len(suffix):] == suffix {
		return msg[:len(msg)-len(suffix)]
	}
	return msg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", api.MediaJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // client gone
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}
