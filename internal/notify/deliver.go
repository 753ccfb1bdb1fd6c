package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/backoff"
)

const (
	// maxRetryAfter caps a receiver's Retry-After: one hostile or confused
	// receiver must not park its queue for hours.
	maxRetryAfter = time.Minute
	// maxBackoff caps the exponential wait for large Attempts.
	maxBackoff = 5 * time.Minute
	// maxDrain bounds how much of a response body is read (to reuse the
	// connection) before it is closed.
	maxDrain = 64 << 10
	// snippetLen is how much of a refusal's body goes into the log.
	snippetLen = 256
)

// run is a target's delivery goroutine: it delivers queued events one at
// a time, which is what keeps them in order.
func (n *Notifier) run(ctx context.Context, t *target) {
	for {
		if ctx.Err() != nil {
			return // Close gave up; it counts what is left as dropped
		}
		e, ok := t.next()
		if !ok {
			if n.isClosed() {
				return
			}
			select {
			case <-t.wake:
			case <-ctx.Done():
			}
			continue
		}
		n.deliver(ctx, t, e)
	}
}

func (n *Notifier) isClosed() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.closed
}

// deliver posts e to t, retrying transient failures, and counts the
// outcome.
func (n *Notifier) deliver(ctx context.Context, t *target, e Event) {
	log := t.log.With("event", e.Kind, "delivery", e.ID, "site", e.Site, "channel", e.Channel)
	body, err := encode(t.cfg.Format, e)
	if err != nil {
		t.failed.Add(1)
		log.Error("notification not sent", "error", err)
		return
	}
	for attempt := 1; ; attempt++ {
		res := n.post(ctx, t, e, body)
		switch {
		case res.err == nil:
			t.delivered.Add(1)
			log.Debug("notification delivered", "attempt", attempt, "status", res.status)
			return
		case ctx.Err() != nil:
			t.failed.Add(1)
			log.Warn("notification abandoned at shutdown", "attempt", attempt, "error", res.err)
			return
		case !res.retry || attempt >= n.opts.Attempts:
			t.failed.Add(1)
			log.Warn("notification failed", "attempts", attempt, "status", res.status, "error", res.err)
			return
		}
		wait := max(retryWait(n.opts.Backoff, attempt), res.retryAfter)
		log.Debug("notification attempt failed; will retry", "attempt", attempt, "status", res.status, "retry_in", wait, "error", res.err)
		if !sleep(ctx, wait) {
			t.failed.Add(1)
			log.Warn("notification abandoned at shutdown", "attempt", attempt, "error", res.err)
			return
		}
		t.retries.Add(1)
	}
}

// result is one attempt's outcome.
type result struct {
	status     int   // 0 when no response arrived
	err        error // nil on 2xx
	retry      bool
	retryAfter time.Duration
}

// post makes one attempt. Its errors never contain the raw target URL.
func (n *Notifier) post(ctx context.Context, t *target, e Event, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: fmt.Errorf("building request: %w", t.scrub(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.opts.UserAgent)
	req.Header.Set("X-Sitehost-Event", string(e.Kind))
	req.Header.Set("X-Sitehost-Delivery", e.ID)
	if len(t.cfg.Secret) > 0 {
		req.Header.Set(SignatureHeader, sign(t.cfg.Secret, body))
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		// Network errors and timeouts are worth another try.
		return result{err: fmt.Errorf("posting: %w", t.scrub(err)), retry: true}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))

	res := result{status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return res
	}
	res.err = fmt.Errorf("receiver answered %s: %q", resp.Status, bytes.TrimSpace(snippet))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500:
		res.retry = true
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return res
}

// scrub takes the raw URL, which may hold a token, out of err: the
// *url.Error from Client.Do quotes it.
func (t *target) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: t.key, Err: ue.Err}
	}
	if msg := err.Error(); strings.Contains(msg, t.cfg.URL) {
		// A caller's Client or transport might quote it elsewhere.
		err = errors.New(strings.ReplaceAll(msg, t.cfg.URL, t.key))
	}
	return err
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date, capped at
// maxRetryAfter; 0 means absent or unreadable.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter // before multiplying, which could overflow
		}
		d = time.Duration(s) * time.Second
	} else if at, err := http.ParseTime(h); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// retryWait returns the wait before retry number attempt (1-based): base
// doubled per attempt, capped, then spread over [d/2, 3d/2] so that
// targets failing together do not retry in lockstep.
func retryWait(base time.Duration, attempt int) time.Duration {
	e := backoff.Exponential{Base: base, Max: maxBackoff, Jitter: backoff.Jitter{Below: 0.5, Above: 0.5}}
	return e.Delay(attempt)
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
