package hooks_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/site"
)

const (
	shaA    = "1111111111111111111111111111111111111111"
	shaB    = "2222222222222222222222222222222222222222"
	zeroSHA = "0000000000000000000000000000000000000000"
)

var jsonNull = json.RawMessage("null")

// Bitbucket Data Center payloads, in the shape of
// https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html
// (trimmed to what matters).
const (
	dcRepo = `{"id": 2, "slug": "sandbox", "project": {"key": "SBOX"}, "links": {
		"clone": [{"href": "ssh://git@bb.example.com:7999/sbox/sandbox.git", "name": "ssh"},
		          {"href": "https://bb.example.com/scm/sbox/sandbox.git", "name": "http"}],
		"self": [{"href": "https://bb.example.com/projects/SBOX/repos/sandbox/browse"}]}}`
	dcFork = `{"id": 4, "slug": "sandbox", "project": {"key": "~JOHN"}, "links": {
		"clone": [{"href": "ssh://git@bb.example.com:7999/~john/sandbox.git", "name": "ssh"},
		          {"href": "https://bb.example.com/scm/~john/sandbox.git", "name": "http"}]}}`
	dcRefsChanged = `{"eventKey": "repo:refs_changed", "repository": ` + dcRepo + `, "changes": [
		{"ref": {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"}, "refId": "refs/heads/main",
		 "fromHash": "` + shaA + `", "toHash": "` + shaB + `", "type": "UPDATE"},
		{"ref": {"id": "refs/heads/old", "displayId": "old", "type": "BRANCH"}, "refId": "refs/heads/old",
		 "fromHash": "` + shaA + `", "toHash": "` + zeroSHA + `", "type": "DELETE"}]}`
	dcPR = `{"eventKey": "pr:opened", "pullRequest": {"id": 7, "title": "Fix typo",
		"fromRef": {"id": "refs/heads/typo", "displayId": "typo", "latestCommit": "` + shaB + `", "repository": ` + dcRepo + `},
		"toRef": {"id": "refs/heads/main", "displayId": "main", "latestCommit": "` + shaA + `", "repository": ` + dcRepo + `}}}`
	dcForkPR = `{"eventKey": "pr:opened", "pullRequest": {"id": 8, "title": "From a fork",
		"fromRef": {"id": "refs/heads/typo", "displayId": "typo", "latestCommit": "` + shaB + `", "repository": ` + dcFork + `},
		"toRef": {"id": "refs/heads/main", "displayId": "main", "latestCommit": "` + shaA + `", "repository": ` + dcRepo + `}}}`
)

var dcURLs = []string{"ssh://git@bb.example.com:7999/sbox/sandbox.git", "https://bb.example.com/scm/sbox/sandbox.git"}

