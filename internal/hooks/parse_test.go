package hooks_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/site"
)

// parsed is what a payload must normalise to. The values were read off
// the payload files by hand.
type parsed struct {
	forge    string
	kind     site.EventKind
	delivery string
	repoKey  string   // RepoKey of the repository: one of RepoURLs must give it
	urls     []string // RepoURLs, in order
	ref      string
	commit   site.Commit
	pr       int
	fork     bool
	title    string
	head     []string // HeadRepo
}

var (
	codertocat = []string{
		"https://github.com/Codertocat/Hello-World", "https://github.com/Codertocat/Hello-World.git",
		"git@github.com:Codertocat/Hello-World.git", "git://github.com/Codertocat/Hello-World.git",
	}
	giteaTestRepo = []string{
		"https://gitea.com/anbraten/test-repo", "https://gitea.com/anbraten/test-repo.git",
		"git@gitea.com:anbraten/test-repo.git",
	}
	giteaMyRepo = []string{
		"https://try.gitea.io/jcitizen/my-repo", "https://try.gitea.io/jcitizen/my-repo.git",
		"git@try.gitea.io:jcitizen/my-repo.git",
	}
	woodpeckerTest = []string{
		"https://gitlab.com/anbraten/woodpecker-test", "https://gitlab.com/anbraten/woodpecker-test.git",
		"git@gitlab.com:anbraten/woodpecker-test.git",
	}
	// The Bitbucket PR fixture is anonymised: its html link and its
	// full_name disagree.
	bitbucketRepoName = []string{
		"https://api.bitbucket.org/team_name/repo_name", "https://bitbucket.org/user_name/repo_name.git",
		"git@bitbucket.org:user_name/repo_name.git",
	}
)

// fixtureWant has one row per file in manifest.json.
var fixtureWant = map[string]parsed{
	"bitbucket/cloud.pullrequest_created.woodpecker.json": {
		forge: "bitbucket", kind: site.EventPROpened, repoKey: "bitbucket.org/user_name/repo_name",
		urls: bitbucketRepoName, ref: "refs/heads/branch2",
		commit: "", // the payload has only the abbreviation d3022fc0ca3d
		pr:     1, title: "Title of pull request", head: bitbucketRepoName,
	},
	"bitbucket/cloud.repo_push.woodpecker.json": {
		forge: "bitbucket", kind: site.EventPush, repoKey: "bitbucket.org/martinherren1984/publictestrepo",
		urls: []string{
			"https://bitbucket.org/martinherren1984/publictestrepo", "https://bitbucket.org/martinherren1984/publictestrepo.git",
			"git@bitbucket.org:martinherren1984/publictestrepo.git",
		},
		ref: "refs/heads/main", commit: "c14c1bb05dfb1fdcdf06b31485fff61b0ea44277",
	},
	"gitea/pull_request.closed.woodpecker.json": {
		forge: "gitea", kind: site.EventPRClosed, repoKey: "gitea.com/anbraten/test-repo", urls: giteaTestRepo,
		ref: "refs/heads/anbraten-patch-1", commit: "d555a5dd07f4d0148a58d4686ec381502ae6a2d4",
		pr: 1, title: "Adjust file", head: giteaTestRepo,
	},
	"gitea/pull_request.opened.go-scm.json": {
		forge: "gitea", kind: site.EventPROpened, repoKey: "try.gitea.io/jcitizen/my-repo", urls: giteaMyRepo,
		ref: "refs/heads/feature", commit: "2eba238e33607c1fa49253182e9fff42baafa1eb",
		pr: 1, title: "Add License File", head: giteaMyRepo,
	},
	"gitea/push.docs.json": {
		forge: "gitea", kind: site.EventPush, delivery: "f6266f16-1bf3-46a5-9ea4-602e06ead473",
		repoKey: "localhost/gitea/webhooks",
		urls: []string{
			"http://localhost:3000/gitea/webhooks", "http://localhost:3000/gitea/webhooks.git",
			"ssh://gitea@localhost:2222/gitea/webhooks.git",
		},
		ref: "refs/heads/develop", commit: "bffeb74224043ba2feb48d137756c8a9331c449a",
	},
	"github/ping.repo.json": {
		forge: "github", kind: site.EventPing, repoKey: "github.com/octocoders/hello-world",
		urls: []string{
			"https://github.com/Octocoders/Hello-World", "https://github.com/Octocoders/Hello-World.git",
			"git@github.com:Octocoders/Hello-World.git", "git://github.com/Octocoders/Hello-World.git",
		},
	},
	"github/pull_request.closed.json": {
		forge: "github", kind: site.EventPRClosed, repoKey: "github.com/codertocat/hello-world", urls: codertocat,
		ref: "refs/heads/changes", commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		pr: 2, title: "Update the README with new information.", head: codertocat,
	},
	"github/pull_request.opened.json": {
		forge: "github", kind: site.EventPROpened, repoKey: "github.com/codertocat/hello-world", urls: codertocat,
		ref: "refs/heads/changes", commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		pr: 2, title: "Update the README with new information.", head: codertocat,
	},
	"github/pull_request.synchronize.json": {
		forge: "github", kind: site.EventPRUpdated, repoKey: "github.com/codertocat/hello-world", urls: codertocat,
		ref: "refs/heads/changes", commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		pr: 2, title: "Update the README with new information.", head: codertocat,
	},
	"github/push.branch-deleted.go-scm.json": {
		forge: "github", kind: site.EventBranchDeleted, repoKey: "github.com/bradrydzewski/drone-test-go",
		urls: []string{
			"https://github.com/bradrydzewski/drone-test-go", "https://github.com/bradrydzewski/drone-test-go.git",
			"git@github.com:bradrydzewski/drone-test-go.git", "git://github.com/bradrydzewski/drone-test-go.git",
		},
		ref: "refs/heads/feature-branch",
	},
	"github/push.branch-updated.woodpecker.json": {
		forge: "github", kind: site.EventPush, repoKey: "github.com/woodpecker-ci/woodpecker",
		urls: []string{
			"https://github.com/woodpecker-ci/woodpecker", "https://github.com/woodpecker-ci/woodpecker.git",
			"git@github.com:woodpecker-ci/woodpecker.git", "git://github.com/woodpecker-ci/woodpecker.git",
		},
		ref: "refs/heads/main", commit: "366701fde727cb7a9e7f21eb88264f59f6f9b89c",
	},
	"gitlab/merge_request_hook.merged.woodpecker.json": {
		forge: "gitlab", kind: site.EventPRMerged, repoKey: "gitlab.com/anbraten/woodpecker-test", urls: woodpeckerTest,
		ref: "refs/heads/patch-1", commit: "3e4db3586b65dd401de8c77b3ac343fd24cbf89b",
		pr: 4, title: "Add new file", head: woodpeckerTest,
	},
	"gitlab/merge_request_hook.open.docs.json": {
		forge: "gitlab", kind: site.EventPROpened, repoKey: "example.com/gitlabhq/gitlab-test",
		urls: []string{
			"http://example.com/gitlabhq/gitlab-test", "http://example.com/gitlabhq/gitlab-test.git",
			"git@example.com:gitlabhq/gitlab-test.git",
		},
		ref: "refs/heads/ms-viewport", commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		pr: 1, title: "MS-Viewport",
		// The docs example's project and source project differ, but
		// source_project_id == target_project_id: not a fork.
		head: []string{
			"http://example.com/awesome_space/awesome_project", "http://example.com/awesome_space/awesome_project.git",
			"git@example.com:awesome_space/awesome_project.git",
		},
	},
	"gitlab/push_hook.docs.json": {
		forge: "gitlab", kind: site.EventPush, repoKey: "example.com/mike/diaspora",
		urls: []string{
			"http://example.com/mike/diaspora", "http://example.com/mike/diaspora.git",
			"git@example.com:mike/diaspora.git",
		},
		ref: "refs/heads/master", commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
	},
}

