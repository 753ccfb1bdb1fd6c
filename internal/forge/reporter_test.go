package forge_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/forge"
	"github.com/sitehost/sitehost/internal/site"
)

// logBuf captures slog JSON output and lets a test wait for a message.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the log has n lines containing every one of substrs.
func (b *logBuf) waitFor(t *testing.T, n int, substrs ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.count(substrs...) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d lines with %q in log:\n%s", n, substrs, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *logBuf) count(substrs ...string) int {
	n := 0
lines:
	for line := range strings.Lines(b.String()) {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue lines
			}
		}
		n++
	}
	return n
}

// startReporter runs a Reporter until the test ends or stop is called.
func startReporter(t *testing.T, opts forge.ReporterOptions) (r *forge.Reporter, logs *logBuf, stop func()) {
	t.Helper()
	logs = &logBuf{}
	r = forge.NewReporter(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, logs, stop
}

func fastBackoff(int) time.Duration { return time.Millisecond }

func githubClient(t *testing.T, rec *recorder) forge.Client {
	t.Helper()
	c, err := forge.New(forge.Config{Kind: "github", API: rec.srv.URL, Token: token, Repo: "https://github.com/acme/blog.git"}, rec.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(state forge.State, ctx string) forge.Status {
	return forge.Status{Commit: sha, State: state, Context: ctx, TargetURL: "https://blog.example.com/"}
}

func states(reqs []request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i], _ = r.Body["state"].(string)
	}
	return out
}

func TestReporterRetries5xx(t *testing.T) {
	rec := newRecorder(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	r, logs, stop := startReporter(t, forge.ReporterOptions{Backoff: fastBackoff})
	r.Report(githubClient(t, rec), status(forge.Success, "sitehost/production"))
	logs.waitFor(t, 1, "commit status set")
	stop()
	if n := len(rec.requests()); n != 3 {
		t.Errorf("forge got %d requests, want 3 (two 502s, then success)", n)
	}
	if c := strings.Count(logs.String(), "retrying"); c != 2 {
		t.Errorf("logged %d retries, want 2:\n%s", c, logs)
	}
}

func TestReporterGivesUp(t *testing.T) {
	rec := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})
	r, logs, stop := startReporter(t, forge.ReporterOptions{Attempts: 3, Backoff: fastBackoff})
	r.Report(githubClient(t, rec), status(forge.Success, "sitehost/production"))
	logs.waitFor(t, 1, "giving up")
	stop()
	if n := len(rec.requests()); n != 3 {
		t.Errorf("forge got %d requests, want 3 attempts", n)
	}
}

func TestReporterRetriesNetworkErrors(t *testing.T) {
	rec := newRecorder(t, nil)
	c := githubClient(t, rec)
	rec.srv.Close() // connection refused from now on
	r, logs, _ := startReporter(t, forge.ReporterOptions{Attempts: 2, Backoff: fastBackoff})
	r.Report(c, status(forge.Pending, "sitehost/production"))
	logs.waitFor(t, 1, "giving up")
	if c := strings.Count(logs.String(), "retrying"); c != 1 {
		t.Errorf("logged %d retries, want 1:\n%s", c, logs)
	}
}

func TestReporterDoesNotRetry4xx(t *testing.T) {
	for _, code := range []int{http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			rec := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(code)
				fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
			})
			r, logs, stop := startReporter(t, forge.ReporterOptions{Backoff: fastBackoff})
			r.Report(githubClient(t, rec), status(forge.Success, "sitehost/production"))
			logs.waitFor(t, 1, "setting commit status failed")
			stop()
			if n := len(rec.requests()); n != 1 {
				t.Errorf("forge got %d requests, want 1 (no retry on %d)", n, code)
			}
			out := logs.String()
			for _, want := range []string{
				`"level":"ERROR"`, `"forge":"github"`, `"repo":"acme/blog"`,
				fmt.Sprintf(`"status_code":%d`, code), `"body":"{\"message\":\"Resource not accessible by integration\"}"`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %s:\n%s", want, out)
				}
			}
		})
	}
}

func TestReporterHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		headers map[string]string
	}{
		{"429", http.StatusTooManyRequests, map[string]string{"Retry-After": "1"}},
		{"github secondary rate limit", http.StatusForbidden, map[string]string{"Retry-After": "0"}},
		{"github primary rate limit", http.StatusForbidden, map[string]string{
			"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(time.Now().Unix() - 1),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					for k, v := range tt.headers {
						w.Header().Set(k, v)
					}
					http.Error(w, "slow down", tt.code)
					return
				}
				w.WriteHeader(http.StatusCreated)
			})
			// The backoff alone would wait an hour: delivery within the
			// test's timeout shows the server's wait was used instead.
			r, logs, stop := startReporter(t, forge.ReporterOptions{Backoff: func(int) time.Duration { return time.Hour }})
			r.Report(githubClient(t, rec), status(forge.Success, "sitehost/production"))
			logs.waitFor(t, 1, "commit status set")
			stop()
			if n := len(rec.requests()); n != 2 {
				t.Errorf("forge got %d requests, want 2", n)
			}
		})
	}
}

