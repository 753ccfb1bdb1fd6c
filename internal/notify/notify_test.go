package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/notify"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

var when = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// hit is one request a receiver got.
type hit struct {
	path   string
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an httptest server that records requests and answers with
// respond, called with the 1-based request number.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		if _, err := body.ReadFrom(r.Body); err != nil {
			t.Errorf("reading request body: %v", err)
		}
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{path: r.URL.Path, header: r.Header.Clone(), body: body.Bytes(), at: time.Now()})
		n := len(rc.hits)
		rc.mu.Unlock()
		if respond != nil {
			respond(n, w, r)
		}
	}))
	t.Cleanup(func() {
		rc.CloseClientConnections() // ends handlers that wait on the request's ctx
		rc.Close()
	})
	return rc
}

func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

// deliveries returns the X-Sitehost-Delivery of each request to path
// ("" = all), in arrival order.
func deliveries(hits []hit, path string) []string {
	var out []string
	for _, h := range hits {
		if path == "" || h.path == path {
			out = append(out, h.header.Get("X-Sitehost-Delivery"))
		}
	}
	return out
}

// closeNow drains n with a generous deadline; a test that needs a short
// one calls Close itself.
func closeNow(t *testing.T, n *notify.Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// closeWithin calls Close with a ctx that ends after d, and fails the
// test, instead of hanging it, when Close ignores that. The margin is a
// failsafe: Close returns promptly once ctx ends, and does not wait for
// a request or a retry in flight.
func closeWithin(t *testing.T, n *notify.Notifier, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Close(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d + 10*time.Second):
		t.Fatalf("Close(ctx ending after %v) did not return within 10s more", d)
		return nil
	}
}

// waitUntil polls cond until it holds. The deadline is a failsafe that
// only fails a hung test; the test waits for the condition, not a time.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// syncBuffer is a log sink safe for the delivery goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fullEvent() notify.Event {
	return notify.Event{
		ID:             "0123456789abcdef",
		Kind:           notify.DeploySucceeded,
		Site:           "blog",
		Channel:        "production",
		Commit:         "abc1234def5678abc1234def5678abc1234def56",
		Deploy:         "d00d00d00d00d00d",
		URL:            "https://blog.example.com/",
		Message:        "Fix typo <in> header & footer",
		Error:          "none, but every field must arrive",
		Time:           when,
		PreviousDeploy: "beefbeefbeefbeef",
	}
}

// A signed JSON delivery carries every field and verifies with the
// target's secret only.
func TestJSONDeliverySigned(t *testing.T) {
	secret := []byte("s3cret")
	rc := newReceiver(t, nil)
	n := notify.New(notify.Options{
		Targets: []notify.Target{
			{URL: rc.URL + "/signed", Secret: secret},
			{URL: rc.URL + "/unsigned"},
		},
		Backoff:   time.Millisecond,
		UserAgent: "sitehost/test",
	})
	n.Notify(fullEvent())
	closeNow(t, n)

	hits := rc.got()
	if len(hits) != 2 {
		t.Fatalf("got %d requests, want 2", len(hits))
	}
	for _, h := range hits {
		signed := h.path == "/signed"
		sig := h.header.Get(notify.SignatureHeader)
		if got := sig != ""; got != signed {
			t.Errorf("%s: signature header present = %v, want %v", h.path, got, signed)
		}
		if signed {
			if !notify.Verify(secret, h.body, sig) {
				t.Errorf("%s: Verify with the right secret failed", h.path)
			}
			if notify.Verify([]byte("wrong"), h.body, sig) {
				t.Errorf("%s: Verify with a wrong secret succeeded", h.path)
			}
		}
		for name, want := range map[string]string{
			"Content-Type":        "application/json",
			"User-Agent":          "sitehost/test",
			"X-Sitehost-Event":    "deploy_succeeded",
			"X-Sitehost-Delivery": "0123456789abcdef",
		} {
			if got := h.header.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", h.path, name, got, want)
			}
		}
		var got map[string]string
		if err := json.Unmarshal(h.body, &got); err != nil {
			t.Fatalf("%s: decoding body %s: %v", h.path, h.body, err)
		}
		want := map[string]string{
			"id":              "0123456789abcdef",
			"event":           "deploy_succeeded",
			"site":            "blog",
			"channel":         "production",
			"commit":          "abc1234def5678abc1234def5678abc1234def56",
			"deploy":          "d00d00d00d00d00d",
			"url":             "https://blog.example.com/",
			"message":         "Fix typo <in> header & footer",
			"error":           "none, but every field must arrive",
			"previous_deploy": "beefbeefbeefbeef",
			"time":            "2025-03-14T15:09:26Z",
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: body\n got %v\nwant %v", h.path, got, want)
		}
	}
}