// TestParseVocabulary covers the mappings the fixture files do not: each
// row edits a fixture (or gives a body) and sets headers.
func TestParseVocabulary(t *testing.T) {
	const (
		ghPR   = "github/pull_request.opened.json"
		ghPush = "github/push.branch-updated.woodpecker.json"
		glMR   = "gitlab/merge_request_hook.open.docs.json"
		glPush = "gitlab/push_hook.docs.json"
		gtPR   = "gitea/pull_request.opened.go-scm.json"
		gtPush = "gitea/push.docs.json"
		bbPR   = "bitbucket/cloud.pullrequest_created.woodpecker.json"
		bbPush = "bitbucket/cloud.repo_push.woodpecker.json"
	)
	gh := func(event string) map[string]string { return map[string]string{"X-GitHub-Event": event} }
	gl := map[string]string{"X-Gitlab-Event": "Merge Request Hook"}
	gt := func(event, typ string) map[string]string {
		return map[string]string{"X-Gitea-Event": event, "X-Gitea-Event-Type": typ}
	}
	bb := func(key string) map[string]string { return map[string]string{"X-Event-Key": key} }
	giteaCreate := map[string]any{"before": nil, "after": nil, "commits": nil, "compare_url": nil}

	tests := []struct {
		name    string
		forge   string
		file    string         // fixture to start from
		edits   map[string]any // applied to file
		body    string         // instead of file
		headers map[string]string
		wantErr error // ErrIgnored, ErrMalformed, or nil
		want    parsed
		n       int // events from ParseAll (default 1)
	}{
		// GitHub.
		{name: "github merged", forge: "github", file: "github/pull_request.closed.json", headers: gh("pull_request"),
			edits: map[string]any{"pull_request.merged": true},
			want:  parsed{kind: site.EventPRMerged, pr: 2}},
		{name: "github reopened", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{"action": "reopened"},
			want:  parsed{kind: site.EventPRReopened, pr: 2}},
		{name: "github edited", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{"action": "edited"}, wantErr: hooks.ErrIgnored},
		{name: "github assigned", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{"action": "assigned"}, wantErr: hooks.ErrIgnored},
		{name: "github labeled", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{"action": "labeled"}, wantErr: hooks.ErrIgnored},
		{name: "github issues", forge: "github", file: ghPR, headers: gh("issues"), wantErr: hooks.ErrIgnored},
		{name: "github fork PR", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{
				"pull_request.head.repo.full_name": "forker/Hello-World", "pull_request.head.repo.id": 99,
				"pull_request.head.repo.html_url": "https://github.com/forker/Hello-World", "pull_request.head.repo.fork": true,
				"pull_request.head.repo.clone_url": nil, "pull_request.head.repo.ssh_url": nil, "pull_request.head.repo.git_url": nil,
			},
			want: parsed{kind: site.EventPROpened, pr: 2, fork: true, head: []string{"https://github.com/forker/Hello-World"}}},
		{name: "github same-repo PR in a forked repository", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{"pull_request.head.repo.fork": true, "pull_request.base.repo.fork": true},
			want:  parsed{kind: site.EventPROpened, pr: 2, fork: false}},
		{name: "github PR from a deleted fork", forge: "github", file: "github/pull_request.closed.json", headers: gh("pull_request"),
			edits: map[string]any{"pull_request.head.repo": jsonNull},
			want:  parsed{kind: site.EventPRClosed, pr: 2, fork: true}},
		{name: "github tag push", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"ref": "refs/tags/v1.0", "after": shaA},
			want:  parsed{kind: site.EventPush, ref: "refs/tags/v1.0", commit: shaA}},
		{name: "github zero after without deleted", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"after": zeroSHA},
			want:  parsed{kind: site.EventBranchDeleted, ref: "refs/heads/main"}},
		{name: "github uppercase SHA", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"after": "ABCDEF0123456789ABCDEF0123456789ABCDEF01"},
			want:  parsed{kind: site.EventPush, ref: "refs/heads/main", commit: "abcdef0123456789abcdef0123456789abcdef01"}},
		{name: "github org ping", forge: "github", file: "github/ping.repo.json", headers: gh("ping"),
			edits: map[string]any{"repository": nil}, wantErr: hooks.ErrIgnored},
		{name: "github no event header", forge: "github", file: ghPush, headers: map[string]string{}, wantErr: hooks.ErrMalformed},
		{name: "github push without ref", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"ref": nil}, wantErr: hooks.ErrMalformed},
		{name: "github push bad commit", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"after": "--upload-pack=x"}, wantErr: hooks.ErrMalformed},
		{name: "github push bad ref", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"ref": "refs/heads/a..b"}, wantErr: hooks.ErrMalformed},
		{name: "github push option as ref", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"ref": "--help"}, wantErr: hooks.ErrMalformed},
		{name: "github push without repository", forge: "github", file: ghPush, headers: gh("push"),
			edits: map[string]any{"repository": nil}, wantErr: hooks.ErrMalformed},
		{name: "github PR without number", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{"pull_request.number": 0}, wantErr: hooks.ErrMalformed},
		{name: "github PR without head sha", forge: "github", file: ghPR, headers: gh("pull_request"),
			edits: map[string]any{"pull_request.head.sha": nil}, wantErr: hooks.ErrMalformed},
		{name: "github not JSON", forge: "github", body: `{"ref": `, headers: gh("push"), wantErr: hooks.ErrMalformed},
		{name: "github JSON array", forge: "github", body: `[]`, headers: gh("push"), wantErr: hooks.ErrMalformed},

		// GitLab.
		{name: "gitlab update with oldrev", forge: "gitlab", file: glMR, headers: gl,
			edits: map[string]any{"object_attributes.action": "update", "object_attributes.oldrev": shaA},
			want:  parsed{kind: site.EventPRUpdated, pr: 1}},
		{name: "gitlab update without oldrev", forge: "gitlab", file: glMR, headers: gl,
			edits: map[string]any{"object_attributes.action": "update"}, wantErr: hooks.ErrIgnored},
		{name: "gitlab reopen", forge: "gitlab", file: glMR, headers: gl,
			edits: map[string]any{"object_attributes.action": "reopen"},
			want:  parsed{kind: site.EventPRReopened, pr: 1}},
		{name: "gitlab close", forge: "gitlab", file: glMR, headers: gl,
			edits: map[string]any{"object_attributes.action": "close"},
			want:  parsed{kind: site.EventPRClosed, pr: 1}},
		{name: "gitlab approved", forge: "gitlab", file: glMR, headers: gl,
			edits: map[string]any{"object_attributes.action": "approved"}, wantErr: hooks.ErrIgnored},
		{name: "gitlab fork MR", forge: "gitlab", file: glMR, headers: gl,
			edits: map[string]any{"object_attributes.source_project_id": 99},
			want:  parsed{kind: site.EventPROpened, pr: 1, fork: true}},
		{name: "gitlab tag push", forge: "gitlab", file: glPush, headers: map[string]string{"X-Gitlab-Event": "Tag Push Hook"},
			edits: map[string]any{"object_kind": "tag_push", "ref": "refs/tags/v1.0", "after": shaA, "checkout_sha": shaB},
			want:  parsed{kind: site.EventPush, ref: "refs/tags/v1.0", commit: shaB}},
		{name: "gitlab branch deleted", forge: "gitlab", file: glPush, headers: map[string]string{"X-Gitlab-Event": "Push Hook"},
			edits: map[string]any{"after": zeroSHA, "checkout_sha": jsonNull},
			want:  parsed{kind: site.EventBranchDeleted, ref: "refs/heads/master"}},
		{name: "gitlab delivery headers", forge: "gitlab", file: glPush,
			headers: map[string]string{"X-Gitlab-Event": "Push Hook", "Idempotency-Key": "idem-1", "X-Gitlab-Event-UUID": "ev-1", "X-Gitlab-Webhook-UUID": "hook-1"},
			want:    parsed{kind: site.EventPush, delivery: "idem-1", ref: "refs/heads/master", commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{name: "gitlab event uuid", forge: "gitlab", file: glPush,
			headers: map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "ev-1", "X-Gitlab-Webhook-UUID": "hook-1"},
			want:    parsed{kind: site.EventPush, delivery: "ev-1", ref: "refs/heads/master", commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{name: "gitlab issue", forge: "gitlab", file: glMR, headers: map[string]string{"X-Gitlab-Event": "Issue Hook"},
			edits: map[string]any{"object_kind": "issue"}, wantErr: hooks.ErrIgnored},
		{name: "gitlab no object_kind", forge: "gitlab", file: glPush, edits: map[string]any{"object_kind": nil}, wantErr: hooks.ErrMalformed},
		{name: "gitlab MR without attributes", forge: "gitlab", file: glMR, headers: gl,
			edits: map[string]any{"object_attributes": nil}, wantErr: hooks.ErrMalformed},

		// Gitea and Forgejo.
		{name: "gitea synchronized", forge: "gitea", file: gtPR, headers: gt("pull_request", "pull_request_sync"),
			edits: map[string]any{"action": "synchronized"},
			want:  parsed{kind: site.EventPRUpdated, pr: 1}},
		{name: "gitea sync event type", forge: "gitea", file: gtPR, headers: gt("pull_request", "pull_request_sync"),
			want: parsed{kind: site.EventPRUpdated, pr: 1}},
		{name: "gitea label", forge: "gitea", file: gtPR, headers: gt("pull_request", "pull_request_label"),
			edits: map[string]any{"action": "label_updated"}, wantErr: hooks.ErrIgnored},
		{name: "gitea edited", forge: "gitea", file: gtPR, headers: gt("pull_request", "pull_request"),
			edits: map[string]any{"action": "edited"}, wantErr: hooks.ErrIgnored},
		{name: "gitea merged", forge: "gitea", file: "gitea/pull_request.closed.woodpecker.json", headers: gt("pull_request", "pull_request"),
			edits: map[string]any{"pull_request.merged": true},
			want:  parsed{kind: site.EventPRMerged, pr: 1}},
		{name: "gitea reopened", forge: "gitea", file: gtPR, headers: gt("pull_request", "pull_request"),
			edits: map[string]any{"action": "reopened"},
			want:  parsed{kind: site.EventPRReopened, pr: 1}},
		{name: "gitea fork PR", forge: "gitea", file: gtPR, headers: gt("pull_request", "pull_request"),
			edits: map[string]any{"pull_request.head.repo_id": 99, "pull_request.head.repo.id": 99, "pull_request.head.repo.full_name": "forker/my-repo"},
			want:  parsed{kind: site.EventPROpened, pr: 1, fork: true}},
		{name: "forgejo headers", forge: "gitea", file: gtPR,
			headers: map[string]string{
				"X-Forgejo-Event": "pull_request", "X-Forgejo-Event-Type": "pull_request", "X-Forgejo-Delivery": "fj-1",
				"X-Gitea-Event": "pull_request", "X-Gitea-Event-Type": "pull_request", "X-Gitea-Delivery": "gt-1",
			},
			want: parsed{forge: "forgejo", kind: site.EventPROpened, delivery: "fj-1", pr: 1}},
		{name: "forgejo path", forge: "forgejo", file: gtPush,
			headers: map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "fj-2"},
			want:    parsed{forge: "forgejo", kind: site.EventPush, delivery: "fj-2", ref: "refs/heads/develop", commit: "bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{name: "gitea create tag", forge: "gitea", file: gtPush, headers: gt("create", "create"),
			edits: merge(giteaCreate, map[string]any{"ref": "v1.0", "ref_type": "tag", "sha": shaA}),
			want:  parsed{kind: site.EventPush, ref: "refs/tags/v1.0", commit: shaA}},
		{name: "gitea create branch", forge: "gitea", file: gtPush, headers: gt("create", "create"),
			edits: merge(giteaCreate, map[string]any{"ref": "feature", "ref_type": "branch", "sha": shaA}),
			want:  parsed{kind: site.EventPush, ref: "refs/heads/feature", commit: shaA}},
		{name: "gitea create without sha", forge: "gitea", file: gtPush, headers: gt("create", "create"),
			edits: merge(giteaCreate, map[string]any{"ref": "v2", "ref_type": "tag"}),
			want:  parsed{kind: site.EventPush, ref: "refs/tags/v2"}},
		{name: "gitea delete branch", forge: "gitea", file: gtPush, headers: gt("delete", "delete"),
			edits: merge(giteaCreate, map[string]any{"ref": "feature", "ref_type": "branch", "pusher_type": "user"}),
			want:  parsed{kind: site.EventBranchDeleted, ref: "refs/heads/feature"}},
		{name: "gitea issues", forge: "gitea", file: gtPR, headers: gt("issues", "issues"), wantErr: hooks.ErrIgnored},
		{name: "gitea no event header", forge: "gitea", file: gtPush, headers: map[string]string{}, wantErr: hooks.ErrMalformed},

		// Bitbucket Cloud.
		{name: "bitbucket updated", forge: "bitbucket", file: bbPR, headers: bb("pullrequest:updated"),
			want: parsed{kind: site.EventPRUpdated, pr: 1}},
		{name: "bitbucket fulfilled", forge: "bitbucket", file: bbPR, headers: bb("pullrequest:fulfilled"),
			want: parsed{kind: site.EventPRMerged, pr: 1}},
		{name: "bitbucket rejected", forge: "bitbucket", file: bbPR, headers: bb("pullrequest:rejected"),
			want: parsed{kind: site.EventPRClosed, pr: 1}},
		{name: "bitbucket approved", forge: "bitbucket", file: bbPR, headers: bb("pullrequest:approved"), wantErr: hooks.ErrIgnored},
		{name: "bitbucket full head hash", forge: "bitbucket", file: bbPR, headers: bb("pullrequest:created"),
			edits: map[string]any{"pullrequest.source.commit.hash": shaB},
			want:  parsed{kind: site.EventPROpened, pr: 1, commit: shaB}},
		{name: "bitbucket fork PR", forge: "bitbucket", file: bbPR, headers: bb("pullrequest:created"),
			edits: map[string]any{"pullrequest.source.repository.full_name": "forker/repo_name"},
			want:  parsed{kind: site.EventPROpened, pr: 1, fork: true}},
		{name: "bitbucket branch deleted", forge: "bitbucket", file: bbPush, headers: bb("repo:push"),
			edits: map[string]any{"push.changes.0.new": jsonNull, "push.changes.0.closed": true},
			want:  parsed{kind: site.EventBranchDeleted, ref: "refs/heads/main"}},
		{name: "bitbucket tag", forge: "bitbucket", file: bbPush, headers: bb("repo:push"),
			edits: map[string]any{"push.changes.0.new.type": "tag", "push.changes.0.new.name": "v1.0"},
			want:  parsed{kind: site.EventPush, ref: "refs/tags/v1.0", commit: "c14c1bb05dfb1fdcdf06b31485fff61b0ea44277"}},
		{name: "bitbucket no changes", forge: "bitbucket", file: bbPush, headers: bb("repo:push"),
			edits: map[string]any{"push.changes": []any{}}, wantErr: hooks.ErrIgnored},
		{name: "bitbucket issue", forge: "bitbucket", file: bbPush, headers: bb("issue:created"), wantErr: hooks.ErrIgnored},
		{name: "bitbucket no event key", forge: "bitbucket", file: bbPush, headers: map[string]string{}, wantErr: hooks.ErrMalformed},

		// Bitbucket Data Center.
		{name: "bitbucket dc refs changed", forge: "bitbucket", body: dcRefsChanged,
			headers: map[string]string{"X-Event-Key": "repo:refs_changed", "X-Request-Id": "dc-1"},
			want:    parsed{kind: site.EventPush, delivery: "dc-1", urls: dcURLs, ref: "refs/heads/main", commit: shaB}, n: 2},
		{name: "bitbucket dc opened", forge: "bitbucket", body: dcPR, headers: bb("pr:opened"),
			want: parsed{kind: site.EventPROpened, urls: dcURLs, ref: "refs/heads/typo", commit: shaB, pr: 7, title: "Fix typo", head: dcURLs}},
		{name: "bitbucket dc fork", forge: "bitbucket", body: dcForkPR, headers: bb("pr:opened"),
			want: parsed{kind: site.EventPROpened, urls: dcURLs, ref: "refs/heads/typo", commit: shaB, pr: 8, fork: true, title: "From a fork",
				head: []string{"ssh://git@bb.example.com:7999/~john/sandbox.git", "https://bb.example.com/scm/~john/sandbox.git"}}},
		{name: "bitbucket dc from_ref_updated", forge: "bitbucket", body: dcPR, headers: bb("pr:from_ref_updated"),
			want: parsed{kind: site.EventPRUpdated, pr: 7}},
		{name: "bitbucket dc merged", forge: "bitbucket", body: dcPR, headers: bb("pr:merged"),
			want: parsed{kind: site.EventPRMerged, pr: 7}},
		{name: "bitbucket dc declined", forge: "bitbucket", body: dcPR, headers: bb("pr:declined"),
			want: parsed{kind: site.EventPRClosed, pr: 7}},
		{name: "bitbucket dc modified", forge: "bitbucket", body: dcPR, headers: bb("pr:modified"), wantErr: hooks.ErrIgnored},
		{name: "bitbucket dc ping", forge: "bitbucket", body: `{"test": true}`, headers: bb("diagnostics:ping"), wantErr: hooks.ErrIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = mutate(t, tt.file, tt.edits)
			}
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			evs, err := hooks.ParseAll(tt.forge, h, body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAll: %v", err)
			}
			n := tt.n
			if n == 0 {
				n = 1
			}
			if len(evs) != n {
				t.Fatalf("got %d events, want %d: %+v", len(evs), n, evs)
			}
			ev, want := evs[0], tt.want
			if want.forge == "" {
				want.forge = tt.forge
			}
			checkSome(t, ev, want)
		})
	}
}

