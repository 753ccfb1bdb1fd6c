package hooks_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/site"
)

// TestForgeGitHubForm: a delivery with content type "form" (the default
// for hooks created through GitHub's REST API) is verified over the body as
// sent and parsed from its payload field.
func TestForgeGitHubForm(t *testing.T) {
	const file = "github/push.branch-updated.woodpecker.json"
	payload := fixture(t, file)
	form := []byte("payload=" + url.QueryEscape(string(payload)))
	tests := []struct {
		name     string
		ct       string
		body     []byte
		signOver []byte // nil: body
		status   int
		want     string // in the answer
	}{
		{name: "form", ct: "application/x-www-form-urlencoded", body: form, status: http.StatusAccepted, want: "push refs/heads/main 366701f"},
		{name: "form with charset", ct: "application/x-www-form-urlencoded; charset=utf-8", body: form, status: http.StatusAccepted, want: "accepted for site blog"},
		{name: "json still", ct: "application/json", body: payload, status: http.StatusAccepted, want: "accepted for site blog"},
		// GitHub signs the body as sent, not the JSON inside it.
		{name: "signed over the payload only", ct: "application/x-www-form-urlencoded", body: form, signOver: payload, status: http.StatusUnauthorized, want: "does not match the body"},
		{name: "no payload field", ct: "application/x-www-form-urlencoded", body: []byte("data=" + url.QueryEscape(string(payload))), status: http.StatusBadRequest, want: "github form-encoded delivery has no payload field"},
		{name: "payload not JSON", ct: "application/x-www-form-urlencoded", body: []byte("payload=%7Bnot+json"), status: http.StatusBadRequest, want: "github payload is not the expected JSON"},
		{name: "not a form", ct: "application/x-www-form-urlencoded", body: []byte("payload=%zz"), status: http.StatusBadRequest, want: "github form-encoded delivery: invalid URL escape"},
		{name: "form body sent as JSON", ct: "application/json", body: form, status: http.StatusBadRequest, want: "github payload is not the expected JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeEvents{}
			srv := forgeServer(t, &hooks.Forge{
				Sites:    fakeSites{"https://github.com/woodpecker-ci/woodpecker": {{Name: "blog", Secret: testSecret}}},
				Dispatch: d,
			})
			signed := tt.signOver
			if signed == nil {
				signed = tt.body
			}
			h := entryHeaders(t, file)
			h.Set("Content-Type", tt.ct)
			resp, out := send(t, srv, http.MethodPost, "github", sign(h, "github", signed, testSecret), tt.body)
			if resp.StatusCode != tt.status || !strings.Contains(out, tt.want) {
				t.Fatalf("answer %d %s, want %d containing %q", resp.StatusCode, out, tt.status, tt.want)
			}
			calls := d.got()
			if tt.status != http.StatusAccepted {
				if len(calls) != 0 {
					t.Errorf("dispatched %+v, want nothing", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0].ev.Kind != site.EventPush || calls[0].ev.Ref != "refs/heads/main" ||
				calls[0].ev.Commit != "366701fde727cb7a9e7f21eb88264f59f6f9b89c" {
				t.Errorf("dispatched %+v, want one push of refs/heads/main at 366701f", calls)
			}
		})
	}
}

// dcRefsChangedNoLinks is dcRefsChanged without links, the shape of the
// repo:refs_changed example in Atlassian's event payload docs: the
// repository is known only by project key and slug.
const dcRefsChangedNoLinks = `{"eventKey": "repo:refs_changed", "date": "2017-09-19T09:45:32+1000",
	"repository": {"slug": "sandbox", "id": 84, "name": "Sandbox", "scmId": "git", "state": "AVAILABLE",
		"statusMessage": "Available", "forkable": true, "public": false,
		"project": {"key": "SBOX", "id": 84, "name": "Sandbox project", "public": false, "type": "NORMAL"}},
	"changes": [{"ref": {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"}, "refId": "refs/heads/main",
		"fromHash": "` + shaA + `", "toHash": "` + shaB + `", "type": "UPDATE"}]}`

// TestForgeBitbucketDCWithoutLinks: a Data Center delivery without clone
// links reaches the site whose repository URL has its project and slug,
// in any of the URL forms Data Center shows, project key in any case.
func TestForgeBitbucketDCWithoutLinks(t *testing.T) {
	tests := []struct {
		declared string
		status   int
	}{
		{"https://bb.example.com/scm/SBOX/sandbox.git", http.StatusAccepted},
		{"https://bb.example.com/scm/sbox/sandbox.git", http.StatusAccepted},
		{"https://bb.example.com/bitbucket/scm/sbox/sandbox.git", http.StatusAccepted}, // under a context path
		{"ssh://git@bb.example.com:7999/sbox/sandbox.git", http.StatusAccepted},
		{"https://bb.example.com/projects/SBOX/repos/sandbox/browse", http.StatusAccepted},
		{"https://bb.example.com/projects/Sbox/repos/sandbox", http.StatusAccepted},
		{"https://bb.example.com/scm/other/sandbox.git", http.StatusNotFound},
		{"https://bb.example.com/scm/sbox/sandbox2.git", http.StatusNotFound},
		{"ssh://git@bb.example.com:7999/other/sandbox.git", http.StatusNotFound},
		// Not Data Center shapes: an https path without scm/ and an scp-like URL.
		{"https://bb.example.com/sbox/sandbox.git", http.StatusNotFound},
		{"git@bb.example.com:sbox/sandbox.git", http.StatusNotFound},
	}
	body := []byte(dcRefsChangedNoLinks)
	h := sign(http.Header{"X-Event-Key": {"repo:refs_changed"}, "X-Request-Id": {"dc-nolinks"}}, "bitbucket", body, testSecret)
	for _, tt := range tests {
		t.Run(tt.declared, func(t *testing.T) {
			d := &fakeEvents{}
			srv := forgeServer(t, &hooks.Forge{
				Sites:    fakeSites{tt.declared: {{Name: "blog", Secret: testSecret}}},
				Dispatch: d,
			})
			resp, out := send(t, srv, http.MethodPost, "bitbucket", h, body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, out, tt.status)
			}
			if tt.status == http.StatusNotFound {
				checkJSONMessage(t, strings.NewReader(out), "error", "no site declares repository /projects/SBOX/repos/sandbox")
				return
			}
			calls := d.got()
			if len(calls) != 1 || calls[0].name != "blog" || calls[0].ev.Kind != site.EventPush ||
				calls[0].ev.Ref != "refs/heads/main" || calls[0].ev.Commit != shaB {
				t.Errorf("dispatched %+v, want a push of refs/heads/main to %s for blog", calls, shaB)
			}
		})
	}
}

