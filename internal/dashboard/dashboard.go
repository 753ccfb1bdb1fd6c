// Package dashboard is the admin listener's web dashboard: server-rendered
// HTML pages of the sites, their channels and deploys, and the build logs.
// It reads everything through a Source, works without JavaScript, and
// loads nothing from other origins, so its Content-Security-Policy can
// forbid inline code and external assets altogether.
//
// A person logs in with the admin API token; the session cookie carries an
// expiry and an HMAC keyed by that token, so changing the token logs every
// session out and the server keeps no session state.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/site"
)

// Source is what the dashboard reads. Errors wrapping api.ErrNotFound are
// pages that do not exist (404); any other error is a 503.
type Source interface {
	Sites(ctx context.Context) ([]api.Site, error)
	Site(ctx context.Context, name site.Name) (api.Site, error)
	// Deploys lists a site's deploys newest first; channel "" means all.
	Deploys(ctx context.Context, name site.Name, channel site.Channel, limit int) ([]api.Deploy, error)
	Deploy(ctx context.Context, name site.Name, id site.DeployID) (api.DeployDetail, error)
	// Log returns a deploy's build log so far (the page has its state
	// from Deploy).
	Log(ctx context.Context, name site.Name, id site.DeployID) ([]byte, error)
	// Trigger requests a sync of the site without waiting for it.
	Trigger(name site.Name) error
}

// Options configure the dashboard.
type Options struct {
	Source Source
	// Token is the admin API token; "" refuses every login.
	Token string
	// Guard checks tokens given in a header or the login form (nil: one
	// for Token with the default limits); the admin listener shares one.
	Guard  *bearer.Guard
	Logger *slog.Logger // nil discards
	// Now is the clock for relative times and session expiry; nil is time.Now.
	Now func() time.Time
	// SessionTTL is how long a login lasts; 0 means 24 hours.
	SessionTTL time.Duration
}

const (
	defaultTTL = 24 * time.Hour
	// historyLimit is how many deploys the site page lists.
	historyLimit = 50
	// csp allows only this origin's own stylesheet, script and images, and
	// forbids inline code: the templates use classes, never style attributes.
	csp = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

//go:embed templates/*.html
var templateFS embed.FS

// Handler serves the dashboard. Mount it at the root of the admin listener.
type Handler struct {
	src    Source
	token  string
	guard  *bearer.Guard
	log    *slog.Logger
	now    func() time.Time
	ttl    time.Duration
	pages  map[string]*template.Template
	assets map[string]asset
	root   http.Handler
	// routeList is every pattern routes registered, for Routes.
	routeList []Route
}

// New returns the dashboard handler. It panics if the embedded templates
// do not parse, which the package's tests catch.
func New(opts Options) *Handler {
	h := &Handler{
		src:   opts.Source,
		token: opts.Token,
		guard: opts.Guard,
		log:   opts.Logger,
		now:   opts.Now,
		ttl:   opts.SessionTTL,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "dashboard")
	if h.guard == nil {
		h.guard = bearer.New(bearer.Options{Token: opts.Token, Now: opts.Now})
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.ttl <= 0 {
		h.ttl = defaultTTL
	}
	h.assets = loadAssets()
	h.pages = make(map[string]*template.Template)
	for _, name := range []string{"login", "overview", "site", "deploy", "error"} {
		// One template set per page: each page defines "content" (and
		// maybe "head") for the shared layout.
		h.pages[name] = template.Must(template.New(name).Funcs(h.funcs()).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	h.root = h.routes()
	return h
}

// ServeHTTP serves the dashboard's pages and assets.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.root.ServeHTTP(w, r)
}

// Route is a pattern the dashboard serves ("GET /sites/{site}") and
// whether it is served without a session or the token.
type Route struct {
	Pattern string
	Open    bool
}

// Routes are the dashboard's patterns, as registered; the fallbacks that
// answer every other path (a 404 page, or the login redirect) are left
// out.
func (h *Handler) Routes() []Route { return slices.Clone(h.routeList) }

// routes builds the whole request pipeline in one place.
func (h *Handler) routes() http.Handler {
	// handle registers a pattern and lists it for Routes.
	handle := func(mux *http.ServeMux, pattern string, open bool, handler http.Handler) {
		mux.Handle(pattern, handler)
		h.routeList = append(h.routeList, Route{Pattern: pattern, Open: open})
	}
	pages := http.NewServeMux()
	handle(pages, "GET /{$}", false, h.handle(h.overview))
	handle(pages, "GET /sites/{site}", false, h.handle(h.sitePage))
	handle(pages, "POST /sites/{site}/sync", false, h.handle(h.sync))
	handle(pages, "GET /sites/{site}/deploys/{id}", false, h.handle(h.deployPage))
	pages.Handle("/", h.handle(func(http.ResponseWriter, *http.Request) error {
		return notFound("There is no such page.")
	}))

	// The login form, the assets it needs and logout are the only things
	// served without a session.
	root := http.NewServeMux()
	handle(root, "GET /login", true, h.handle(h.loginForm))
	handle(root, "POST /login", true, h.handle(h.login))
	handle(root, "POST /logout", true, http.HandlerFunc(h.logout))
	handle(root, "GET /assets/{file}", true, http.HandlerFunc(h.serveAsset))
	root.Handle("/", h.requireAuth(pages))

	// Cross-origin POSTs are refused outright (Sec-Fetch-Site and Origin),
	// on top of the SameSite=Strict cookie: a form on another site must
	// not be able to log someone in or trigger syncs.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(h.handle(func(http.ResponseWriter, *http.Request) error {
		return &pageError{Status: http.StatusForbidden, Title: "Forbidden",
			Message: "The request came from another site, so it was refused."}
	}))
	return securityHeaders(cop.Handler(root))
}

// securityHeaders sets the headers every response carries, assets
// included: a stray HTML or SVG response must not run anything either.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// pageError is an error a person should see as a page with its status.
type pageError struct {
	Status  int
	Title   string
	Message string
}

func (e *pageError) Error() string { return e.Title + ": " + e.Message }

func notFound(msg string) *pageError {
	return &pageError{Status: http.StatusNotFound, Title: "Not found", Message: msg}
}

// handle turns a handler that returns an error into an http.Handler: a
// pageError is shown as it is, and any other error is logged and shown as
// a 503, since it is the Source that failed.
func (h *Handler) handle(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := f(w, r)
		if err == nil {
			return
		}
		var pe *pageError
		if !errors.As(err, &pe) {
			h.log.Error("serving dashboard page", "path", r.URL.Path, "err", err)
			pe = &pageError{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
				Message: "The dashboard could not read the server's state. Try again in a moment; the server log has the details."}
		}
		h.render(w, r, pe.Status, "error", page{Title: pe.Title, Data: pe})
	})
}

// page is what the layout renders; Data is the page's own view.
type page struct {
	Title string
	// Authed shows the navigation and the logout button.
	Authed bool
	// Refresh lets dashboard.js reload <main> every few seconds.
	Refresh bool
	Data    any
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 instead of half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Authed = h.authorized(r)
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Error("rendering dashboard page", "page", name, "err", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		h.log.Debug("writing dashboard page", "page", name, "err", err)
	}
}

// sourceError turns a Source's not-found into a 404 page naming what is
// missing, and wraps anything else for the 503 log line.
func sourceError(err error, what string) error {
	if errors.Is(err, api.ErrNotFound) {
		return notFound("There is no " + what + ".")
	}
	return fmt.Errorf("reading %s: %w", what, err)
}
