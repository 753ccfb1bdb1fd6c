// Package reconcile is the control loop (DESIGN §9): for each site it brings
// the live channel pointers to what git says — production to the site's ref
// (or pin), each branch deploy to its branch, each open pull request to its
// head — by resolving, fetching, reusing or building, publishing and
// flipping the pointer. One worker per site; requests for a channel coalesce
// to its newest commit. It is the only package that ties gitsrc, build and
// publish together.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitehost/sitehost/internal/backoff"
	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/hugomod"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/npm"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
)

// ErrUnknownSite: no site of that name is configured.
var ErrUnknownSite = errors.New("reconcile: unknown site")

// Builder builds an exported tree.
type Builder interface {
	Build(ctx context.Context, req build.Request) (build.Result, error)
}

// Reporter hears about deploys as they start and end, e.g. to set commit
// statuses on the forge. It must not block.
type Reporter interface {
	Report(name site.Name, r Report)
}

// Report is one deploy's progress.
type Report struct {
	Channel site.Channel
	Commit  site.Commit
	// State is site.OutcomeBuilding (started), OutcomeLive, OutcomeFailed
	// or OutcomeRemoved (a channel deleted).
	State   site.Outcome
	URL     string // the channel's public URL
	Message string
	// On success: the deploy now live, the one it replaced, and whether
	// that was a rollback (the deploy had been live on this channel
	// before: a revert, published by build-key reuse). Subject is the
	// commit's subject line.
	Deploy   site.DeployID
	Previous site.DeployID
	Rollback bool
	Subject  string
}

// Forks say what happens to pull requests from forks.
const (
	ForksNoSecrets = "no-secrets" // build without secret_env (default)
	ForksOff       = "off"        // no preview
	ForksOn        = "on"         // build like any other
)

// Previews configure a site's pull request previews.
type Previews struct {
	Enabled bool
	TTL     time.Duration // 0: until the pull request closes
	Forks   string
}

// Spec is one site as the loop needs it.
type Spec struct {
	Name     site.Name
	Repo     gitsrc.Options // URL and Auth; Dir and Logger are set by the loop
	Ref      string
	Path     string // site root inside the repo
	Pin      string // a commit production stays at, or ""
	Branches []string
	Previews Previews
	Build    build.Settings
	// StrictRules: a deploy whose _redirects, _headers or netlify.toml
	// have errors is not published.
	StrictRules bool
	// Proxy: the site lets rules proxy; without it they are ignored, which
	// a publish logs.
	Proxy bool
	// WriteBack records production publishes in the repository: "note",
	// "tag", or "" / "off".
	WriteBack string
	// MaxFile is the largest file a deploy may hold (build.max_file),
	// checked in the build output before it is uploaded and, with
	// build.tool none, in the git tree before a blob is read; 0: the
	// default, 100 MiB.
	MaxFile int64
}

// Options configure a Loop.
type Options struct {
	Sites     []Spec
	DataDir   string // git caches, build scratch and Hugo caches live below it
	Builder   Builder
	Publisher *publish.Publisher
	// URL is a channel's public URL, the base URL its build gets.
	URL func(site.Name, site.Channel) string
	// PollInterval: how often every site is checked (0: only on request).
	PollInterval time.Duration
	// Concurrency bounds builds running at once across all sites (default 1).
	Concurrency int
	// SelfHeal: how often every live channel is checked against the store;
	// a missing or corrupt deploy is rebuilt and republished (0: never).
	SelfHeal time.Duration
	Reporter Reporter // optional
	// Journal records every deploy attempt with its log (default: a
	// private one).
	Journal *journal.Journal
	Logger  *slog.Logger
	Now     func() time.Time
	// Retry is the wait before a transiently failed site is tried again
	// (no Base: from 2 s doubling to 5 min, jittered down to half), on
	// RetryClock (nil: backoff.Real; a test's backoff.Manual).
	Retry      backoff.Exponential
	RetryClock backoff.Clock
	// Modules fetch a site's Hugo Modules into its export before the
	// build (empty CacheDir: DataDir/modules; nil Cache: one per Loop).
	Modules hugomod.Options
	// NPM installs a site's npm dependencies into its export before the
	// build, when it has package.json and an npm lockfile (nil: none are).
	NPM *npm.Installer
	// Toolchain names the builder's tools besides Hugo that shape the
	// output (build.Builder.Toolchain): in every Hugo build's key, so a
	// new Dart Sass rebuilds what it would compile differently.
	Toolchain string
	// Owner says which sites this process builds (nil: all of them, one
	// process). A site it does not own is left alone; losing one cancels
	// its run, and gaining one stamps its pointers and syncs it
	// (LeaseChanged).
	Owner Owner
}

