package hooks_test

import (
	"slices"
	"testing"

	"github.com/sitehost/sitehost/internal/hooks"
)

func TestRepoKey(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"https://github.com/acme/blog", "github.com/acme/blog"},
		{"https://github.com/acme/blog.git", "github.com/acme/blog"},
		{"https://github.com/acme/blog/", "github.com/acme/blog"},
		{"https://github.com/acme/blog.git/", "github.com/acme/blog"},
		{"https://GitHub.com/Acme/Blog.git", "github.com/acme/blog"},
		{"HTTPS://github.com/acme/blog", "github.com/acme/blog"},
		{"http://github.com/acme/blog", "github.com/acme/blog"},
		{"https://user:pass@github.com/acme/blog.git", "github.com/acme/blog"},
		{"https://github.com:443/acme/blog", "github.com/acme/blog"},
		{"ssh://git@github.com/acme/blog.git", "github.com/acme/blog"},
		{"ssh://git@github.com:22/acme/blog.git", "github.com/acme/blog"},
		{"ssh://gitea@localhost:2222/gitea/webhooks.git", "localhost/gitea/webhooks"},
		{"git@github.com:acme/blog.git", "github.com/acme/blog"},
		{"git@github.com:acme/blog", "github.com/acme/blog"},
		{"github.com:acme/blog.git", "github.com/acme/blog"},
		{"git://github.com/acme/blog.git", "github.com/acme/blog"},
		{"  https://github.com/acme/blog  ", "github.com/acme/blog"},
		{"https://gitlab.example.com/group/sub/project.git", "gitlab.example.com/group/sub/project"},
		{"git@gitlab.example.com:group/sub/project.git", "gitlab.example.com/group/sub/project"},
		{"https://bb.example.com/scm/~john/sandbox.git", "bb.example.com/scm/~john/sandbox"},
		{"github.com/acme/blog", "github.com/acme/blog"},
		{"https://github.com/acme/blog.github.io.git", "github.com/acme/blog.github.io"},
		{"file:///srv/git/Blog.git", "file/srv/git/Blog.git"},
		{"file:///srv/git/blog/", "file/srv/git/blog"},
		{"file:///srv/git/../git/blog", "file/srv/git/blog"},
		{"file://localhost/srv/git/blog", "file/srv/git/blog"},
		{"FILE:///srv/git/blog", "file/srv/git/blog"},
		{"", ""},
		{"https://github.com/", ""},
		{"https://github.com", ""},
		{"https://%zz/acme/blog", ""},
		{"not a url", ""},
	}
	for _, tt := range tests {
		if got := hooks.RepoKey(tt.url); got != tt.want {
			t.Errorf("RepoKey(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

// TestRepoKeyVariantsMatch: every URL a fixture gives for its repository has
// the same key, except in the anonymised Bitbucket PR fixture.
func TestRepoKeyVariantsMatch(t *testing.T) {
	for file, want := range fixtureWant {
		if file == "bitbucket/cloud.pullrequest_created.woodpecker.json" {
			continue
		}
		for _, u := range want.urls {
			if got := hooks.RepoKey(u); got != want.repoKey {
				t.Errorf("%s: RepoKey(%q) = %q, want %q", file, u, got, want.repoKey)
			}
		}
	}
}

func TestRepoKeys(t *testing.T) {
	tests := []struct {
		url  string
		want []string
	}{
		{"https://github.com/acme/blog", []string{"github.com/acme/blog"}},
		{"git@github.com:acme/blog.git", []string{"github.com/acme/blog"}},
		{"https://bb.example.com/scm/PROJ/blog.git", []string{"bb.example.com/scm/proj/blog", "bitbucket:proj/blog"}},
		{"https://bb.example.com/bitbucket/scm/PROJ/blog.git", []string{"bb.example.com/bitbucket/scm/proj/blog", "bitbucket:proj/blog"}},
		{"https://bb.example.com/scm/~jo/blog.git", []string{"bb.example.com/scm/~jo/blog", "bitbucket:~jo/blog"}},
		{"ssh://git@bb.example.com:7999/proj/blog.git", []string{"bb.example.com/proj/blog", "bitbucket:proj/blog"}},
		{"ssh://git@bb.example.com:7999/~jo/blog.git", []string{"bb.example.com/~jo/blog", "bitbucket:~jo/blog"}},
		{"https://bb.example.com/projects/PROJ/repos/blog/browse", []string{"bb.example.com/projects/proj/repos/blog/browse", "bitbucket:proj/blog"}},
		{"https://bb.example.com/users/jo/repos/blog/browse", []string{"bb.example.com/users/jo/repos/blog/browse", "bitbucket:~jo/blog"}},
		{"ssh://git@gitlab.example.com/group/sub/project.git", []string{"gitlab.example.com/group/sub/project"}},
		{"https://bb.example.com/scm/blog.git", []string{"bb.example.com/scm/blog"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := hooks.RepoKeys(tt.url); !slices.Equal(got, tt.want) {
			t.Errorf("RepoKeys(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	// The host-less path a linkless Data Center payload gives finds them.
	for path, want := range map[string]string{
		"/projects/PROJ/repos/blog": "bitbucket:proj/blog",
		"/projects/~JO/repos/blog":  "bitbucket:~jo/blog",
		"/projects/PROJ":            "",
		"/srv/git/blog":             "",
	} {
		if got := hooks.RepoKey(path); got != want {
			t.Errorf("RepoKey(%q) = %q, want %q", path, got, want)
		}
	}
}