// Empty fields are omitted; Notify fills in the ID and time, the same for
// every target.
func TestJSONDefaults(t *testing.T) {
	rc := newReceiver(t, nil)
	n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL + "/a"}, {URL: rc.URL + "/b"}}})
	before := time.Now().Add(-time.Second)
	n.Notify(notify.Event{Kind: notify.PreviewRemoved, Site: "blog", Channel: "pr-7"})
	closeNow(t, n)

	hits := rc.got()
	if len(hits) != 2 {
		t.Fatalf("got %d requests, want 2", len(hits))
	}
	var ids []string
	for _, h := range hits {
		var got map[string]string
		if err := json.Unmarshal(h.body, &got); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(maps.Keys(got))
		if want := []string{"channel", "event", "id", "site", "time"}; !slices.Equal(keys, want) {
			t.Errorf("fields %v, want %v", keys, want)
		}
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got["id"]) {
			t.Errorf("id %q is not 16 hex", got["id"])
		}
		if got["id"] != h.header.Get("X-Sitehost-Delivery") {
			t.Errorf("id %q differs from X-Sitehost-Delivery %q", got["id"], h.header.Get("X-Sitehost-Delivery"))
		}
		at, err := time.Parse(time.RFC3339, got["time"])
		if err != nil || at.Before(before) || at.After(time.Now()) {
			t.Errorf("time %q: not now (%v)", got["time"], err)
		}
		ids = append(ids, got["id"])
	}
	if ids[0] != ids[1] {
		t.Errorf("targets got different ids %q; receivers dedupe on it", ids)
	}
}

func TestVerify(t *testing.T) {
	// The HMAC-SHA256 test vector from Wikipedia, so Verify is checked
	// against an outside answer rather than against sign.
	secret, body := []byte("key"), []byte("The quick brown fox jumps over the lazy dog")
	const good = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	tests := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		want   bool
	}{
		{"valid", secret, body, good, true},
		{"uppercase hex", secret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), true},
		{"wrong secret", []byte("other"), body, good, false},
		{"tampered body", secret, append(slices.Clone(body), '.'), good, false},
		{"no prefix", secret, body, strings.TrimPrefix(good, "sha256="), false},
		{"sha1 prefix", secret, body, "sha1=" + strings.TrimPrefix(good, "sha256="), false},
		{"not hex", secret, body, "sha256=zz", false},
		{"truncated", secret, body, good[:len(good)-2], false},
		{"empty header", secret, body, "", false},
		{"nil secret", nil, body, good, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notify.Verify(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	events := []notify.Event{
		{ID: "blog-started", Kind: notify.DeployStarted, Site: "blog"},
		{ID: "blog-failed", Kind: notify.DeployFailed, Site: "blog"},
		{ID: "docs-failed", Kind: notify.DeployFailed, Site: "docs"},
		{ID: "docs-preview", Kind: notify.PreviewReady, Site: "docs"},
		{ID: "shop-rollback", Kind: notify.RolledBack, Site: "shop"},
	}
	tests := []struct {
		name   string
		target notify.Target
		want   []string
	}{
		{"all", notify.Target{}, []string{"blog-started", "blog-failed", "docs-failed", "docs-preview", "shop-rollback"}},
		{"empty lists mean all", notify.Target{Events: []notify.Kind{}, Sites: []string{}}, []string{"blog-started", "blog-failed", "docs-failed", "docs-preview", "shop-rollback"}},
		{"failures only", notify.Target{Events: []notify.Kind{notify.DeployFailed}}, []string{"blog-failed", "docs-failed"}},
		{"one site", notify.Target{Sites: []string{"docs"}}, []string{"docs-failed", "docs-preview"}},
		{"site and kind", notify.Target{Sites: []string{"blog", "shop"}, Events: []notify.Kind{notify.DeployFailed, notify.RolledBack}}, []string{"blog-failed", "shop-rollback"}},
		{"nothing matches", notify.Target{Sites: []string{"wiki"}}, nil},
	}
	rc := newReceiver(t, nil)
	var targets []notify.Target
	for i, tt := range tests {
		tt.target.URL = fmt.Sprintf("%s/%d", rc.URL, i)
		targets = append(targets, tt.target)
	}
	n := notify.New(notify.Options{Targets: targets})
	for _, e := range events {
		e.Time = when
		n.Notify(e)
	}
	closeNow(t, n)
	hits := rc.got()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deliveries(hits, fmt.Sprintf("/%d", i)); !slices.Equal(got, tt.want) {
				t.Errorf("delivered %q, want %q", got, tt.want)
			}
		})
	}
}