// Loop reconciles every site.
type Loop struct {
	opts   Options
	builds atomic.Int64
	sem    chan struct{}

	mu    sync.RWMutex
	sites map[site.Name]*worker
	order []site.Name
	// run is Run's context and wait group, so Update can start workers.
	run   context.Context
	group *sync.WaitGroup
	// modules serialises fetches into the submodule caches all sites share.
	modules *gitsrc.ModuleCache
}

// job is a request for one channel; a newer one replaces an older one.
type job struct {
	kind   jobKind
	ref    string // what to fetch for a pull request
	head   string // a pull request's head branch (refs/heads/x), when known: its netlify.toml context
	fork   bool
	maxAge time.Duration // skip heads older than this (polled pull requests)
}

type jobKind int

const (
	jobSync jobKind = iota
	jobDelete
)

// worker is one site's queue and state.
type worker struct {
	spec    Spec
	repo    *gitsrc.Repo
	trigger chan struct{}
	log     *slog.Logger
	stop    context.CancelFunc // ends this worker alone (the site left the config)
	done    chan struct{}      // closed when the worker has stopped
	// keepRepo: the git cache was handed to the site's next worker, which
	// closes it.
	keepRepo atomic.Bool
	// waiting: listed by Change.Apply, started once the worker it replaces
	// has stopped (guarded by Loop.mu).
	waiting bool

	mu        sync.Mutex
	cond      *sync.Cond
	pending   map[site.Channel]job
	poll      bool   // list pull request refs on the next run
	expire    bool   // remove expired previews on the next run
	verify    bool   // check the live deploys on the next run
	requested uint64 // requests received
	completed uint64 // requests covered by finished runs
	inflight  uint64 // requests the running run covers
	status    Status
	failed    map[site.Channel]site.Commit // commits whose build failed for the site's own reasons
	verified  map[site.Channel]verified    // live deploys found current (the worker's goroutine only)
	retries   int
	// cancelRun ends the running run, when the site's lease is lost.
	cancelRun context.CancelCauseFunc
	// stamped: the lease generation the site's pointers carry (the
	// worker's goroutine only).
	stamped uint64
}

// Status is a site's sync state: production at the top, every channel in
// Channels.
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
	// Repairs counts live deploys self-heal found broken and rebuilt.
	Repairs  int                            `json:"repairs"`
	Channels map[site.Channel]ChannelStatus `json:"channels,omitempty"`
}

// ChannelStatus is one channel's sync state.
type ChannelStatus struct {
	State      site.State    `json:"state"`
	URL        string        `json:"url,omitempty"`
	Desired    site.Commit   `json:"desired_commit,omitempty"`
	LiveCommit site.Commit   `json:"live_commit,omitempty"`
	LiveDeploy site.DeployID `json:"live_deploy,omitempty"`
	Error      string        `json:"error,omitempty"`
	FailedAt   site.Commit   `json:"failed_commit,omitempty"`
	LastSync   time.Time     `json:"last_sync,omitzero"`
}

