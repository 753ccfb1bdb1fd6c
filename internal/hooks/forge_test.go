package hooks_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/site"
)

// fakeSites declares sites by repository URL, matched with RepoKey and
// RepoKeys as the real resolver does.
type fakeSites map[string][]hooks.SiteSecret

func (f fakeSites) SitesForRepo(urls []string) []hooks.SiteSecret {
	var out []hooks.SiteSecret
	seen := map[site.Name]bool{}
	for declared, sites := range f {
		for _, u := range urls {
			if !slices.Contains(hooks.RepoKeys(declared), hooks.RepoKey(u)) {
				continue
			}
			for _, s := range sites {
				if !seen[s.Name] {
					seen[s.Name] = true
					out = append(out, s)
				}
			}
		}
	}
	return out
}

type dispatchCall struct {
	ctx  context.Context
	name site.Name
	ev   site.Event
}

// fakeEvents records every Dispatch; fail makes it refuse.
type fakeEvents struct {
	mu    sync.Mutex
	calls []dispatchCall
	fail  error
}

var _ hooks.EventDispatcher = (*fakeEvents)(nil)

func (d *fakeEvents) Dispatch(ctx context.Context, name site.Name, ev site.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.calls = append(d.calls, dispatchCall{ctx, name, ev})
	return nil
}

func (d *fakeEvents) got() []dispatchCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dispatchCall(nil), d.calls...)
}

func (d *fakeEvents) setFail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = err
}