// statusSeq answers the listed statuses in turn, then 200.
func statusSeq(statuses ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= len(statuses) {
			w.WriteHeader(statuses[n-1])
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		hits     int
		want     notify.TargetStats
	}{
		{"ok", nil, 1, notify.TargetStats{Delivered: 1}},
		{"204 is success", []int{http.StatusNoContent}, 1, notify.TargetStats{Delivered: 1}},
		{"503 twice then 200", []int{503, 503}, 3, notify.TargetStats{Delivered: 1, Retries: 2}},
		{"408 is retried", []int{408}, 2, notify.TargetStats{Delivered: 1, Retries: 1}},
		{"429 is retried", []int{429}, 2, notify.TargetStats{Delivered: 1, Retries: 1}},
		{"500 until attempts run out", []int{500, 502, 503, 504}, 4, notify.TargetStats{Failed: 1, Retries: 3}},
		{"400 is final", []int{400}, 1, notify.TargetStats{Failed: 1}},
		{"404 is final", []int{404}, 1, notify.TargetStats{Failed: 1}},
		{"redirect is not followed", []int{http.StatusMovedPermanently}, 1, notify.TargetStats{Failed: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, statusSeq(tt.statuses...))
			n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL}}, Attempts: 4, Backoff: time.Millisecond})
			n.Notify(notify.Event{Kind: notify.DeployFailed, Site: "blog"})
			closeNow(t, n)
			if got := len(rc.got()); got != tt.hits {
				t.Errorf("receiver got %d requests, want %d", got, tt.hits)
			}
			if got := n.Stats()[rc.URL]; got != tt.want {
				t.Errorf("Stats = %+v, want %+v", got, tt.want)
			}
			ids := deliveries(rc.got(), "")
			if len(slices.Compact(ids)) != 1 {
				t.Errorf("retries carried different delivery ids %q", ids)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL}}, Backoff: time.Millisecond})
	n.Notify(notify.Event{Kind: notify.DeployStarted})
	closeNow(t, n)
	hits := rc.got()
	if len(hits) != 2 {
		t.Fatalf("got %d requests, want 2", len(hits))
	}
	// The backoff alone would wait about a millisecond.
	if gap := hits[1].at.Sub(hits[0].at); gap < 900*time.Millisecond {
		t.Errorf("retried after %v; Retry-After asked for 1s", gap)
	}
	if got := n.Stats()[rc.URL]; got.Delivered != 1 || got.Retries != 1 {
		t.Errorf("Stats = %+v, want 1 delivered after 1 retry", got)
	}
}