// checkSome checks the fields a vocabulary row sets (and Kind, Forge,
// Delivery, Fork and, for pushes, Ref and Commit always).
func checkSome(t *testing.T, ev site.Event, want parsed) {
	t.Helper()
	if ev.Forge != want.forge || ev.Kind != want.kind || ev.Delivery != want.delivery || ev.Fork != want.fork {
		t.Errorf("Forge, Kind, Delivery, Fork = %q, %q, %q, %v; want %q, %q, %q, %v",
			ev.Forge, ev.Kind, ev.Delivery, ev.Fork, want.forge, want.kind, want.delivery, want.fork)
	}
	if !ev.IsPR() && (ev.Ref != want.ref || ev.Commit != want.commit) {
		t.Errorf("Ref, Commit = %q, %q; want %q, %q", ev.Ref, ev.Commit, want.ref, want.commit)
	}
	if want.pr != 0 && ev.PR != want.pr {
		t.Errorf("PR = %d, want %d", ev.PR, want.pr)
	}
	if want.ref != "" && ev.Ref != want.ref {
		t.Errorf("Ref = %q, want %q", ev.Ref, want.ref)
	}
	if want.commit != "" && ev.Commit != want.commit {
		t.Errorf("Commit = %q, want %q", ev.Commit, want.commit)
	}
	if want.title != "" && ev.Title != want.title {
		t.Errorf("Title = %q, want %q", ev.Title, want.title)
	}
	if want.urls != nil && !slices.Equal(ev.RepoURLs, want.urls) {
		t.Errorf("RepoURLs = %q, want %q", ev.RepoURLs, want.urls)
	}
	if want.head != nil && !slices.Equal(ev.HeadRepo, want.head) {
		t.Errorf("HeadRepo = %q, want %q", ev.HeadRepo, want.head)
	}
}