// forgeServer serves a Forge handler the way admin mounts it.
func forgeServer(t *testing.T, f *hooks.Forge) *httptest.Server {
	t.Helper()
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

// send posts body to /hooks/<forge> and returns the status and JSON body.
func send(t *testing.T, srv *httptest.Server, method, forge string, h http.Header, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/hooks/"+forge, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return resp, string(out)
}

func TestForgeAccepts(t *testing.T) {
	tests := []struct {
		name     string
		path     string // forge in the URL path
		signAs   string // sign() scheme
		file     string
		headers  map[string]string // instead of the manifest's
		declared string            // the repository as sites.yaml gives it
		want     site.Event        // Forge, Kind, Ref, Commit, PR
	}{
		{name: "github push", path: "github", signAs: "github", file: "github/push.branch-updated.woodpecker.json",
			declared: "git@github.com:woodpecker-ci/woodpecker.git",
			want:     site.Event{Forge: "github", Kind: site.EventPush, Ref: "refs/heads/main", Commit: "366701fde727cb7a9e7f21eb88264f59f6f9b89c"}},
		{name: "github pull request", path: "github", signAs: "github", file: "github/pull_request.synchronize.json",
			declared: "https://github.com/codertocat/hello-world",
			want:     site.Event{Forge: "github", Kind: site.EventPRUpdated, Ref: "refs/heads/changes", Commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", PR: 2}},
		{name: "gitlab push", path: "gitlab", signAs: "gitlab", file: "gitlab/push_hook.docs.json",
			declared: "https://example.com/mike/diaspora.git",
			want:     site.Event{Forge: "gitlab", Kind: site.EventPush, Ref: "refs/heads/master", Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{name: "gitlab merge request", path: "gitlab", signAs: "gitlab", file: "gitlab/merge_request_hook.merged.woodpecker.json",
			declared: "https://gitlab.com/anbraten/woodpecker-test",
			want:     site.Event{Forge: "gitlab", Kind: site.EventPRMerged, Ref: "refs/heads/patch-1", Commit: "3e4db3586b65dd401de8c77b3ac343fd24cbf89b", PR: 4}},
		{name: "gitea push", path: "gitea", signAs: "gitea", file: "gitea/push.docs.json",
			declared: "http://localhost:3000/gitea/webhooks",
			want:     site.Event{Forge: "gitea", Kind: site.EventPush, Ref: "refs/heads/develop", Commit: "bffeb74224043ba2feb48d137756c8a9331c449a", Delivery: "f6266f16-1bf3-46a5-9ea4-602e06ead473"}},
		{name: "forgejo pull request", path: "gitea", signAs: "forgejo", file: "gitea/pull_request.opened.go-scm.json",
			headers:  map[string]string{"X-Forgejo-Event": "pull_request", "X-Forgejo-Event-Type": "pull_request", "X-Gitea-Event": "pull_request"},
			declared: "git@try.gitea.io:jcitizen/my-repo.git",
			want:     site.Event{Forge: "forgejo", Kind: site.EventPROpened, Ref: "refs/heads/feature", Commit: "2eba238e33607c1fa49253182e9fff42baafa1eb", PR: 1}},
		{name: "bitbucket push", path: "bitbucket", signAs: "bitbucket", file: "bitbucket/cloud.repo_push.woodpecker.json",
			declared: "git@bitbucket.org:martinherren1984/publictestrepo.git",
			want:     site.Event{Forge: "bitbucket", Kind: site.EventPush, Ref: "refs/heads/main", Commit: "c14c1bb05dfb1fdcdf06b31485fff61b0ea44277"}},
		{name: "bitbucket pull request", path: "bitbucket", signAs: "bitbucket", file: "bitbucket/cloud.pullrequest_created.woodpecker.json",
			declared: "https://bitbucket.org/user_name/repo_name",
			want:     site.Event{Forge: "bitbucket", Kind: site.EventPROpened, Ref: "refs/heads/branch2", PR: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeEvents{}
			srv := forgeServer(t, &hooks.Forge{
				Sites:    fakeSites{tt.declared: {{Name: "blog", Secret: testSecret}}},
				Dispatch: d,
			})
			body := fixture(t, tt.file)
			h := entryHeaders(t, tt.file)
			if tt.headers != nil {
				h = toHeader(tt.headers)
			}
			resp, out := send(t, srv, http.MethodPost, tt.path, sign(h, tt.signAs, body, testSecret), body)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status = %d (%s), want 202", resp.StatusCode, out)
			}
			if !strings.Contains(out, "accepted for site blog") {
				t.Errorf("body = %s, want it to name the site", out)
			}
			calls := d.got()
			if len(calls) != 1 || calls[0].name != "blog" {
				t.Fatalf("dispatched %+v, want one event for blog", calls)
			}
			ev := calls[0].ev
			if ev.Forge != tt.want.Forge || ev.Kind != tt.want.Kind || ev.Ref != tt.want.Ref ||
				ev.Commit != tt.want.Commit || ev.PR != tt.want.PR || ev.Delivery != tt.want.Delivery {
				t.Errorf("dispatched %+v, want %+v", ev, tt.want)
			}
		})
	}
}

func TestForgeRefuses(t *testing.T) {
	const (
		prFile   = "github/pull_request.opened.json"
		pingFile = "github/ping.repo.json"
		pushFile = "github/push.branch-updated.woodpecker.json" // a repository no site declares
	)
	pr := fixture(t, prFile)
	edited := mutate(t, prFile, map[string]any{"action": "edited"})
	ping := fixture(t, pingFile)
	pull := http.Header{"X-Github-Event": {"pull_request"}}
	pingH := http.Header{"X-Github-Event": {"ping"}}
	tooBig := append(bytes.Repeat([]byte(" "), hooks.MaxBody), pr...)

	tests := []struct {
		name       string
		method     string // default POST
		path       string // default github
		secret     string // blog's secret; default testSecret, "-" for none
		pingRepo   bool   // declare the ping fixture's repository too
		h          http.Header
		body       []byte
		wantStatus int
		wantKey    string // message or error
		wantMsg    string
	}{
		{name: "bad signature", h: sign(pull, "github", pr, "wrong"), body: pr,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "X-Hub-Signature-256 does not match"},
		{name: "missing signature", h: pull, body: pr,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "no X-Hub-Signature-256"},
		{name: "signature of other bytes", h: sign(pull, "github", edited, testSecret), body: pr,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "does not match"},
		{name: "site without secret", secret: "-", h: sign(pull, "github", pr, ""), body: pr,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "site blog has no webhook.secret_env set"},
		{name: "malformed JSON", h: sign(pull, "github", []byte(`{"action": `), testSecret), body: []byte(`{"action": `),
			wantStatus: http.StatusBadRequest, wantKey: "error", wantMsg: "malformed payload"},
		{name: "no event header", h: sign(http.Header{}, "github", pr, testSecret), body: pr,
			wantStatus: http.StatusBadRequest, wantKey: "error", wantMsg: "X-GitHub-Event"},
		{name: "body over 1 MiB", h: sign(pull, "github", tooBig, testSecret), body: tooBig,
			wantStatus: http.StatusRequestEntityTooLarge, wantKey: "error", wantMsg: "body over"},
		{name: "unknown repository", h: sign(http.Header{"X-Github-Event": {"push"}}, "github", fixture(t, pushFile), testSecret), body: fixture(t, pushFile),
			wantStatus: http.StatusNotFound, wantKey: "error", wantMsg: "no site declares repository https://github.com/woodpecker-ci/woodpecker"},
		{name: "ping for an unknown repository", h: sign(pingH, "github", ping, testSecret), body: ping,
			wantStatus: http.StatusNotFound, wantKey: "error", wantMsg: "no site declares repository https://github.com/Octocoders/Hello-World"},
		{name: "ping", pingRepo: true, h: sign(pingH, "github", ping, testSecret), body: ping,
			wantStatus: http.StatusOK, wantKey: "message", wantMsg: "pong"},
		{name: "ping with a bad signature", pingRepo: true, h: sign(pingH, "github", ping, "wrong"), body: ping,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "does not match"},
		{name: "ignored action", h: sign(pull, "github", edited, testSecret), body: edited,
			wantStatus: http.StatusOK, wantKey: "message", wantMsg: `ignored: github pull_request "edited"`},
		{name: "ignored action, bad signature", h: sign(pull, "github", edited, "wrong"), body: edited,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "does not match"},
		{name: "ignored event", h: sign(http.Header{"X-Github-Event": {"issues"}}, "github", pr, testSecret), body: pr,
			wantStatus: http.StatusOK, wantKey: "message", wantMsg: "ignored: github issues event"},
		{name: "GET", method: http.MethodGet,
			wantStatus: http.StatusMethodNotAllowed, wantKey: "error", wantMsg: "use POST"},
		{name: "unknown forge", path: "svn", h: sign(pull, "github", pr, testSecret), body: pr,
			wantStatus: http.StatusNotFound, wantKey: "error", wantMsg: `unknown forge "svn"`},
		{name: "generic is not a forge", path: "generic", h: sign(pull, "github", pr, testSecret), body: pr,
			wantStatus: http.StatusNotFound, wantKey: "error", wantMsg: "unknown forge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := testSecret
			if tt.secret == "-" {
				secret = ""
			}
			sites := fakeSites{"https://github.com/Codertocat/Hello-World": {{Name: "blog", Secret: secret}}}
			if tt.pingRepo {
				sites["https://github.com/Octocoders/Hello-World"] = []hooks.SiteSecret{{Name: "blog", Secret: secret}}
			}
			d := &fakeEvents{}
			srv := forgeServer(t, &hooks.Forge{Sites: sites, Dispatch: d})
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "github"
			}
			resp, out := send(t, srv, method, path, tt.h, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			checkJSONMessage(t, strings.NewReader(out), tt.wantKey, tt.wantMsg)
			if tt.wantStatus == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", resp.Header.Get("Allow"))
			}
			if calls := d.got(); len(calls) != 0 {
				t.Errorf("dispatched %+v, want nothing", calls)
			}
		})
	}
}

func TestForgeDuplicateDelivery(t *testing.T) {
	d := &fakeEvents{}
	srv := forgeServer(t, &hooks.Forge{
		Sites:    fakeSites{"https://github.com/Codertocat/Hello-World": {{Name: "blog", Secret: testSecret}}},
		Dispatch: d,
	})
	body := fixture(t, "github/pull_request.opened.json")
	h := http.Header{"X-Github-Event": {"pull_request"}, "X-Github-Delivery": {"72d3162e-cc78-11e3-81ab-4c9367dc0958"}}

	// A forged request with the ID does not use it up.
	if resp, out := send(t, srv, http.MethodPost, "github", sign(h, "github", body, "wrong"), body); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged: status = %d (%s), want 401", resp.StatusCode, out)
	}
	if resp, out := send(t, srv, http.MethodPost, "github", sign(h, "github", body, testSecret), body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: status = %d (%s), want 202", resp.StatusCode, out)
	}
	resp, out := send(t, srv, http.MethodPost, "github", sign(h, "github", body, testSecret), body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("redelivery: status = %d (%s), want 200", resp.StatusCode, out)
	}
	checkJSONMessage(t, strings.NewReader(out), "message", "duplicate delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958 ignored")
	if calls := d.got(); len(calls) != 1 {
		t.Errorf("dispatched %d times, want once", len(calls))
	}
	// Another delivery of the same payload is acted on.
	h.Set("X-Github-Delivery", "another")
	if resp, out := send(t, srv, http.MethodPost, "github", sign(h, "github", body, testSecret), body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("another delivery: status = %d (%s), want 202", resp.StatusCode, out)
	}
}

func TestForgeDedupCapacity(t *testing.T) {
	d := &fakeEvents{}
	srv := forgeServer(t, &hooks.Forge{
		Sites:    fakeSites{"https://github.com/Codertocat/Hello-World": {{Name: "blog", Secret: testSecret}}},
		Dispatch: d,
		Dedup:    2,
	})
	body := fixture(t, "github/pull_request.opened.json")
	for i, id := range []string{"a", "b", "a", "c", "a"} {
		h := http.Header{"X-Github-Event": {"pull_request"}, "X-Github-Delivery": {id}}
		send(t, srv, http.MethodPost, "github", sign(h, "github", body, testSecret), body)
		// a, b accepted; a duplicate; c evicts a; a accepted again.
		want := []int{1, 2, 2, 3, 4}[i]
		if got := len(d.got()); got != want {
			t.Fatalf("after delivery %d (%s): %d dispatches, want %d", i, id, got, want)
		}
	}
}

// TestForgeSharedRepository: two sites build one repository with
// different secrets; only the site whose secret signed the request hears
// of it.
func TestForgeSharedRepository(t *testing.T) {
	body := fixture(t, "github/push.branch-updated.woodpecker.json")
	h := http.Header{"X-Github-Event": {"push"}}
	for _, tt := range []struct {
		name   string
		secret string
		want   []site.Name
	}{
		{"blog's secret", "blog-secret", []site.Name{"blog"}},
		{"docs' secret", "docs-secret", []site.Name{"docs"}},
		{"neither", "other", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeEvents{}
			srv := forgeServer(t, &hooks.Forge{
				Sites: fakeSites{
					"https://github.com/woodpecker-ci/woodpecker.git": {{Name: "blog", Secret: "blog-secret"}},
					"git@github.com:woodpecker-ci/woodpecker.git":     {{Name: "docs", Secret: "docs-secret"}, {Name: "nosecret"}},
				},
				Dispatch: d,
			})
			resp, out := send(t, srv, http.MethodPost, "github", sign(h, "github", body, tt.secret), body)
			var got []site.Name
			for _, c := range d.got() {
				got = append(got, c.name)
			}
			if len(got) != len(tt.want) || (len(got) == 1 && got[0] != tt.want[0]) {
				t.Errorf("dispatched to %q, want %q", got, tt.want)
			}
			if tt.want == nil {
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("status = %d, want 401", resp.StatusCode)
				}
				if !strings.Contains(out, "site nosecret has no webhook.secret_env set") || !strings.Contains(out, "does not match") {
					t.Errorf("body = %s, want both reasons", out)
				}
			} else if resp.StatusCode != http.StatusAccepted || !strings.Contains(out, "site "+string(tt.want[0])) {
				t.Errorf("status = %d (%s), want 202 naming %s", resp.StatusCode, out, tt.want[0])
			}
		})
	}
}

