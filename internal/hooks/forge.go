package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/site"
)

// SiteSecret is a site that declares a repository, with its webhook secret
// (the value of the variable its webhook.secret_env names; "" if none).
type SiteSecret struct {
	Name   site.Name
	Secret string
}

// Resolver finds the sites that declare a repository and their webhook
// secrets. urls are every URL a payload gives for the repository; compare
// them with RepoKey, so that https, ssh and .git variants match.
type Resolver interface {
	SitesForRepo(urls []string) []SiteSecret
}

// EventDispatcher takes normalised events; the reconcile loop is one.
// Dispatch must be cheap (enqueue, never build): the forge is waiting for
// the answer, and gives up after a few seconds.
type EventDispatcher interface {
	Dispatch(ctx context.Context, name site.Name, ev site.Event) error
}

// Forge is the handler of POST /hooks/{github,gitlab,gitea,forgejo,bitbucket}.
// The forge is the last element of the request path. For each delivery it
// parses the payload, finds the sites that declare the repository,
// authenticates the request with each site's secret and hands the event
// to every site whose secret verified, answering 202 at once.
//
// Answers: 404 unknown forge or repository, 405 not POST, 413 body over
// MaxBody, 400 malformed payload, 401 no site's secret verifies, 200 ping,
// ignored event or duplicate delivery, 503 no site could take the event.
type Forge struct {
	Sites    Resolver
	Dispatch EventDispatcher
	Logger   *slog.Logger

	// Now is the clock that Standard Webhooks timestamps are checked
	// against; nil means time.Now.
	Now func() time.Time

	// Dedup is how many recent delivery IDs are remembered, so that a
	// redelivery is not acted on twice; 0 means DefaultDedup.
	Dedup int

	// BaseContext returns the context handed to Dispatch, which outlives
	// the request (the work it queues must not stop when the forge hangs
	// up). Nil means the request's context without its cancellation.
	BaseContext func() context.Context

	seen deliveries
}

func (f *Forge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	forge := path.Base(r.URL.Path)
	if !knownForge(forge) {
		writeJSON(w, http.StatusNotFound, fmt.Sprintf("unknown forge %q: use one of %s", forge, forgeNames))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	body, ok := readBody(w, r, f.logger())
	if !ok {
		return
	}
	log := f.logger().With("forge", forge)

	evs, err := ParseAll(forge, r.Header, body)
	ignored := errors.Is(err, ErrIgnored)
	if err != nil && !ignored {
		log.Info("webhook refused", "status", http.StatusBadRequest, "err", err)
		writeJSON(w, http.StatusBadRequest, err.Error())
		return
	}
	ev := evs[0]
	log = log.With("delivery", ev.Delivery)
	if ignored && len(ev.RepoURLs) == 0 {
		// Nothing names a repository to find a secret for, and
		// nothing will be done: say so without authenticating.
		log.Debug("webhook ignored", "reason", err)
		writeJSON(w, http.StatusOK, err.Error())
		return
	}

	sites := f.Sites.SitesForRepo(ev.RepoURLs)
	if len(sites) == 0 {
		log.Warn("webhook for a repository no site declares", "repo", ev.RepoURLs)
		writeJSON(w, http.StatusNotFound, "no site declares repository "+ev.RepoURLs[0])
		return
	}
	names, refusal := f.authenticate(forge, r.Header, body, sites)
	if len(names) == 0 {
		log.Warn("webhook refused", "status", http.StatusUnauthorized, "repo", ev.RepoURLs[0], "err", refusal)
		writeJSON(w, http.StatusUnauthorized, refusal)
		return
	}
	log = log.With("sites", names)
	switch {
	case ignored:
		log.Debug("webhook ignored", "reason", err)
		writeJSON(w, http.StatusOK, err.Error())
		return
	case ev.Kind == site.EventPing:
		log.Info("webhook ping")
		writeJSON(w, http.StatusOK, "pong")
		return
	}
	key := ev.Forge + " " + ev.Delivery
	if ev.Delivery != "" && !f.seen.add(key, f.Dedup) {
		log.Info("duplicate webhook delivery ignored")
		writeJSON(w, http.StatusOK, fmt.Sprintf("duplicate delivery %s ignored", ev.Delivery))
		return
	}

	took := f.dispatch(f.dispatchContext(r), log, names, evs)
	if len(took) == 0 {
		if ev.Delivery != "" {
			f.seen.forget(key) // let the forge's retry through
		}
		writeJSON(w, http.StatusServiceUnavailable, "no site could take the event; try again later")
		return
	}
	log.Info("webhook accepted", "event", describe(evs), "dispatched", took)
	writeJSON(w, http.StatusAccepted, fmt.Sprintf("%s accepted for %s", describe(evs), joinNames(took)))
}

// authenticate verifies the request against every site's secret and
// returns the sites whose secret verified, or why none did.
func (f *Forge) authenticate(forge string, h http.Header, body []byte, sites []SiteSecret) ([]site.Name, string) {
	now := time.Now()
	if f.Now != nil {
		now = f.Now()
	}
	var ok []site.Name
	var reasons []string
	for _, s := range sites {
		err := verify(forge, h, body, s.Secret, now)
		if err == nil {
			ok = append(ok, s.Name)
			continue
		}
		msg := err.Error()
		if errors.Is(err, ErrNoSecret) {
			msg = fmt.Sprintf("site %s has no webhook.secret_env set (or the variable is empty)", s.Name)
		}
		if !slices.Contains(reasons, msg) {
			reasons = append(reasons, msg)
		}
	}
	return ok, strings.Join(reasons, "; ")
}

// dispatch hands every event to every site and returns the sites that
// took all of them.
func (f *Forge) dispatch(ctx context.Context, log *slog.Logger, names []site.Name, evs []site.Event) []site.Name {
	var took []site.Name
	for _, name := range names {
		var err error
		for _, ev := range evs {
			if err = f.Dispatch.Dispatch(ctx, name, ev); err != nil {
				break
			}
		}
		if err != nil {
			log.Error("dispatching webhook event", "site", name, "err", err)
			continue
		}
		took = append(took, name)
	}
	return took
}

func (f *Forge) dispatchContext(r *http.Request) context.Context {
	if f.BaseContext != nil {
		return f.BaseContext()
	}
	return context.WithoutCancel(r.Context())
}

func (f *Forge) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}

// describe names the events of one delivery for messages and logs.
func describe(evs []site.Event) string {
	if len(evs) > 1 {
		return fmt.Sprintf("%d ref changes", len(evs))
	}
	ev := evs[0]
	s := string(ev.Kind)
	if ev.IsPR() {
		s += fmt.Sprintf(" #%d", ev.PR)
	}
	if ev.Ref != "" {
		s += " " + ev.Ref
	}
	if ev.Commit != "" {
		s += " " + ev.Commit.Short()
	}
	return s
}

func joinNames(names []site.Name) string {
	ss := make([]string, len(names))
	for i, n := range names {
		ss[i] = string(n)
	}
	if len(ss) == 1 {
		return "site " + ss[0]
	}
	return "sites " + strings.Join(ss, ", ")
}