// New prepares a Loop; Run starts it.
func New(opts Options) (*Loop, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retry.Base <= 0 {
		opts.Retry = retryDelay
	}
	if opts.RetryClock == nil {
		opts.RetryClock = backoff.Real
	}
	if opts.Journal == nil {
		opts.Journal = journal.New(journal.Options{})
	}
	if opts.URL == nil {
		opts.URL = func(site.Name, site.Channel) string { return "/" }
	}
	if opts.Modules.CacheDir == "" {
		opts.Modules.CacheDir = filepath.Join(opts.DataDir, "modules")
	}
	if opts.Modules.Cache == nil {
		opts.Modules.Cache = hugomod.NewCache()
	}
	l := &Loop{opts: opts, sites: make(map[site.Name]*worker), sem: make(chan struct{}, opts.Concurrency), modules: gitsrc.NewModuleCache()}
	for _, spec := range opts.Sites {
		w, err := l.newWorker(spec)
		if err != nil {
			return nil, err
		}
		l.sites[spec.Name] = w
		l.order = append(l.order, spec.Name)
	}
	// Scratch from a previous run that died mid-build.
	os.RemoveAll(filepath.Join(opts.DataDir, "tmp"))
	return l, nil
}

func (l *Loop) newWorker(spec Spec) (*worker, error) {
	w := l.worker0(spec)
	repo, err := gitsrc.Open(w.spec.Repo)
	if err != nil {
		return nil, fmt.Errorf("opening git cache of %s: %w", spec.Name, err)
	}
	w.repo = repo
	return w, nil
}

// worker0 is a worker for spec without its git cache (repo nil).
func (l *Loop) worker0(spec Spec) *worker {
	logger := l.opts.Logger.With("site", spec.Name)
	spec.Repo.Dir = filepath.Join(l.opts.DataDir, "git", string(spec.Name))
	spec.Repo.Logger = logger
	spec.Repo.Modules = l.modules
	// The limit is on what is published. A build's input may hold bigger
	// files (originals it resizes), which stream and count against the
	// tree's limit only.
	spec.Repo.Limits.MaxFile = -1
	if spec.Build.Tool == build.ToolNone {
		spec.Repo.Limits.MaxFile = spec.MaxFile
	}
	w := &worker{
		spec: spec, trigger: make(chan struct{}, 1), log: logger, done: make(chan struct{}),
		pending: make(map[site.Channel]job), failed: make(map[site.Channel]site.Commit),
		verified: make(map[site.Channel]verified),
	}
	w.cond = sync.NewCond(&w.mu)
	w.status = Status{Site: spec.Name, State: site.OutOfSync, Channels: map[site.Channel]ChannelStatus{}}
	return w
}

// start runs w under ctx and asks for a first sync. The caller holds l.mu.
func (l *Loop) start(ctx context.Context, w *worker) {
	ctx, w.stop = context.WithCancel(ctx)
	l.group.Go(func() {
		defer close(w.done)
		defer func() {
			if w.repo != nil && !w.keepRepo.Load() {
				w.repo.Close()
			}
		}()
		l.work(ctx, w)
	})
	w.request(func() { l.wantAll(w) })
}

// workers returns the current workers, in config order.
func (l *Loop) workers() []*worker {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*worker, 0, len(l.order))
	for _, name := range l.order {
		out = append(out, l.sites[name])
	}
	return out
}

func (l *Loop) worker(name site.Name) (*worker, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	w, ok := l.sites[name]
	return w, ok
}

// Update makes the loop work on specs from now on: Prepare, then Apply.
// Before Run it only records specs.
func (l *Loop) Update(specs []Spec) error {
	c, err := l.Prepare(specs)
	if err != nil {
		return err
	}
	c.Apply()
	return nil
}

// Change is a prepared Update. Everything that can fail — a duplicate
// name, credentials that do not work with the repo's URL, a git cache
// that cannot be opened — failed in Prepare, before any running worker
// was touched; Apply cannot fail, and Discard leaves the loop as it was.
// A Change is made against the loop's sites of the moment: the caller
// applies or discards it before preparing another.
type Change struct {
	l     *Loop
	order []site.Name
	start []*worker // new workers for new and changed sites, not running yet
	stop  []*worker // running workers of removed and changed sites
	// handed maps a changed site's new worker to the old one whose git
	// cache it takes over (the repository options did not change).
	handed map[*worker]*worker
	ended  bool
}