func TestForgeDispatchContextOutlivesRequest(t *testing.T) {
	type key struct{}
	body := fixture(t, "github/push.branch-updated.woodpecker.json")
	h := sign(http.Header{"X-Github-Event": {"push"}}, "github", body, testSecret)
	sites := fakeSites{"https://github.com/woodpecker-ci/woodpecker": {{Name: "blog", Secret: testSecret}}}

	t.Run("request context without cancel", func(t *testing.T) {
		d := &fakeEvents{}
		srv := forgeServer(t, &hooks.Forge{Sites: sites, Dispatch: d})
		send(t, srv, http.MethodPost, "github", h, body)
		calls := d.got()
		if len(calls) != 1 {
			t.Fatalf("dispatched %d times, want once", len(calls))
		}
		// The server cancels the request's context once the handler
		// returns; the dispatched one must live on.
		srv.Close()
		if err := calls[0].ctx.Err(); err != nil {
			t.Errorf("dispatch context: %v after the response, want alive", err)
		}
	})
	t.Run("BaseContext", func(t *testing.T) {
		d := &fakeEvents{}
		base := context.WithValue(context.Background(), key{}, "app")
		srv := forgeServer(t, &hooks.Forge{Sites: sites, Dispatch: d, BaseContext: func() context.Context { return base }})
		send(t, srv, http.MethodPost, "github", h, body)
		calls := d.got()
		if len(calls) != 1 || calls[0].ctx.Value(key{}) != "app" {
			t.Fatalf("dispatched %+v, want one call with the base context", calls)
		}
	})
}