// A dead receiver is retried, and neither logs nor Stats keys show the
// credentials in its URL.
func TestNetworkErrorRetriedAndMasked(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens on its port any more
	target := strings.Replace(dead.URL, "http://", "http://user:pa55word@", 1) + "/hook?token=t0ken"
	var logs syncBuffer
	n := notify.New(notify.Options{
		Targets:  []notify.Target{{URL: target}},
		Attempts: 3,
		Backoff:  time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	n.Notify(notify.Event{Kind: notify.DeployStarted, Site: "blog"})
	closeNow(t, n)

	stats := n.Stats()
	key := "http://…@" + strings.TrimPrefix(dead.URL, "http://") + "/hook?…"
	if got, ok := stats[key]; !ok {
		t.Errorf("Stats keys %v, want %q", slices.Collect(maps.Keys(stats)), key)
	} else if want := (notify.TargetStats{Failed: 1, Retries: 2}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	out := logs.String()
	if !strings.Contains(out, "connection refused") || !strings.Contains(out, "notification failed") {
		t.Errorf("log does not report the failure:\n%s", out)
	}
	for _, secret := range []string{"pa55word", "t0ken"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
}

// hang returns a handler that blocks until the request is abandoned or the
// test ends.
func hang(t *testing.T) func(int, http.ResponseWriter, *http.Request) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// Notify must never wait for a receiver: 10,000 events against a hanging
// one return at once, the queue stays at its bound and no goroutine is
// started per event.
func TestNotifyNeverBlocks(t *testing.T) {
	rc := newReceiver(t, hang(t))
	before := runtime.NumGoroutine()
	n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL}}, QueueSize: 10, Backoff: time.Millisecond})

	// Notify returning at all, with the receiver hanging, is the
	// behaviour; the failsafe only stops a test that would hang.
	const events = 10_000
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for i := range events {
			n.Notify(notify.Event{Kind: notify.DeployStarted, Site: "blog", Message: fmt.Sprint(i)})
		}
	}()
	select {
	case <-returned:
	case <-time.After(time.Minute):
		t.Fatalf("Notify of %d events blocked on a hanging receiver", events)
	}
	st := n.Stats()[rc.URL]
	// At most one event is in flight; the rest beyond the queue are dropped.
	if st.Queued > 10 || st.Dropped < events-10-1 || st.Dropped+int64(st.Queued) > events {
		t.Errorf("Stats = %+v, want ≤10 queued and ≥%d dropped", st, events-11)
	}
	if grew := runtime.NumGoroutine() - before; grew > 20 {
		t.Errorf("%d goroutines more than before New; delivery must not start one per event", grew)
	}
	if got := notifierGoroutines(); got != 2 {
		t.Errorf("%d notifier goroutines, want 2 (one worker, one waiter)", got)
	}

	// closeWithin fails the test if Close waits for the receiver.
	if err := closeWithin(t, n, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with an expired ctx = %v, want context.DeadlineExceeded", err)
	}
	// Every queued event is now accounted for; the in-flight one failed.
	st = n.Stats()[rc.URL]
	if st.Queued != 0 || st.Delivered != 0 || st.Failed != 1 || st.Dropped != events-1 {
		t.Errorf("after Close, Stats = %+v, want 1 failed and %d dropped", st, events-1)
	}
	// The waiter may still be returning from close(done).
	waitUntil(t, "no notifier goroutine is left after Close", func() bool { return notifierGoroutines() == 0 })
}

// notifierGoroutines counts goroutines running the notifier's code. It
// reads stacks rather than runtime.NumGoroutine, which also counts HTTP
// connection goroutines that wind down on their own schedule.
func notifierGoroutines() int {
	count := 0
	for _, g := range goroutines() {
		if strings.Contains(g, "sitehost/internal/notify.New") || strings.Contains(g, "sitehost/internal/notify.(*Notifier).run") {
			count++
		}
	}
	return count
}

// parkedIn reports whether some goroutine is blocked with fn as its
// innermost function, as in "parkedIn(\"notify.(*Notifier).run\")": the
// state a test waits for instead of sleeping until it is probably there.
func parkedIn(fn string) bool {
	for _, g := range goroutines() {
		_, frames, _ := strings.Cut(g, "\n")
		if strings.HasPrefix(frames, "github.com/sitehost/sitehost/internal/"+fn+"(") {
			return true
		}
	}
	return false
}