// Prepare builds the workers a reloaded config needs, next to the running
// ones: new sites start, removed sites stop (their deploys stay in the
// store), changed sites get a new worker, which syncs them; the other
// sites are not touched.
func (l *Loop) Prepare(specs []Spec) (*Change, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	c := &Change{l: l, handed: make(map[*worker]*worker)}
	want := make(map[site.Name]bool, len(specs))
	for _, s := range specs {
		if want[s.Name] {
			return nil, fmt.Errorf("site %q is listed twice", s.Name)
		}
		want[s.Name] = true
		c.order = append(c.order, s.Name)
	}
	for name, w := range l.sites {
		if !want[name] {
			c.stop = append(c.stop, w)
		}
	}
	for _, spec := range specs {
		old, running := l.sites[spec.Name]
		switch {
		case running && sameSpec(spec, old.spec):
			continue
		case running && sameRepo(spec, old.spec):
			// Same repository: the new worker takes over the git cache
			// once the old one has stopped.
			w := l.worker0(spec)
			c.handed[w] = old
			c.start = append(c.start, w)
		case running:
			// Another URL or other credentials: the cache directory is the
			// old worker's until Apply stops it, so the new worker opens it
			// when it starts; what can be checked now is.
			if err := gitsrc.Check(spec.Repo); err != nil {
				c.Discard()
				return nil, fmt.Errorf("preparing site %s: %w", spec.Name, err)
			}
			c.start = append(c.start, l.worker0(spec))
		default:
			w, err := l.newWorker(spec)
			if err != nil {
				c.Discard()
				return nil, err
			}
			c.start = append(c.start, w)
		}
		if running {
			c.stop = append(c.stop, old)
		}
	}
	return c, nil
}

// Apply swaps the prepared workers in: the old workers of removed and
// changed sites stop (a build they run is cancelled), the new ones start.
func (c *Change) Apply() {
	if c.ended {
		return
	}
	c.ended = true
	l := c.l
	kept := make(map[*worker]bool, len(c.handed))
	for _, old := range c.handed {
		kept[old] = true
	}
	// The new workers are listed at once (status and requests reach
	// them); they run once the old ones have stopped, which may take a
	// cancelled build's while: the lock is not held for that.
	l.mu.Lock()
	for _, w := range c.stop {
		delete(l.sites, w.spec.Name)
	}
	for _, w := range c.start {
		w.waiting = true
		l.sites[w.spec.Name] = w
	}
	l.order = c.order
	l.mu.Unlock()
	for _, w := range c.stop {
		if kept[w] {
			w.keepRepo.Store(true)
		}
		if w.stop != nil {
			w.stop()
			<-w.done
		} else if !kept[w] && w.repo != nil {
			w.repo.Close()
		}
		w.log.Info("site stopped", "reason", "config changed")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range c.start {
		if old, ok := c.handed[w]; ok {
			w.repo = old.repo // old has stopped: the cache is w's now
		}
		w.waiting = false
		if l.run != nil {
			l.start(l.run, w)
			w.log.Info("site started", "reason", "config changed")
		}
	}
}

// Discard drops a prepared Change: the git caches it opened are closed and
// nothing running was touched.
func (c *Change) Discard() {
	if c.ended {
		return
	}
	c.ended = true
	for _, w := range c.start {
		if w.repo != nil { // opened by Prepare; handed caches are not
			w.repo.Close()
		}
	}
}

// sameRepo reports whether two specs fetch the same repository the same way.
func sameRepo(a, b Spec) bool {
	return reflect.DeepEqual(configuredRepo(a.Repo), configuredRepo(b.Repo))
}

// sameSpec reports whether a reload leaves a site as it was.
func sameSpec(a, b Spec) bool {
	a.Repo, b.Repo = configuredRepo(a.Repo), configuredRepo(b.Repo)
	return reflect.DeepEqual(a, b)
}

// configuredRepo is o without what the loop sets: the cache directory, the
// logger, the shared submodule caches and the per-file limit (from
// Spec.MaxFile, compared there).
func configuredRepo(o gitsrc.Options) gitsrc.Options {
	o.Dir, o.Logger, o.Modules = "", nil, nil
	o.Limits.MaxFile = 0
	return o
}

// Run works until ctx ends: a first sync of every site, then one per
// request and per poll tick.
func (l *Loop) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	l.mu.Lock()
	l.run, l.group = ctx, &wg
	for _, name := range l.order {
		if w := l.sites[name]; !w.waiting { // else Apply starts it
			l.start(ctx, w)
		}
	}
	l.mu.Unlock()
	var poll, janitor, heal <-chan time.Time
	if l.opts.SelfHeal > 0 {
		t := time.NewTicker(l.opts.SelfHeal)
		defer t.Stop()
		heal = t.C
	}
	if l.opts.PollInterval > 0 {
		t := time.NewTicker(l.opts.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	if every := l.janitorInterval(); every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		janitor = t.C
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-poll:
			for _, w := range l.workers() {
				w.request(func() { l.wantAll(w) })
			}
		case <-heal:
			for _, w := range l.workers() {
				w.request(func() { w.verify = true })
			}
		case <-janitor:
			for _, w := range l.workers() {
				if w.spec.Previews.TTL > 0 {
					w.request(func() { w.expire = true })
				}
			}
		}
	}
}