// TestParseBitbucketDCWithoutLinks: linkless pull request payloads name
// their repositories the same way, and a payload with neither links nor
// project and slug is refused, naming what is missing.
func TestParseBitbucketDCWithoutLinks(t *testing.T) {
	repo := func(key, slug string) string {
		return `{"id": 2, "slug": "` + slug + `", "project": {"key": "` + key + `"}}`
	}
	pr := `{"eventKey": "pr:opened", "pullRequest": {"id": 7, "title": "Fix typo",
		"fromRef": {"id": "refs/heads/typo", "latestCommit": "` + shaB + `", "repository": ` + repo("SBOX", "sandbox") + `},
		"toRef": {"id": "refs/heads/main", "latestCommit": "` + shaA + `", "repository": ` + repo("SBOX", "sandbox") + `}}}`
	ev, err := hooks.Parse("bitbucket", http.Header{"X-Event-Key": {"pr:opened"}}, []byte(pr))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/projects/SBOX/repos/sandbox"}; !slices.Equal(ev.RepoURLs, want) || ev.Fork || ev.PR != 7 {
		t.Errorf("event %+v, want RepoURLs %q, PR 7, no fork", ev, want)
	}

	for _, bad := range []string{repo("", "sandbox"), repo("SBOX", ""), repo("SB/OX", "sandbox"), repo("..", "sandbox"), `null`} {
		body := strings.Replace(dcRefsChangedNoLinks, dcNoLinksRepo(t), bad, 1)
		_, err := hooks.Parse("bitbucket", http.Header{"X-Event-Key": {"repo:refs_changed"}}, []byte(body))
		if !errors.Is(err, hooks.ErrMalformed) || !strings.Contains(err.Error(), "names no repository (no clone links, project key or slug)") {
			t.Errorf("repository %s: err = %v, want ErrMalformed naming the missing repository", bad, err)
		}
	}
}

// dcNoLinksRepo is the repository object of dcRefsChangedNoLinks.
func dcNoLinksRepo(t *testing.T) string {
	t.Helper()
	s := dcRefsChangedNoLinks
	i := strings.Index(s, `{"slug"`)
	j := strings.Index(s, `"type": "NORMAL"}}`)
	if i < 0 || j < 0 {
		t.Fatal("dcRefsChangedNoLinks changed shape")
	}
	return s[i : j+len(`"type": "NORMAL"}}`)]
}