// goroutines returns the stack of every goroutine.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")
}

// One target's deliveries arrive in Notify order, even when one of them
// needs retries.
func TestOrderPreserved(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 3 || n == 4 { // the third event fails twice
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL}}, Backoff: time.Millisecond})
	var want []string
	for i := range 50 {
		id := fmt.Sprintf("event-%02d", i)
		want = append(want, id)
		n.Notify(notify.Event{ID: id, Kind: notify.DeployStarted})
	}
	closeNow(t, n)
	got := slices.Compact(deliveries(rc.got(), ""))
	if !slices.Equal(got, want) {
		t.Errorf("delivery order\n got %q\nwant %q", got, want)
	}
	if st := n.Stats()[rc.URL]; st.Delivered != 50 || st.Retries != 2 {
		t.Errorf("Stats = %+v, want 50 delivered, 2 retries", st)
	}
}

// Close waits for queued events when the receiver keeps up, and later
// events are dropped rather than sent.
func TestCloseDrains(t *testing.T) {
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) { time.Sleep(2 * time.Millisecond) })
	n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL}}})
	for range 30 {
		n.Notify(notify.Event{Kind: notify.DeploySucceeded})
	}
	closeNow(t, n)
	if got := len(rc.got()); got != 30 {
		t.Errorf("receiver got %d of 30 events before Close returned", got)
	}
	n.Notify(notify.Event{Kind: notify.DeploySucceeded})
	if err := n.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := len(rc.got()); got != 30 {
		t.Errorf("an event notified after Close was sent (%d requests)", got)
	}
	if st := n.Stats()[rc.URL]; st != (notify.TargetStats{Delivered: 30, Dropped: 1}) {
		t.Errorf("Stats = %+v, want 30 delivered, 1 dropped", st)
	}
}

// Close wakes a delivery goroutine that is waiting for work.
func TestCloseIdle(t *testing.T) {
	rc := newReceiver(t, nil)
	n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL}}})
	n.Notify(notify.Event{Kind: notify.DeployStarted})
	waitUntil(t, "the event is delivered", func() bool { return n.Stats()[rc.URL].Delivered == 1 })
	waitUntil(t, "the worker waits for work", func() bool { return parkedIn("notify.(*Notifier).run") })
	// A worker Close did not wake would keep Close waiting until ctx ends.
	if err := closeWithin(t, n, time.Minute); err != nil {
		t.Errorf("Close of an idle notifier = %v, want nil", err)
	}
}

// Close gives up when its ctx ends, even mid-request or mid-backoff.
func TestCloseGivesUp(t *testing.T) {
	tests := []struct {
		name    string
		respond func(t *testing.T) func(int, http.ResponseWriter, *http.Request)
		busy    func(rc *receiver) bool // the delivery is mid-request or mid-backoff
	}{
		{"hanging receiver", hang, func(rc *receiver) bool { return len(rc.got()) > 0 }},
		{"waiting to retry", func(*testing.T) func(int, http.ResponseWriter, *http.Request) {
			return func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "60")
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}, func(*receiver) bool { return parkedIn("notify.sleep") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.respond(t))
			n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL}}, Backoff: time.Millisecond})
			for range 5 {
				n.Notify(notify.Event{Kind: notify.DeployStarted})
			}
			waitUntil(t, "the first delivery is under way", func() bool { return tt.busy(rc) })
			if err := closeWithin(t, n, 0); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want context.DeadlineExceeded", err)
			}
			if st := n.Stats()[rc.URL]; st != (notify.TargetStats{Failed: 1, Dropped: 4}) {
				t.Errorf("Stats = %+v, want 1 failed (in flight), 4 dropped", st)
			}
		})
	}
}