func TestReporterOrdersStatusesPerContext(t *testing.T) {
	got := make(chan struct{})
	release := make(chan struct{})
	rec := newRecorder(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 { // the first "pending" fails, after success was reported
			close(got)
			<-release
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	// With an hour of backoff, pending could only be retried after success
	// if success failed to supersede it.
	r, logs, stop := startReporter(t, forge.ReporterOptions{Backoff: func(int) time.Duration { return time.Hour }})
	c := githubClient(t, rec)
	r.Report(c, status(forge.Pending, "sitehost/pr-7"))
	<-got
	r.Report(c, status(forge.Success, "sitehost/pr-7"))
	close(release)
	logs.waitFor(t, 1, "commit status set")
	stop()
	if got, want := strings.Join(states(rec.requests()), ","), "pending,success"; got != want {
		t.Errorf("forge got states %s, want %s", got, want)
	}
	if logs.count("superseded", `"state":"pending"`) != 1 {
		t.Errorf("pending's retry was not superseded:\n%s", logs)
	}
}

func TestReporterNeverSendsPendingAfterSuccess(t *testing.T) {
	const contexts = 20
	rec := newRecorder(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n%3 == 1 {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	r, logs, stop := startReporter(t, forge.ReporterOptions{Backoff: fastBackoff, Attempts: 10})
	c := githubClient(t, rec)
	for i := range contexts {
		r.Report(c, status(forge.Pending, fmt.Sprintf("sitehost/pr-%d", i+1)))
	}
	for i := range contexts {
		r.Report(c, status(forge.Success, fmt.Sprintf("sitehost/pr-%d", i+1)))
	}
	logs.waitFor(t, contexts, "commit status set", `"state":"success"`)
	stop()
	seen := map[string][]string{}
	for _, req := range rec.requests() {
		ctx, _ := req.Body["context"].(string)
		seen[ctx] = append(seen[ctx], req.Body["state"].(string))
	}
	if len(seen) != contexts {
		t.Fatalf("statuses for %d contexts, want %d", len(seen), contexts)
	}
	for ctx, st := range seen {
		if st[len(st)-1] != "success" {
			t.Errorf("%s: states %v end in %s, want success", ctx, st, st[len(st)-1])
		}
		for i := 1; i < len(st); i++ {
			if st[i] == "pending" && st[i-1] == "success" {
				t.Errorf("%s: pending sent after success: %v", ctx, st)
			}
		}
	}
}

func TestReportNeverBlocks(t *testing.T) {
	t.Run("queue full", func(t *testing.T) {
		logs := &logBuf{}
		r := forge.NewReporter(slog.New(slog.NewJSONHandler(logs, nil)), forge.ReporterOptions{QueueSize: 1})
		rec := newRecorder(t, nil)
		c := githubClient(t, rec)
		returned := make(chan struct{})
		go func() {
			for range 10 { // nobody runs r: the queue fills after one
				r.Report(c, status(forge.Pending, "sitehost/production"))
			}
			close(returned)
		}()
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("Report blocked on a full queue")
		}
		if n := strings.Count(logs.String(), "queue full"); n != 9 {
			t.Errorf("%d drop warnings, want 9:\n%s", n, logs)
		}
	})
	t.Run("forge hangs", func(t *testing.T) {
		rec := newRecorder(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // never answers; released when the Reporter stops
		})
		r, _, _ := startReporter(t, forge.ReporterOptions{QueueSize: 1, Backoff: fastBackoff})
		c := githubClient(t, rec)
		returned := make(chan struct{})
		go func() {
			for i := range 200 {
				r.Report(c, forge.Status{Commit: site.Commit(fmt.Sprintf("%040x", i%5)), State: forge.Pending, Context: "sitehost/production"})
			}
			close(returned)
		}()
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("Report blocked while the forge hangs")
		}
	})
}

func TestTokenNeverLogged(t *testing.T) {
	// A hostile or buggy forge echoes the credentials it received.
	rec := newRecorder(t, func(n int, w http.ResponseWriter, r *http.Request) {
		code := http.StatusBadGateway
		if n > 1 {
			code = http.StatusUnauthorized
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"message":"bad credentials","got":%q}`, r.Header.Get("Authorization"))
	})
	r, logs, stop := startReporter(t, forge.ReporterOptions{Backoff: fastBackoff})
	c := githubClient(t, rec)
	r.Report(c, status(forge.Pending, "sitehost/production"))
	logs.waitFor(t, 2, "setting commit status failed") // the retry warning and the final error
	err := c.SetStatus(context.Background(), status(forge.Success, "sitehost/production"))
	stop()
	slog.New(slog.NewJSONHandler(logs, nil)).Info("client", "client", c)
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("SetStatus error leaks the token or is nil: %v", err)
	}
	if out := logs.String(); strings.Contains(out, token) || strings.Contains(out, "SECRET") {
		t.Errorf("token in logs:\n%s", out)
	}
	if !strings.Contains(logs.String(), `"client":{"forge":"github","repo":"acme/blog"}`) {
		t.Errorf("client logged unexpectedly:\n%s", logs)
	}
}
