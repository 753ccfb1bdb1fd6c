// Package reconcile is the control loop (DESIGN §9): for each site it brings
// the live channel pointers to what git says — resolve the ref, fetch,
// export, reuse or build, publish, flip the pointer — one worker per site,
// requests coalesced to the newest commit. It is the only package that ties
// gitsrc, build and publish together.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
)

// ErrUnknownSite: no site of that name is configured.
var ErrUnknownSite = errors.New("reconcile: unknown site")

// Builder builds an exported tree.
type Builder interface {
	Build(ctx context.Context, req build.Request) (build.Result, error)
}

// Spec is one site as the loop needs it.
type Spec struct {
	Name    site.Name
	Repo    gitsrc.Options // URL and Auth; Dir and Logger are set by the loop
	Ref     string
	Path    string // site root inside the repo
	Pin     string // a commit production stays at, or ""
	BaseURL string // production's public URL
	Build   build.Settings
}

// Options configure a Loop.
type Options struct {
	Sites     []Spec
	DataDir   string // git caches, build scratch and Hugo caches live below it
	Builder   Builder
	Publisher *publish.Publisher
	// PollInterval: how often every site is checked (0: only on request).
	PollInterval time.Duration
	// Concurrency bounds builds running at once across all sites (default 1).
	Concurrency int
	Logger      *slog.Logger
}

// Loop reconciles every site.
type Loop struct {
	opts   Options
	sites  map[site.Name]*worker
	order  []site.Name
	builds atomic.Int64
	sem    chan struct{}
}

// worker is one site's queue and state.
type worker struct {
	spec    Spec
	repo    *gitsrc.Repo
	trigger chan struct{}
	log     *slog.Logger

	mu        sync.Mutex
	cond      *sync.Cond
	requested uint64 // sync requests received
	completed uint64 // requests covered by finished syncs
	inflight  uint64 // requests the running sync covers
	status    Status
	failed    site.Commit // commit whose build failed for the site's own reasons
	retries   int
}

// Status is a site's sync state.
type Status struct {
	Site       site.Name     `json:"site"`
	State      site.State    `json:"state"`
	Desired    site.Commit   `json:"desired_commit,omitempty"`
	LiveCommit site.Commit   `json:"live_commit,omitempty"`
	LiveDeploy site.DeployID `json:"live_deploy,omitempty"`
	Error      string        `json:"error,omitempty"`
	FailedAt   site.Commit   `json:"failed_commit,omitempty"`
	LastSync   time.Time     `json:"last_sync,omitzero"`
	Builds     int           `json:"builds"`
	Reused     int           `json:"reused"`
}

// New prepares a Loop; Run starts it.
func New(opts Options) (*Loop, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	l := &Loop{opts: opts, sites: make(map[site.Name]*worker), sem: make(chan struct{}, opts.Concurrency)}
	for _, spec := range opts.Sites {
		logger := opts.Logger.With("site", spec.Name)
		spec.Repo.Dir = filepath.Join(opts.DataDir, "git", string(spec.Name))
		spec.Repo.Logger = logger
		repo, err := gitsrc.Open(spec.Repo)
		if err != nil {
			return nil, fmt.Errorf("opening git cache of %s: %w", spec.Name, err)
		}
		w := &worker{spec: spec, repo: repo, trigger: make(chan struct{}, 1), log: logger}
		w.cond = sync.NewCond(&w.mu)
		w.status = Status{Site: spec.Name, State: site.OutOfSync}
		l.sites[spec.Name] = w
		l.order = append(l.order, spec.Name)
	}
	// Scratch from a previous run that died mid-build.
	os.RemoveAll(filepath.Join(opts.DataDir, "tmp"))
	return l, nil
}

// Run works until ctx ends: a first sync of every site, then one sync per
// request and per poll tick.
func (l *Loop) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range l.order {
		w := l.sites[name]
		wg.Go(func() { l.work(ctx, w) })
		w.request()
	}
	if l.opts.PollInterval > 0 {
		t := time.NewTicker(l.opts.PollInterval)
		defer t.Stop()
	poll:
		for {
			select {
			case <-ctx.Done():
				break poll
			case <-t.C:
				for _, w := range l.sites {
					w.request()
				}
			}
		}
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// Trigger asks for a sync of a site soon; requests coalesce.
func (l *Loop) Trigger(name site.Name) error {
	w, ok := l.sites[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	w.request()
	return nil
}

// Sync asks for a sync and waits until one that started after the request
// has finished, returning the status it left.
func (l *Loop) Sync(ctx context.Context, name site.Name) (Status, error) {
	w, ok := l.sites[name]
	if !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	want := w.request()
	done := make(chan struct{})
	go func() {
		w.mu.Lock()
		for w.completed < want && ctx.Err() == nil {
			w.cond.Wait()
		}
		w.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		w.cond.Broadcast() // let the waiter see ctx.Err
		return Status{}, ctx.Err()
	}
	return l.status(w), nil
}

// Status returns every site's status, in config order.
func (l *Loop) Status() []Status {
	out := make([]Status, 0, len(l.order))
	for _, name := range l.order {
		out = append(out, l.status(l.sites[name]))
	}
	return out
}

// SiteStatus returns one site's status.
func (l *Loop) SiteStatus(name site.Name) (Status, bool) {
	w, ok := l.sites[name]
	if !ok {
		return Status{}, false
	}
	return l.status(w), true
}

// Builds is how many builds the loop has run (reused deploys not counted).
func (l *Loop) Builds() int64 { return l.builds.Load() }

func (l *Loop) status(w *worker) Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

func (w *worker) request() uint64 {
	w.mu.Lock()
	w.requested++
	n := w.requested
	w.mu.Unlock()
	select {
	case w.trigger <- struct{}{}:
	default: // a sync is already queued; it will cover this request
	}
	return n
}

func (l *Loop) work(ctx context.Context, w *worker) {
	for {
		select {
		case <-ctx.Done():
			w.cond.Broadcast()
			return
		case <-w.trigger:
		}
		w.mu.Lock()
		target := w.requested
		w.inflight = target
		w.mu.Unlock()

		retry := l.syncProduction(ctx, w)

		w.mu.Lock()
		w.completed = target
		w.cond.Broadcast()
		if retry {
			w.retries++
		} else {
			w.retries = 0
		}
		n := w.retries
		w.mu.Unlock()
		if retry && ctx.Err() == nil {
			d := backoff(n)
			w.log.Info("will retry", "in", d.Round(time.Millisecond))
			time.AfterFunc(d, func() {
				if ctx.Err() == nil {
					w.request()
				}
			})
		}
	}
}

// backoff is exponential from 2s to 5m, with jitter so many sites failing
// on one outage do not retry in step.
func backoff(n int) time.Duration {
	d := 2 * time.Second << min(n-1, 8)
	d = min(d, 5*time.Minute)
	return d/2 + rand.N(d/2+1)
}