func TestForgeStandardWebhooksClock(t *testing.T) {
	body := fixture(t, "gitlab/push_hook.docs.json")
	signedAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := standardSign([]byte(testSecret), "msg_2fS8ITzD2o6aeC0X", signedAt, body)
	h.Set("X-Gitlab-Event", "Push Hook")
	for _, tt := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"fresh", signedAt.Add(time.Minute), http.StatusAccepted},
		{"clock behind", signedAt.Add(-time.Minute), http.StatusAccepted},
		{"replayed later", signedAt.Add(10 * time.Minute), http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeEvents{}
			srv := forgeServer(t, &hooks.Forge{
				Sites:    fakeSites{"git@example.com:mike/diaspora.git": {{Name: "blog", Secret: testSecret}}},
				Dispatch: d,
				Now:      func() time.Time { return tt.now },
			})
			if resp, out := send(t, srv, http.MethodPost, "gitlab", h, body); resp.StatusCode != tt.want {
				t.Errorf("status = %d (%s), want %d", resp.StatusCode, out, tt.want)
			}
		})
	}
}

func TestForgeDispatchFailure(t *testing.T) {
	d := &fakeEvents{}
	d.setFail(errors.New("queue full"))
	srv := forgeServer(t, &hooks.Forge{
		Sites:    fakeSites{"https://github.com/Codertocat/Hello-World": {{Name: "blog", Secret: testSecret}}},
		Dispatch: d,
	})
	body := fixture(t, "github/pull_request.opened.json")
	h := sign(http.Header{"X-Github-Event": {"pull_request"}, "X-Github-Delivery": {"d-1"}}, "github", body, testSecret)
	if resp, out := send(t, srv, http.MethodPost, "github", h, body); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d (%s), want 503", resp.StatusCode, out)
	}
	// The forge's retry of the same delivery goes through.
	d.setFail(nil)
	if resp, out := send(t, srv, http.MethodPost, "github", h, body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: status = %d (%s), want 202", resp.StatusCode, out)
	}
}