// Masked URLs are the Stats keys, and stay distinct when masking makes
// two targets look alike.
func TestStatsKeys(t *testing.T) {
	n := notify.New(notify.Options{Targets: []notify.Target{
		{URL: "https://hooks.slack.com/services/T000/B000/XXXXsecret", Format: notify.Slack},
		{URL: "https://hooks.slack.com/services/T000/B111/YYYYsecret", Format: notify.Slack},
		{URL: "https://ci.example.com/hooks/sitehost"},
		{URL: "ftp://example.com/nope"}, // invalid: skipped
	}})
	defer closeNow(t, n)
	got := slices.Sorted(maps.Keys(n.Stats()))
	want := []string{
		"https://ci.example.com/hooks/sitehost",
		"https://hooks.slack.com/…",
		"https://hooks.slack.com/… (2)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Stats keys %q, want %q", got, want)
	}
}

func TestTargetValidate(t *testing.T) {
	tests := []struct {
		name   string
		target notify.Target
		ok     bool
	}{
		{"https", notify.Target{URL: "https://example.com/hook"}, true},
		{"http slack", notify.Target{URL: "http://mm.local/hooks/abc", Format: notify.Slack}, true},
		{"relative", notify.Target{URL: "/hook"}, false},
		{"no host", notify.Target{URL: "https:///hook"}, false},
		{"other scheme", notify.Target{URL: "mailto:ops@example.com"}, false},
		{"bad format", notify.Target{URL: "https://example.com", Format: "xml"}, false},
		{"unparseable keeps secret out of error", notify.Target{URL: "https://example.com/%zz?token=t0ken"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.target.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, notify.ErrBadTarget) {
					t.Errorf("Validate = %v, want ErrBadTarget", err)
				}
				if strings.Contains(err.Error(), "t0ken") {
					t.Errorf("error leaks the token: %v", err)
				}
			}
		})
	}
}

// The Slack body for each kind is pinned by a golden file; the JSON body
// by one more.
func TestGolden(t *testing.T) {
	base := fullEvent()
	base.Error = ""
	base.Message = "Fix typo"
	with := func(f func(*notify.Event)) notify.Event {
		e := base
		f(&e)
		return e
	}
	tests := []struct {
		name   string
		format notify.Format
		event  notify.Event
	}{
		{"slack_deploy_started", notify.Slack, with(func(e *notify.Event) { e.Kind = notify.DeployStarted; e.URL = "" })},
		{"slack_deploy_succeeded", notify.Slack, base},
		{"slack_deploy_failed", notify.Slack, with(func(e *notify.Event) {
			e.Kind, e.Channel = notify.DeployFailed, "pr-7"
			e.Message = "hugo: template: index.html:3: unexpected <end>"
			e.Error = e.Message
		})},
		{"slack_preview_ready", notify.Slack, with(func(e *notify.Event) {
			e.Kind, e.Channel, e.URL = notify.PreviewReady, "pr-7", "https://pr-7--blog.preview.example.com/"
		})},
		{"slack_preview_removed", notify.Slack, with(func(e *notify.Event) { e.Kind, e.Channel = notify.PreviewRemoved, "pr-7" })},
		{"slack_rolled_back", notify.Slack, with(func(e *notify.Event) { e.Kind = notify.RolledBack; e.Message = "Revert \"Fix typo\"" })},
		{"slack_escaping", notify.Slack, with(func(e *notify.Event) {
			e.Message = "Use <b> & <i>\nsecond line is dropped"
			e.URL = "https://blog.example.com/?a=1&b=2|3"
		})},
		{"slack_long_error", notify.Slack, with(func(e *notify.Event) {
			e.Kind, e.Error = notify.DeployFailed, strings.Repeat("x", 1200)
		})},
		{"json_deploy_succeeded", notify.JSON, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			n := notify.New(notify.Options{Targets: []notify.Target{{URL: rc.URL, Format: tt.format}}})
			n.Notify(tt.event)
			closeNow(t, n)
			hits := rc.got()
			if len(hits) != 1 {
				t.Fatalf("got %d requests, want 1", len(hits))
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, hits[0].body, "", "  "); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, hits[0].body)
			}
			pretty.WriteByte('\n')
			golden(t, filepath.Join("testdata", tt.name+".golden"), pretty.Bytes())
		})
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
