package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what happened. Its value is the "event" field and the
// X-Sitehost-Event header, so the strings are part of the wire contract.
type Kind string

// The kinds of event.
const (
	DeployStarted   Kind = "deploy_started"
	DeploySucceeded Kind = "deploy_succeeded"
	DeployFailed    Kind = "deploy_failed"
	PreviewReady    Kind = "preview_ready"
	PreviewRemoved  Kind = "preview_removed"
	RolledBack      Kind = "rolled_back" // a revert detected by build-key reuse
)

// Event is one thing that happened to a site's channel.
type Event struct {
	ID             string // unique per event (Notify makes one if empty: 16 random hex); receivers dedupe on it
	Kind           Kind
	Site           string
	Channel        string    // "production", "pr-7", "branch-staging"
	Commit         string    // full SHA
	Deploy         string    // deploy id, when there is one
	URL            string    // the channel's public URL
	Message        string    // first line of the commit message, or the error for failures
	Error          string    // failures only
	Time           time.Time // when it happened (Notify uses now if zero)
	PreviousDeploy string    // for RolledBack / DeploySucceeded: what was live before
}

// Format is the body a target receives.
type Format string

// The body formats; see the package doc for both.
const (
	JSON  Format = "json"
	Slack Format = "slack"
)

// Target is one receiver.
type Target struct {
	URL    string
	Secret []byte   // HMAC-SHA256 key; nil = unsigned
	Format Format   // default JSON
	Events []Kind   // nil or empty = all
	Sites  []string // nil or empty = all sites (global targets); a site's own targets list just that site
}

// ErrBadTarget reports a target that cannot be delivered to.
var ErrBadTarget = errors.New("notify: bad target")

// Validate reports why t cannot be used, or nil. New skips invalid
// targets, so configuration loading should call it and refuse them.
func (t Target) Validate() error {
	u, err := url.Parse(t.URL)
	if err != nil {
		// url.Error repeats the raw URL, secrets and all.
		return fmt.Errorf("%w: URL %s does not parse", ErrBadTarget, maskURL(t.URL, t.Format))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: URL %s is not an absolute http(s) URL", ErrBadTarget, maskURL(t.URL, t.Format))
	}
	switch t.Format {
	case "", JSON, Slack:
	default:
		return fmt.Errorf("%w: unknown format %q (want %q or %q)", ErrBadTarget, t.Format, JSON, Slack)
	}
	return nil
}

// Options configure a Notifier. Zero values take the documented defaults.
type Options struct {
	Targets   []Target
	Client    *http.Client  // default: a 10s-timeout client that does not follow redirects
	Logger    *slog.Logger  // default: discard
	QueueSize int           // per target, default 1000
	Attempts  int           // per delivery, first try included; default 5
	Backoff   time.Duration // first retry delay, default 1s (tests use ms)
	Timeout   time.Duration // per attempt, default 10s; applies to a caller's Client too
	UserAgent string        // default "sitehost"
}

// Defaults, exported for documentation.
const (
	DefaultQueueSize = 1000
	DefaultAttempts  = 5
	DefaultBackoff   = time.Second
	DefaultTimeout   = 10 * time.Second
)

// TargetStats counts one target's deliveries since New.
type TargetStats struct {
	Delivered int64 // events a receiver accepted (2xx)
	Failed    int64 // events attempted and given up on
	Dropped   int64 // events never attempted: queue overflow, Notify after Close, abandoned by Close
	Retries   int64 // attempts after the first, over all events
	Queued    int   // events waiting now
}

// Notifier fans events out to targets. Its methods are safe for
// concurrent use.
type Notifier struct {
	opts    Options
	log     *slog.Logger
	targets []*target

	cancel context.CancelFunc // aborts deliveries when Close gives up
	wg     sync.WaitGroup     // delivery goroutines
	done   chan struct{}      // closed when every delivery goroutine has exited

	// mu is held for reading across Notify's fan-out, so once Close has
	// set closed no event can slip into a queue whose worker has exited.
	mu     sync.RWMutex
	closed bool
}

// New starts one delivery goroutine per valid target; invalid targets are
// logged and skipped. Call Close to stop them.
func New(opts Options) *Notifier {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "sitehost"
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout: opts.Timeout,
			// A 301/302 would turn the POST into a GET without the body;
			// a moved webhook is a configuration error to surface.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	n := &Notifier{
		opts: opts,
		log:  opts.Logger, // the caller names the component: one per line
		done: make(chan struct{}),
	}
	// Deliveries outlive any caller's ctx: they run on their own, which
	// Close cancels when its deadline passes.
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	seen := map[string]int{}
	for _, tc := range opts.Targets {
		if err := tc.Validate(); err != nil {
			n.log.Error("skipping notification target", "error", err)
			continue
		}
		if tc.Format == "" {
			tc.Format = JSON
		}
		key := maskURL(tc.URL, tc.Format)
		// Masking can make two targets look alike (every Slack hook is
		// "https://hooks.slack.com/…"); Stats keys must stay distinct.
		if seen[key]++; seen[key] > 1 {
			key = fmt.Sprintf("%s (%d)", key, seen[key])
		}
		t := &target{
			cfg:  tc,
			key:  key,
			wake: make(chan struct{}, 1),
			log:  n.log.With("target", key),
		}
		n.targets = append(n.targets, t)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(ctx, t)
		}()
	}
	go func() {
		n.wg.Wait()
		close(n.done)
	}()
	return n
}