func TestForgeBitbucketSeveralChanges(t *testing.T) {
	d := &fakeEvents{}
	srv := forgeServer(t, &hooks.Forge{
		Sites:    fakeSites{"https://bb.example.com/scm/sbox/sandbox.git": {{Name: "blog", Secret: testSecret}}},
		Dispatch: d,
	})
	body := []byte(dcRefsChanged)
	h := sign(http.Header{"X-Event-Key": {"repo:refs_changed"}}, "bitbucket", body, testSecret)
	if resp, out := send(t, srv, http.MethodPost, "bitbucket", h, body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d (%s), want 202", resp.StatusCode, out)
	}
	calls := d.got()
	if len(calls) != 2 || calls[0].ev.Kind != site.EventPush || calls[1].ev.Kind != site.EventBranchDeleted {
		t.Errorf("dispatched %+v, want a push and a deletion", calls)
	}
}

// TestForgeIgnoredWithoutRepository: a delivery that names no repository
// and asks for nothing is answered 200 without a signature.
func TestForgeIgnoredWithoutRepository(t *testing.T) {
	d := &fakeEvents{}
	srv := forgeServer(t, &hooks.Forge{Sites: fakeSites{}, Dispatch: d})
	resp, out := send(t, srv, http.MethodPost, "bitbucket", http.Header{"X-Event-Key": {"diagnostics:ping"}}, []byte(`{"test": true}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d (%s), want 200", resp.StatusCode, out)
	}
	checkJSONMessage(t, strings.NewReader(out), "message", "ignored: bitbucket diagnostics:ping event")
	if len(d.got()) != 0 {
		t.Error("dispatched, want nothing")
	}
}