// janitorInterval is how often expired previews are looked for: a tenth of
// the shortest TTL, between 1 s and 1 min.
func (l *Loop) janitorInterval() time.Duration {
	var every time.Duration
	for _, w := range l.workers() {
		if ttl := w.spec.Previews.TTL; ttl > 0 && (every == 0 || ttl/10 < every) {
			every = ttl / 10
		}
	}
	if every == 0 {
		return 0
	}
	return min(max(every, time.Second), time.Minute)
}

// wantAll asks for everything git can tell without a webhook: production,
// the branch deploys, and the pull request heads. The caller holds w.mu.
func (l *Loop) wantAll(w *worker) {
	w.pending[site.Production] = job{}
	for _, b := range w.spec.Branches {
		w.pending[site.Branch(b)] = job{}
	}
	if w.spec.Previews.Enabled {
		w.poll = true
	}
	if w.spec.Previews.TTL > 0 {
		w.expire = true
	}
}

// Trigger asks for a sync of everything of a site soon; requests coalesce.
func (l *Loop) Trigger(name site.Name) error {
	w, ok := l.worker(name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	w.request(func() { l.wantAll(w) })
	return nil
}

// Sync asks for a sync of everything of a site and waits until a run that
// started after the request has finished, returning the status it left.
func (l *Loop) Sync(ctx context.Context, name site.Name) (Status, error) {
	w, ok := l.worker(name)
	if !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	return l.wait(ctx, w, w.request(func() { l.wantAll(w) }))
}

// Heal checks a site's live deploys against the store now, repairs what is
// broken, and waits until it is done.
func (l *Loop) Heal(ctx context.Context, name site.Name) (Status, error) {
	w, ok := l.worker(name)
	if !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	return l.wait(ctx, w, w.request(func() { w.verify = true }))
}

// Settle waits until every request made so far has been worked off.
func (l *Loop) Settle(ctx context.Context, name site.Name) (Status, error) {
	w, ok := l.worker(name)
	if !ok {
		return Status{}, fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	w.mu.Lock()
	want := w.requested
	w.mu.Unlock()
	return l.wait(ctx, w, want)
}

func (l *Loop) wait(ctx context.Context, w *worker, want uint64) (Status, error) {
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
	ws := l.workers()
	out := make([]Status, 0, len(ws))
	for _, w := range ws {
		out = append(out, l.status(w))
	}
	return out
}

// SiteStatus returns one site's status.
func (l *Loop) SiteStatus(name site.Name) (Status, bool) {
	w, ok := l.worker(name)
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
	st := w.status
	st.Channels = make(map[site.Channel]ChannelStatus, len(w.status.Channels))
	for c, cs := range w.status.Channels {
		st.Channels[c] = cs
	}
	return st
}

// request records what is wanted (set runs under w.mu) and wakes the worker.
func (w *worker) request(set func()) uint64 {
	w.mu.Lock()
	set()
	w.requested++
	n := w.requested
	w.mu.Unlock()
	select {
	case w.trigger <- struct{}{}:
	default: // a run is already queued; it will cover this request
	}
	return n
}

func (l *Loop) work(ctx context.Context, w *worker) {
	var pending backoff.Timer // the retry scheduled, if any
	defer func() {
		if pending != nil {
			pending.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			w.cond.Broadcast()
			return
		case <-w.trigger:
		}
		run, cancel := context.WithCancelCause(ctx)
		w.mu.Lock()
		target := w.requested
		w.inflight = target
		jobs := w.pending
		w.pending = make(map[site.Channel]job)
		poll, expire, verify := w.poll, w.expire, w.verify
		w.poll, w.expire, w.verify = false, false, false
		w.cancelRun = cancel
		w.mu.Unlock()

		var failures []error
		if owned, err := l.claim(run, w); err != nil {
			failures = append(failures, err)
		} else if !owned {
			// Another builder's site: its requests are that one's to serve.
		} else if err := l.openRepo(w); err != nil {
			failures = append(failures, err)
		} else {
			failures = l.runJobs(run, w, jobs, poll, expire)
			if verify && run.Err() == nil {
				failures = append(failures, l.heal(run, w)...)
			}
		}
		// Only a transient failure is retried: a stalled one waits for a
		// new commit, a superseded one for the request already queued, and
		// a site whose lease was lost for its new owner.
		retry := slices.ContainsFunc(failures, func(err error) bool { return fault.KindOf(err) == fault.KindTransient }) &&
			!errors.Is(context.Cause(run), ErrLeaseLost)

		w.mu.Lock()
		w.cancelRun = nil
		cancel(nil)
		if retry {
			w.retries++
		} else {
			w.retries = 0
		}
		n := w.retries
		w.mu.Unlock()
		// One retry at a time: a run that fails again (a poll tick, a
		// webhook) moves the pending retry, so failures do not pile up
		// timers; a run that succeeds drops it. Before the run counts as
		// completed: whoever waited on it finds its retry scheduled.
		if pending != nil {
			pending.Stop()
			pending = nil
		}
		if retry && ctx.Err() == nil {
			d := l.opts.Retry.Delay(n)
			w.log.Info("will retry", "in", d.Round(time.Millisecond).String())
			pending = l.opts.RetryClock.AfterFunc(d, func() {
				if ctx.Err() == nil {
					w.request(func() { l.wantAll(w) })
				}
			})
		}
		w.mu.Lock()
		w.completed = target
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// openRepo opens w's git cache when a reload left that to the worker (the
// site's repository options changed); a failure is retried like a fetch.
func (l *Loop) openRepo(w *worker) error {
	if w.repo != nil {
		return nil
	}
	repo, err := gitsrc.Open(w.spec.Repo)
	if err != nil {
		err = fault.Transient(fmt.Errorf("opening git cache: %w", err))
		l.fail(w, site.Production, "", err)
		return err
	}
	w.repo = repo
	return nil
}

// retryDelay, the default Options.Retry, is exponential from 2s to 5m,
// jittered down to half so many sites failing on one outage do not retry
// in step.
var retryDelay = backoff.Exponential{Base: 2 * time.Second, Max: 5 * time.Minute, Jitter: backoff.Jitter{Below: 0.5}}