func merge(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func TestParseAllBitbucketSeveralChanges(t *testing.T) {
	evs, err := hooks.ParseAll("bitbucket", http.Header{"X-Event-Key": {"repo:refs_changed"}}, []byte(dcRefsChanged))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	if evs[1].Kind != site.EventBranchDeleted || evs[1].Ref != "refs/heads/old" || evs[1].Commit != "" {
		t.Errorf("second event = %+v, want branch_deleted refs/heads/old", evs[1])
	}
	if !slices.Equal(evs[1].RepoURLs, dcURLs) {
		t.Errorf("second event RepoURLs = %q", evs[1].RepoURLs)
	}
	// Parse gives the first.
	ev, err := hooks.Parse("bitbucket", http.Header{"X-Event-Key": {"repo:refs_changed"}}, []byte(dcRefsChanged))
	if err != nil || ev.Ref != "refs/heads/main" {
		t.Errorf("Parse = %+v, %v; want the first change", ev, err)
	}
}

func TestParseUnknownForge(t *testing.T) {
	if _, err := hooks.Parse("svn", http.Header{}, []byte(`{}`)); !errors.Is(err, hooks.ErrUnknownForge) {
		t.Errorf("err = %v, want ErrUnknownForge", err)
	}
}

// TestParseIgnoredKeepsRepo: an ignored event still names its repository,
// so the handler can authenticate before answering.
func TestParseIgnoredKeepsRepo(t *testing.T) {
	body := mutate(t, "github/pull_request.opened.json", map[string]any{"action": "edited"})
	ev, err := hooks.Parse("github", http.Header{"X-Github-Event": {"pull_request"}, "X-Github-Delivery": {"d-1"}}, body)
	if !errors.Is(err, hooks.ErrIgnored) {
		t.Fatalf("err = %v, want ErrIgnored", err)
	}
	if ev.Forge != "github" || ev.Delivery != "d-1" || !slices.Equal(ev.RepoURLs, codertocat) {
		t.Errorf("event = %+v, want forge, delivery and repository", ev)
	}
}

// TestParseRejectsBadRefs: refs git would refuse never reach an event.
func TestParseRejectsBadRefs(t *testing.T) {
	h := http.Header{"X-Github-Event": {"push"}}
	for _, ref := range []string{
		"", "main", "refs/heads/", "refs/heads/a b", "refs/heads/a..b", "refs/heads/a.lock", "refs/heads/.hidden",
		"refs/heads/a@{1}", "refs/heads/a~1", "refs/heads/a^", "refs/heads/a:b", "refs/heads/a*", "refs/heads/a\\b",
		"refs/heads/a\x00", "refs/heads/a\n", "refs/heads//a", "refs/heads/a/", "refs/heads/a.", "--upload-pack=evil",
		"refs/heads/" + strings.Repeat("a", 1100),
	} {
		body := mutate(t, "github/push.branch-updated.woodpecker.json", map[string]any{"ref": ref})
		if ev, err := hooks.Parse("github", h, body); !errors.Is(err, hooks.ErrMalformed) {
			t.Errorf("ref %q: Parse = %+v, %v; want ErrMalformed", ref, ev, err)
		}
	}
	for _, ref := range []string{"refs/heads/feature/x-1", "refs/tags/v1.2.3", "refs/heads/ümlaut", "refs/heads/a.b"} {
		body := mutate(t, "github/push.branch-updated.woodpecker.json", map[string]any{"ref": ref})
		if ev, err := hooks.Parse("github", h, body); err != nil || ev.Ref != ref {
			t.Errorf("ref %q: Parse = %q, %v; want it kept", ref, ev.Ref, err)
		}
	}
}
