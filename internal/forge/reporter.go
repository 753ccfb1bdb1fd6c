package forge

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/sitehost/sitehost/internal/backoff"
	"github.com/sitehost/sitehost/internal/site"
)

// ReporterOptions tunes a Reporter. Zero values mean the defaults.
type ReporterOptions struct {
	Attempts  int                             // tries per status, first included; default 5
	Backoff   func(attempt int) time.Duration // wait after failed attempt n (1-based); default exponential 1s..30s with jitter
	QueueSize int                             // statuses waiting for Run; default 1000
}

const (
	// attemptTimeout bounds one request, so a hanging forge is retried.
	attemptTimeout = 30 * time.Second
	// maxRetryAfter caps a server-requested wait.
	maxRetryAfter = 5 * time.Minute
)

// Reporter sends statuses in the background with retries, so reporting
// never blocks a deploy. Report enqueues; Run delivers.
//
// Statuses with the same client, commit and context are delivered one at a
// time, in order, and the newest supersedes any older one not yet
// delivered, including one waiting for a retry. Statuses with different
// keys are delivered concurrently.
type Reporter struct {
	log      *slog.Logger
	attempts int
	backoff  func(int) time.Duration
	queue    chan job

	mu    sync.Mutex
	slots map[key]*slot // keys with a delivery goroutine running
}

type job struct {
	c Client
	s Status
}

// key identifies a status stream on a forge. Client values must be
// comparable; the ones New returns are.
type key struct {
	c       Client
	commit  site.Commit
	context string
}

// slot holds the newest status for a key that is not yet being sent.
type slot struct {
	next *Status       // guarded by Reporter.mu
	wake chan struct{} // capacity 1; signalled when next is set
}

// NewReporter returns a Reporter logging to logger (nil discards).
func NewReporter(logger *slog.Logger, opts ReporterOptions) *Reporter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff == nil {
		opts.Backoff = defaultBackoff
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	return &Reporter{
		log:      logger, // the caller names the component: one per line
		attempts: opts.Attempts,
		backoff:  opts.Backoff,
		queue:    make(chan job, opts.QueueSize),
		slots:    make(map[key]*slot),
	}
}

// defaultBackoff waits 1s, 2s, 4s … up to 30s after failed attempt n,
// plus up to 25% jitter, never more than 30s.
var defaultBackoff = backoff.Exponential{Base: time.Second, Max: 30 * time.Second, Jitter: backoff.Jitter{Above: 0.25}}.Delay

// Report enqueues s for delivery through c. It never blocks: when the
// queue is full, s is dropped with a warning.
func (r *Reporter) Report(c Client, s Status) {
	if c == nil || !reflect.TypeOf(c).Comparable() {
		r.log.Error("dropping commit status: client is nil or not comparable", statusAttrs(s)...)
		return
	}
	if s.Context == "" {
		s.Context = defaultContext
	}
	select {
	case r.queue <- job{c: c, s: s}:
	default:
		r.log.Warn("dropping commit status: queue full", append(clientAttrs(c), statusAttrs(s)...)...)
	}
}

// Run delivers queued statuses until ctx ends, then cancels deliveries in
// flight and returns once they have stopped. Statuses still queued then are
// not delivered. Call Run once.
func (r *Reporter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-r.queue:
			k := key{c: j.c, commit: j.s.Commit, context: j.s.Context}
			r.mu.Lock()
			sl, running := r.slots[k]
			if !running {
				sl = &slot{wake: make(chan struct{}, 1)}
				r.slots[k] = sl
			}
			sl.next = &j.s // supersedes any status not yet started
			select {
			case sl.wake <- struct{}{}:
			default:
			}
			r.mu.Unlock()
			if !running {
				wg.Go(func() { r.deliverAll(ctx, k, sl) })
			}
		}
	}
}

// deliverAll sends the newest status of k until none is left.
func (r *Reporter) deliverAll(ctx context.Context, k key, sl *slot) {
	for {
		r.mu.Lock()
		s := sl.next
		sl.next = nil
		select {
		case <-sl.wake:
		default:
		}
		if s == nil || ctx.Err() != nil {
			delete(r.slots, k)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.deliver(ctx, k.c, *s, sl.wake)
	}
}

// deliver sends s with retries. It gives up early when ctx ends or when
// a newer status for the same key arrives (signalled on newer).
func (r *Reporter) deliver(ctx context.Context, c Client, s Status, newer <-chan struct{}) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := c.SetStatus(actx, s)
		cancel()
		if err == nil {
			r.log.Debug("commit status set", append(clientAttrs(c), statusAttrs(s)...)...)
			return
		}
		if ctx.Err() != nil {
			return
		}
		attrs := append(append(clientAttrs(c), statusAttrs(s)...), errorAttrs(err)...)
		wait, retry := r.retryWait(err, attempt)
		if !retry {
			r.log.Error("setting commit status failed", attrs...)
			return
		}
		if attempt >= r.attempts {
			r.log.Error("setting commit status failed; giving up", append(attrs, "attempts", attempt)...)
			return
		}
		r.log.Warn("setting commit status failed; retrying", append(attrs, "attempt", attempt, "wait", wait.String())...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-newer:
			t.Stop()
			r.log.Debug("commit status superseded before retry", append(clientAttrs(c), statusAttrs(s)...)...)
			return
		case <-t.C:
		}
	}
}

// retryWait reports whether err is worth retrying and how long to wait:
// network errors, 5xx and 429 are; a server's Retry-After wins over the
// backoff, up to maxRetryAfter.
func (r *Reporter) retryWait(err error, attempt int) (time.Duration, bool) {
	if ae, ok := errors.AsType[*apiError](err); ok {
		if !ae.Retryable {
			return 0, false
		}
		if ae.HasRetry {
			return min(ae.RetryAfter, maxRetryAfter), true
		}
	}
	return r.backoff(attempt), true
}

// clientAttrs names the forge and repository when c says what they are.
func clientAttrs(c Client) []any {
	if d, ok := c.(interface {
		forgeName() string
		repoName() string
	}); ok {
		return []any{"forge", d.forgeName(), "repo", d.repoName()}
	}
	return nil
}

func statusAttrs(s Status) []any {
	return []any{"commit", s.Commit.Short(), "context", s.Context, "state", string(s.State)}
}

func errorAttrs(err error) []any {
	attrs := []any{"error", err.Error()}
	if ae, ok := errors.AsType[*apiError](err); ok {
		attrs = append(attrs, "status_code", ae.Code, "body", ae.Body)
	}
	return attrs
}
