package forge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/sitehost/sitehost/internal/forge"
	"github.com/sitehost/sitehost/internal/site"
)

const (
	sha   = site.Commit("abc1234def5678901234567890abcdef12345678")
	token = "tok-SECRET-123"
)

// request is what a fake forge received.
type request struct {
	Method, URI string
	Header      http.Header
	Body        map[string]any
}

// recorder is a fake forge that records requests and answers with respond
// (201 Created if nil). n counts from 1.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []request
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newRecorder(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rec := &recorder{respond: respond}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(data, &body); err != nil {
			t.Errorf("request body is not a JSON object: %v: %q", err, data)
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, request{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body})
		n := len(rec.reqs)
		rec.mu.Unlock()
		if rec.respond != nil {
			rec.respond(n, w, r)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

func TestSetStatusPerForge(t *testing.T) {
	status := forge.Status{
		Commit:      sha,
		TargetURL:   "https://pr-7--blog.preview.example.com/",
		Description: "Deployed 3f9a2c1e",
		Context:     "sitehost/pr-7",
	}
	tests := []struct {
		kind, apiPath, repo string
		wantURI             string
		wantHeaders         map[string]string
		states              map[forge.State]string
		body                func(state string) map[string]any
	}{
		{
			kind: "github", apiPath: "", repo: "https://github.com/acme/blog.git",
			wantURI: "/repos/acme/blog/statuses/" + string(sha),
			wantHeaders: map[string]string{
				"Authorization":        "Bearer " + token,
				"Accept":               "application/vnd.github+json",
				"X-GitHub-Api-Version": "2022-11-28",
			},
			states: map[forge.State]string{forge.Pending: "pending", forge.Success: "success", forge.Failure: "failure"},
			body: func(st string) map[string]any {
				return map[string]any{"state": st, "target_url": status.TargetURL, "description": status.Description, "context": "sitehost/pr-7"}
			},
		},
		{
			kind: "gitlab", apiPath: "/api/v4", repo: "git@gitlab.com:acme/sub/blog.git",
			wantURI:     "/api/v4/projects/acme%2Fsub%2Fblog/statuses/" + string(sha),
			wantHeaders: map[string]string{"PRIVATE-TOKEN": token},
			states:      map[forge.State]string{forge.Pending: "running", forge.Success: "success", forge.Failure: "failed"},
			body: func(st string) map[string]any {
				return map[string]any{"state": st, "target_url": status.TargetURL, "description": status.Description, "name": "sitehost/pr-7"}
			},
		},
		{
			kind: "gitea", apiPath: "/api/v1", repo: "https://gitea.example.com/acme/blog",
			wantURI:     "/api/v1/repos/acme/blog/statuses/" + string(sha),
			wantHeaders: map[string]string{"Authorization": "token " + token},
			states:      map[forge.State]string{forge.Pending: "pending", forge.Success: "success", forge.Failure: "failure"},
			body: func(st string) map[string]any {
				return map[string]any{"state": st, "target_url": status.TargetURL, "description": status.Description, "context": "sitehost/pr-7"}
			},
		},
		{
			kind: "forgejo", apiPath: "/api/v1", repo: "ssh://git@codeberg.org/acme/blog.git",
			wantURI:     "/api/v1/repos/acme/blog/statuses/" + string(sha),
			wantHeaders: map[string]string{"Authorization": "token " + token},
			states:      map[forge.State]string{forge.Pending: "pending", forge.Success: "success", forge.Failure: "failure"},
			body: func(st string) map[string]any {
				return map[string]any{"state": st, "target_url": status.TargetURL, "description": status.Description, "context": "sitehost/pr-7"}
			},
		},
		{
			kind: "bitbucket", apiPath: "/2.0", repo: "git@bitbucket.org:acme-ws/blog-slug.git",
			wantURI:     "/2.0/repositories/acme-ws/blog-slug/commit/" + string(sha) + "/statuses/build",
			wantHeaders: map[string]string{"Authorization": "Bearer " + token},
			states:      map[forge.State]string{forge.Pending: "INPROGRESS", forge.Success: "SUCCESSFUL", forge.Failure: "FAILED"},
			body: func(st string) map[string]any {
				return map[string]any{"key": "sitehost-pr-7", "state": st, "name": "sitehost/pr-7", "url": status.TargetURL, "description": status.Description}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			rec := newRecorder(t, nil)
			c, err := forge.New(forge.Config{Kind: tt.kind, API: rec.srv.URL + tt.apiPath + "/", Token: token, Repo: tt.repo}, rec.srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			for _, state := range []forge.State{forge.Pending, forge.Success, forge.Failure} {
				s := status
				s.State = state
				if err := c.SetStatus(context.Background(), s); err != nil {
					t.Fatalf("SetStatus(%s): %v", state, err)
				}
				reqs := rec.requests()
				got := reqs[len(reqs)-1]
				if got.Method != http.MethodPost {
					t.Errorf("%s: method %s, want POST", state, got.Method)
				}
				if got.URI != tt.wantURI {
					t.Errorf("%s: request URI\n got %s\nwant %s", state, got.URI, tt.wantURI)
				}
				if ct := got.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("%s: Content-Type %q, want application/json", state, ct)
				}
				for h, want := range tt.wantHeaders {
					if v := got.Header.Get(h); v != want {
						t.Errorf("%s: header %s = %q, want %q", state, h, v, want)
					}
				}
				if want := tt.body(tt.states[state]); !equalJSON(got.Body, want) {
					t.Errorf("%s: body\n got %v\nwant %v", state, got.Body, want)
				}
			}
		})
	}
}

func equalJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestDescriptionTruncatedForGitHub(t *testing.T) {
	rec := newRecorder(t, nil)
	c, err := forge.New(forge.Config{Kind: "github", API: rec.srv.URL, Token: token, Repo: "https://github.com/acme/blog"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 200)
	if err := c.SetStatus(context.Background(), forge.Status{Commit: sha, State: forge.Success, Description: long}); err != nil {
		t.Fatal(err)
	}
	desc, _ := rec.requests()[0].Body["description"].(string)
	if n := utf8.RuneCountInString(desc); n != 140 {
		t.Errorf("description has %d characters, want 140", n)
	}
	if ctx := rec.requests()[0].Body["context"]; ctx != "sitehost" {
		t.Errorf("empty context sent as %v, want the default \"sitehost\"", ctx)
	}
}

func TestBitbucketURLFallsBackToCommitPage(t *testing.T) {
	rec := newRecorder(t, nil)
	c, err := forge.New(forge.Config{Kind: "bitbucket", API: rec.srv.URL, Token: token, Repo: "https://bitbucket.org/acme/blog.git"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(context.Background(), forge.Status{Commit: sha, State: forge.Pending, Context: "sitehost/production"}); err != nil {
		t.Fatal(err)
	}
	body := rec.requests()[0].Body
	if want := "https://bitbucket.org/acme/blog/commits/" + string(sha); body["url"] != want {
		t.Errorf("url = %v, want %s (Bitbucket requires one)", body["url"], want)
	}
	if body["key"] != "sitehost-production" {
		t.Errorf("key = %v, want sitehost-production", body["key"])
	}
}

func TestSetStatusError(t *testing.T) {
	rec := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`+strings.Repeat("x", 2000))
	})
	c, err := forge.New(forge.Config{Kind: "github", API: rec.srv.URL, Token: token, Repo: "git@github.com:acme/blog.git"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.SetStatus(context.Background(), forge.Status{Commit: sha, State: forge.Success})
	if err == nil {
		t.Fatal("SetStatus succeeded on a 403")
	}
	want := `setting github status on acme/blog@abc1234: 403 Forbidden: {"message":"Resource not accessible by integration"}`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error\n got %s\nwant prefix %s", err, want)
	}
	if len(err.Error()) > len("setting github status on acme/blog@abc1234: 403 Forbidden: ")+512 {
		t.Errorf("error carries more than 512 bytes of body: %d bytes", len(err.Error()))
	}
}

func TestSetStatusRejectsBadStatus(t *testing.T) {
	c, err := forge.New(forge.Config{Kind: "github", API: "http://127.0.0.1:1", Token: token, Repo: "https://github.com/acme/blog"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]forge.Status{
		"no commit":     {State: forge.Success},
		"unknown state": {Commit: sha, State: "error"},
	} {
		if err := c.SetStatus(context.Background(), s); err == nil {
			t.Errorf("%s: SetStatus succeeded", name)
		}
	}
}

func TestNewErrors(t *testing.T) {
	ok := forge.Config{Kind: "github", Token: token, Repo: "https://github.com/acme/blog"}
	tests := []struct {
		name string
		edit func(*forge.Config)
		want error
	}{
		{"unknown kind", func(c *forge.Config) { c.Kind = "sourcehut" }, forge.ErrUnknownKind},
		{"empty kind", func(c *forge.Config) { c.Kind = "" }, forge.ErrUnknownKind},
		{"empty token", func(c *forge.Config) { c.Token = "" }, forge.ErrNoToken},
		{"blank token", func(c *forge.Config) { c.Token = "  " }, forge.ErrNoToken},
		{"empty repo", func(c *forge.Config) { c.Repo = "" }, forge.ErrBadRepo},
		{"no repo name", func(c *forge.Config) { c.Repo = "https://github.com/acme" }, forge.ErrBadRepo},
		{"host only", func(c *forge.Config) { c.Repo = "https://github.com/" }, forge.ErrBadRepo},
		{"github subgroup", func(c *forge.Config) { c.Repo = "https://github.com/a/b/c" }, forge.ErrBadRepo},
		{"local path", func(c *forge.Config) { c.Repo = "/srv/git/blog.git" }, forge.ErrBadRepo},
		{"file URL", func(c *forge.Config) { c.Repo = "file:///srv/git/acme/blog.git" }, forge.ErrBadRepo},
		{"dot-dot", func(c *forge.Config) { c.Repo = "https://github.com/acme/../blog" }, forge.ErrBadRepo},
		{"api scheme", func(c *forge.Config) { c.API = "ftp://api.example.com" }, forge.ErrBadAPI},
		{"api credentials", func(c *forge.Config) { c.API = "https://u:p@api.example.com" }, forge.ErrBadAPI},
		{"bitbucket server", func(c *forge.Config) {
			c.Kind, c.Repo = "bitbucket", "https://bitbucket.example.com/acme/blog.git"
		}, forge.ErrBadAPI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			c, err := forge.New(cfg, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New: got %v, %v; want error %v", c, err, tt.want)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "u:p@") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
	if _, err := forge.New(ok, nil); err != nil {
		t.Errorf("New(valid config): %v", err)
	}
}

func TestClientStringHidesToken(t *testing.T) {
	c, err := forge.New(forge.Config{Kind: "gitlab", Token: token, Repo: "https://gitlab.com/acme/sub/blog.git"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, c); strings.Contains(s, token) {
			t.Errorf("%s prints the token: %s", verb, s)
		}
	}
	if got := fmt.Sprint(c); got != "gitlab acme/sub/blog" {
		t.Errorf("String() = %q, want \"gitlab acme/sub/blog\"", got)
	}
}