func TestParseFixtures(t *testing.T) {
	entries := loadManifest(t)
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.File] = true
		t.Run(e.File, func(t *testing.T) {
			want, ok := fixtureWant[e.File]
			if !ok {
				t.Fatalf("no expectations for %s: add a row to fixtureWant", e.File)
			}
			ev, err := hooks.Parse(e.Forge, toHeader(e.Headers), fixture(t, e.File))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkEvent(t, ev, want)
		})
	}
	for file := range fixtureWant {
		if !listed[file] {
			t.Errorf("fixtureWant has %s, which manifest.json does not list", file)
		}
	}
	// Every payload file on disk must be in the manifest (and so above).
	for _, forge := range []string{"github", "gitlab", "gitea", "bitbucket"} {
		files, err := os.ReadDir(filepath.Join(fixtureDir, forge))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if name := forge + "/" + f.Name(); !listed[name] {
				t.Errorf("%s is not in manifest.json", name)
			}
		}
	}
}

func checkEvent(t *testing.T, ev site.Event, want parsed) {
	t.Helper()
	if ev.Forge != want.forge {
		t.Errorf("Forge = %q, want %q", ev.Forge, want.forge)
	}
	if ev.Kind != want.kind {
		t.Errorf("Kind = %q, want %q", ev.Kind, want.kind)
	}
	if ev.Delivery != want.delivery {
		t.Errorf("Delivery = %q, want %q", ev.Delivery, want.delivery)
	}
	if want.urls != nil && !slices.Equal(ev.RepoURLs, want.urls) {
		t.Errorf("RepoURLs = %q, want %q", ev.RepoURLs, want.urls)
	}
	if want.repoKey != "" && !slices.ContainsFunc(ev.RepoURLs, func(u string) bool { return hooks.RepoKey(u) == want.repoKey }) {
		t.Errorf("no RepoURL of %q has the key %q", ev.RepoURLs, want.repoKey)
	}
	if ev.Ref != want.ref {
		t.Errorf("Ref = %q, want %q", ev.Ref, want.ref)
	}
	if ev.Commit != want.commit {
		t.Errorf("Commit = %q, want %q", ev.Commit, want.commit)
	}
	if ev.PR != want.pr {
		t.Errorf("PR = %d, want %d", ev.PR, want.pr)
	}
	if ev.Fork != want.fork {
		t.Errorf("Fork = %v, want %v", ev.Fork, want.fork)
	}
	if ev.Title != want.title {
		t.Errorf("Title = %q, want %q", ev.Title, want.title)
	}
	if !slices.Equal(ev.HeadRepo, want.head) {
		t.Errorf("HeadRepo = %q, want %q", ev.HeadRepo, want.head)
	}
}