// Notify queues e for every target that wants it and returns at once. It
// fills in an empty ID and a zero Time first, so every target receives
// the same ones. After Close it drops e.
func (n *Notifier) Notify(e Event) {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, t := range n.targets {
		if !t.wants(e) {
			continue
		}
		if n.closed {
			t.dropped.Add(1)
			t.log.Debug("notifier closed; dropping event", "event", e.Kind, "delivery", e.ID)
			continue
		}
		t.enqueue(e, n.opts.QueueSize)
	}
}

// Close stops accepting events and waits for the queued ones to be
// delivered. When ctx ends first it aborts in-flight requests and
// retries, drops what is still queued, and returns ctx's error once the
// delivery goroutines have exited, which is promptly. Calling it again
// waits for the same shutdown.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	first := !n.closed
	n.closed = true
	n.mu.Unlock()
	// From here no event enters a queue, so a worker that finds its
	// queue empty may exit.
	if first {
		for _, t := range n.targets {
			t.signal() // an idle worker must notice it can exit
		}
	}
	select {
	case <-n.done:
		n.cancel()
		return nil
	case <-ctx.Done():
		select {
		case <-n.done: // drained just as ctx ended: nothing was lost
			n.cancel()
			return nil
		default:
		}
	}
	n.cancel()
	<-n.done
	var abandoned int
	for _, t := range n.targets {
		abandoned += t.abandon()
	}
	if abandoned > 0 {
		n.log.Warn("gave up on queued notifications at shutdown", "dropped", abandoned)
	}
	return fmt.Errorf("closing notifier (%d queued events dropped): %w", abandoned, ctx.Err())
}

// Stats reports each target's counters, keyed by its masked URL.
func (n *Notifier) Stats() map[string]TargetStats {
	out := make(map[string]TargetStats, len(n.targets))
	for _, t := range n.targets {
		t.mu.Lock()
		queued := len(t.queue)
		t.mu.Unlock()
		out[t.key] = TargetStats{
			Delivered: t.delivered.Load(),
			Failed:    t.failed.Load(),
			Dropped:   t.dropped.Load(),
			Retries:   t.retries.Load(),
			Queued:    queued,
		}
	}
	return out
}

// target is one receiver's queue and counters.
type target struct {
	cfg  Target
	key  string // masked URL: safe to log
	log  *slog.Logger
	wake chan struct{} // capacity 1: "the queue changed or we are closing"

	mu          sync.Mutex
	queue       []Event
	overflowing bool  // drops happened since the queue was last empty
	episode     int64 // drops in the current overflow

	delivered, failed, dropped, retries atomic.Int64
}

func (t *target) wants(e Event) bool {
	return (len(t.cfg.Events) == 0 || slices.Contains(t.cfg.Events, e.Kind)) &&
		(len(t.cfg.Sites) == 0 || slices.Contains(t.cfg.Sites, e.Site))
}

// enqueue appends e, dropping the oldest event when the queue is full.
// It holds the lock only for slice operations, so it cannot block on the
// receiver.
func (t *target) enqueue(e Event, size int) {
	t.mu.Lock()
	var first bool
	if len(t.queue) >= size {
		t.queue[0] = Event{} // let the strings be collected
		t.queue = t.queue[1:]
		t.dropped.Add(1)
		t.episode++
		first = !t.overflowing
		t.overflowing = true
	}
	t.queue = append(t.queue, e)
	t.mu.Unlock()
	t.signal()
	if first {
		// One line per overflow, not per drop: a dead receiver under a
		// busy pipeline would otherwise flood the log.
		t.log.Warn("notification queue full; dropping oldest events until it drains", "queue_size", size)
	}
}

func (t *target) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// next pops the oldest event. ok is false when the queue is empty.
func (t *target) next() (e Event, ok bool) {
	t.mu.Lock()
	if len(t.queue) == 0 {
		// Reset so the backing array does not creep forward forever.
		t.queue = nil
		overflowed := t.episode
		t.overflowing, t.episode = false, 0
		t.mu.Unlock()
		if overflowed > 0 {
			// Logged outside the lock: a slow log handler must not stall Notify.
			t.log.Warn("notification queue drained after overflow", "dropped", overflowed)
		}
		return Event{}, false
	}
	e = t.queue[0]
	t.queue[0] = Event{}
	t.queue = t.queue[1:]
	t.mu.Unlock()
	return e, true
}

// abandon drops everything still queued and returns how many.
func (t *target) abandon() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.queue)
	t.dropped.Add(int64(n))
	t.queue = nil
	t.overflowing, t.episode = false, 0
	return n
}

// newID returns 16 random hex characters.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
